"""Transcript sources: YouTube (youtube-transcript-api 1.x) and the offline samples.

youtube-transcript-api and requests are imported lazily, inside the adapter, so that importing
``ytresearch.youtube`` stays cheap for the CRUD Lambda.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Sequence
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from ytresearch.errors import ConfigurationError
from ytresearch.ports import Transcript, TranscriptError, TranscriptSegment
from ytresearch.youtube._samples import (
    SampleFileError,
    all_sample_ids,
    default_samples_dir,
    find_sample,
    sample_folders,
)
from ytresearch.youtube.urls import is_video_id

if TYPE_CHECKING:
    import requests
    from youtube_transcript_api import FetchedTranscript, TranscriptList, YouTubeTranscriptApi
    from youtube_transcript_api import Transcript as LibraryTranscript
    from youtube_transcript_api.proxies import ProxyConfig

    from ytresearch.config import Settings

__all__ = [
    "TRANSCRIPT_ERROR_CODES",
    "SampleTranscriptSource",
    "TranscriptErrorCode",
    "YouTubeTranscriptSource",
    "build_proxy_config",
    "default_samples_dir",
    "library_error_table",
    "to_transcript_error",
]

logger = logging.getLogger(__name__)

DEFAULT_LANGUAGES = ("en",)


class TranscriptErrorCode(NamedTuple):
    retryable: bool
    message: str  # the default human sentence for this code


# Every code a TranscriptError from this module can carry. ``retryable`` is decided once per code
# so two library errors with the same code can never disagree about retrying.
TRANSCRIPT_ERROR_CODES: dict[str, TranscriptErrorCode] = {
    "TRANSCRIPTS_DISABLED": TranscriptErrorCode(
        False, "This video has captions turned off, so it has no transcript."
    ),
    "NO_TRANSCRIPT_IN_LANGUAGE": TranscriptErrorCode(
        False, "This video has no transcript in the requested language."
    ),
    "VIDEO_UNAVAILABLE": TranscriptErrorCode(
        False, "This video is unavailable: it may be private, removed or never have existed."
    ),
    "VIDEO_UNPLAYABLE": TranscriptErrorCode(
        False, "YouTube will not play this video here (for example region-locked or members-only)."
    ),
    "AGE_RESTRICTED": TranscriptErrorCode(
        False, "This video is age-restricted; its transcript cannot be fetched without signing in."
    ),
    "INVALID_VIDEO_ID": TranscriptErrorCode(False, "This is not a valid YouTube video id."),
    # Blocking is per IP: with a rotating proxy pool the next attempt usually gets a fresh IP.
    "YOUTUBE_BLOCKED": TranscriptErrorCode(
        True,
        "YouTube is blocking requests from this server's IP address; "
        "a later attempt through another proxy IP may work.",
    ),
    # Not retryable: the PO token requirement is tied to the video and to the client the library
    # impersonates, not to our IP or to timing, and the library cannot mint PO tokens. Retrying
    # only burns proxy traffic and queue attempts; the fix is a library upgrade.
    "PO_TOKEN_REQUIRED": TranscriptErrorCode(
        False,
        "YouTube requires a proof-of-origin token for this video's captions, "
        "which the transcript client cannot provide.",
    ),
    # Usually a transient odd page (consent wall, A/B experiment); a later fetch often parses.
    "YOUTUBE_UNPARSABLE": TranscriptErrorCode(
        True, "YouTube returned data the transcript client could not understand."
    ),
    "YOUTUBE_REQUEST_FAILED": TranscriptErrorCode(True, "A request to YouTube failed."),
    "NETWORK_ERROR": TranscriptErrorCode(True, "YouTube could not be reached (network error or timeout)."),
}

ErrorRow = tuple[str, bool, str]  # (code, retryable, message)


def _row(code: str, message: str | None = None) -> ErrorRow:
    info = TRANSCRIPT_ERROR_CODES[code]
    return (code, info.retryable, message or info.message)


@cache
def library_error_table() -> dict[type[BaseException], ErrorRow]:
    """The one mapping from library/transport exception classes to our error codes.

    Lookup walks the raised exception's MRO, so the most specific class listed wins (IpBlocked
    before RequestBlocked, every CouldNotRetrieveTranscript subclass before the base). Built on
    first use because it needs the (lazily imported) library classes.
    """
    from xml.etree.ElementTree import ParseError

    import requests
    import youtube_transcript_api as yta

    return {
        yta.TranscriptsDisabled: _row("TRANSCRIPTS_DISABLED"),
        yta.NoTranscriptFound: _row("NO_TRANSCRIPT_IN_LANGUAGE"),
        yta.NotTranslatable: _row(
            "NO_TRANSCRIPT_IN_LANGUAGE",
            "This video's transcript cannot be translated into the requested language.",
        ),
        yta.TranslationLanguageNotAvailable: _row(
            "NO_TRANSCRIPT_IN_LANGUAGE",
            "YouTube offers no translation of this transcript into the requested language.",
        ),
        yta.VideoUnavailable: _row("VIDEO_UNAVAILABLE"),
        yta.VideoUnplayable: _row("VIDEO_UNPLAYABLE"),
        yta.AgeRestricted: _row("AGE_RESTRICTED"),
        yta.InvalidVideoId: _row("INVALID_VIDEO_ID"),
        yta.IpBlocked: _row("YOUTUBE_BLOCKED"),
        yta.RequestBlocked: _row("YOUTUBE_BLOCKED"),
        yta.PoTokenRequired: _row("PO_TOKEN_REQUIRED"),
        yta.YouTubeDataUnparsable: _row("YOUTUBE_UNPARSABLE"),
        yta.YouTubeRequestFailed: _row("YOUTUBE_REQUEST_FAILED"),
        # The consent wall is shown to some (EU) IPs; another IP or a later try usually passes.
        yta.FailedToCreateConsentCookie: _row(
            "YOUTUBE_REQUEST_FAILED",
            "YouTube showed a cookie-consent page that could not be accepted automatically.",
        ),
        # Base classes: future library errors we do not know yet.
        yta.CouldNotRetrieveTranscript: _row(
            "YOUTUBE_REQUEST_FAILED", "YouTube did not return a transcript for this video."
        ),
        yta.YouTubeTranscriptApiException: _row("YOUTUBE_REQUEST_FAILED"),
        # urllib3 gave up after repeated HTTP 429s (the Webshare config retries on 429).
        requests.exceptions.RetryError: _row("YOUTUBE_BLOCKED"),
        requests.exceptions.JSONDecodeError: _row("YOUTUBE_UNPARSABLE"),
        requests.exceptions.ConnectionError: _row("NETWORK_ERROR"),  # incl. ProxyError, SSLError
        requests.exceptions.Timeout: _row("NETWORK_ERROR"),
        requests.exceptions.RequestException: _row("NETWORK_ERROR"),  # e.g. truncated bodies
        # The library indexes YouTube's JSON/XML directly; a changed shape surfaces as these.
        ParseError: _row("YOUTUBE_UNPARSABLE"),
        LookupError: _row("YOUTUBE_UNPARSABLE"),
        TypeError: _row("YOUTUBE_UNPARSABLE"),
        ValueError: _row("YOUTUBE_UNPARSABLE"),  # includes defusedxml's refusals
    }


def to_transcript_error(
    exc: BaseException, video_id: str, languages: Sequence[str] = ()
) -> TranscriptError | None:
    """Our TranscriptError for a library or transport exception; None when it is not one we map
    (a bug, which should propagate as such)."""
    table = library_error_table()
    row = next((table[cls] for cls in type(exc).__mro__ if cls in table), None)
    if row is None:
        return None
    code, retryable, message = row
    details: dict[str, Any] = {"video_id": video_id}
    if languages:
        details["requested_languages"] = list(languages)
    if code == "NO_TRANSCRIPT_IN_LANGUAGE":
        available = _available_languages(getattr(exc, "_transcript_data", None))
        if available is not None:
            details["available_languages"] = available
            message = _no_transcript_message(languages, available)
    reason = getattr(exc, "reason", None)  # VideoUnplayable / YouTubeRequestFailed carry one
    if code == "VIDEO_UNPLAYABLE" and isinstance(reason, str) and reason:
        details["youtube_reason"] = reason
    return _error(code, details, message, retryable=retryable)


def _error(
    code: str,
    details: dict[str, Any],
    message: str | None = None,
    *,
    retryable: bool | None = None,
) -> TranscriptError:
    # TranscriptError takes no details argument; AppError carries them as an attribute.
    info = TRANSCRIPT_ERROR_CODES[code]
    error = TranscriptError(
        message or info.message,
        code=code,
        retryable=info.retryable if retryable is None else retryable,
    )
    error.details = details
    return error


def _available_languages(transcript_list: object) -> list[dict[str, Any]] | None:
    if transcript_list is None:
        return None
    try:
        return [
            {
                "language_code": t.language_code,
                "language": t.language,
                "is_generated": bool(t.is_generated),
            }
            for t in transcript_list  # type: ignore[attr-defined]
        ]
    except Exception:  # best effort: details must never hide the real error
        return None


def _no_transcript_message(languages: Sequence[str], available: list[dict[str, Any]]) -> str:
    wanted = ", ".join(languages) or "the requested language"
    if not available:
        return f"This video has no transcript in {wanted}, nor in any other language."
    offered = ", ".join(
        f"{a['language_code']} ({'auto-generated' if a['is_generated'] else 'manual'})" for a in available
    )
    return f"This video has no transcript in {wanted}; it has: {offered}."


def build_proxy_config(settings: Settings) -> ProxyConfig | None:
    """The youtube-transcript-api proxy config described by ``settings`` (None: direct).

    Webshare (rotating residential IPs) or one generic HTTP(S) proxy; configuring half of
    Webshare, or both kinds at once, is refused rather than silently picking one.
    """
    from youtube_transcript_api.proxies import GenericProxyConfig, WebshareProxyConfig

    username = settings.webshare_proxy_username
    password = settings.webshare_proxy_password
    http_url = settings.proxy_http_url.get_secret_value() if settings.proxy_http_url else None
    https_url = settings.proxy_https_url.get_secret_value() if settings.proxy_https_url else None

    if bool(username) != bool(password):
        raise ConfigurationError(
            "invalid configuration: set both YTR_WEBSHARE_PROXY_USERNAME and "
            "YTR_WEBSHARE_PROXY_PASSWORD, or neither"
        )
    if username and password:
        if http_url or https_url:
            raise ConfigurationError(
                "invalid configuration: configure either the Webshare proxy or "
                "YTR_PROXY_HTTP_URL/YTR_PROXY_HTTPS_URL, not both"
            )
        return WebshareProxyConfig(proxy_username=username, proxy_password=password.get_secret_value())
    if http_url or https_url:
        return GenericProxyConfig(http_url=http_url, https_url=https_url)
    return None


class YouTubeTranscriptSource:
    """TranscriptSource over youtube-transcript-api 1.x.

    The library's ``YouTubeTranscriptApi`` wraps a requests Session, which is not thread-safe,
    so each thread gets (and keeps) its own instance.
    """

    def __init__(
        self,
        *,
        proxy_config: ProxyConfig | None = None,
        timeout_seconds: float = 10.0,
        http_client_factory: Callable[[], requests.Session] | None = None,
    ) -> None:
        """``http_client_factory`` builds one Session per thread (tests hand in a Session with a
        canned adapter); by default a Session with a ``timeout_seconds`` default timeout."""
        self._proxy_config = proxy_config
        self._timeout = timeout_seconds
        self._http_client_factory = http_client_factory
        self._local = threading.local()

    @classmethod
    def from_settings(cls, settings: Settings) -> YouTubeTranscriptSource:
        """Build the source with the proxy and timeout from ``settings``."""
        return cls(
            proxy_config=build_proxy_config(settings),
            timeout_seconds=settings.http_timeout_seconds,
        )

    @property
    def proxy_config(self) -> ProxyConfig | None:
        return self._proxy_config

    def api(self) -> YouTubeTranscriptApi:
        """This thread's library client, created on first use in the thread."""
        api: YouTubeTranscriptApi | None = getattr(self._local, "api", None)
        if api is None:
            api = self._new_api()
            self._local.api = api
        return api

    def _new_api(self) -> YouTubeTranscriptApi:
        from youtube_transcript_api import YouTubeTranscriptApi

        from ytresearch.youtube._http import TimeoutSession

        if self._http_client_factory is not None:
            client = self._http_client_factory()
        else:
            client = TimeoutSession(self._timeout)
        return YouTubeTranscriptApi(proxy_config=self._proxy_config, http_client=client)

    def fetch(self, video_id: str, languages: Sequence[str]) -> Transcript:
        """The best transcript: a manual one in the first available wanted language, else a
        generated one in the first available wanted language. Raises TranscriptError."""
        wanted = [lang for lang in languages if lang] or list(DEFAULT_LANGUAGES)
        if not is_video_id(video_id):
            # Checked here so a URL never reaches YouTube (the library would call it unavailable).
            raise _error("INVALID_VIDEO_ID", {"video_id": video_id[:200]})
        try:
            transcript_list = self.api().list(video_id)
            fetched = _choose(transcript_list, wanted).fetch()
        except Exception as exc:
            mapped = to_transcript_error(exc, video_id, wanted)
            if mapped is None:
                raise
            # Type names only: library messages are long and network errors can embed proxy URLs.
            # A traceback only for builtin errors, which may also be a bug on our side.
            logger.warning(
                "transcript fetch failed for %s: %s (%s, retryable=%s)",
                video_id,
                mapped.code,
                type(exc).__name__,
                mapped.retryable,
                exc_info=type(exc).__module__ == "builtins",
            )
            raise mapped from exc
        return _to_transcript(video_id, fetched)


def _choose(transcript_list: TranscriptList, languages: list[str]) -> LibraryTranscript:
    from youtube_transcript_api import NoTranscriptFound

    # Manual captions are written by people; any wanted language in manual beats generated.
    try:
        return transcript_list.find_manually_created_transcript(languages)
    except NoTranscriptFound:
        return transcript_list.find_generated_transcript(languages)


def _to_transcript(video_id: str, fetched: FetchedTranscript) -> Transcript:
    return Transcript(
        video_id=video_id,
        language=fetched.language_code,
        is_generated=bool(fetched.is_generated),
        segments=[
            TranscriptSegment(text=s.text, start=float(s.start), duration=float(s.duration))
            for s in fetched.snippets
        ],
    )


class SampleTranscriptSource:
    """TranscriptSource over sample files (``<folder>/<video_id>.json``), for the offline local run
    and tests: those in ``samples_dir`` (``YTR_SAMPLES_DIR``, a person's own) first, then the
    bundled ones."""

    def __init__(self, samples_dir: Path | str | None = None) -> None:
        self.samples_dir = Path(samples_dir) if samples_dir is not None else default_samples_dir()
        self.folders = sample_folders(self.samples_dir)

    def fetch(self, video_id: str, languages: Sequence[str]) -> Transcript:
        """The sample transcript for ``video_id``; TranscriptError for unknown ids or when the
        sample's language is not among ``languages`` (like YouTube would)."""
        try:
            sample = find_sample(self.folders, video_id)
        except SampleFileError as exc:
            # Not retryable, unlike YouTube's odd pages: a broken file stays broken.
            raise TranscriptError(str(exc), code="YOUTUBE_UNPARSABLE", retryable=False) from exc
        if sample is None:
            known = all_sample_ids(self.folders)
            raise _error(
                "VIDEO_UNAVAILABLE",
                {"video_id": video_id[:200], "sample_ids": known},
                f"No sample transcript for video {video_id[:40]!r}; the offline samples are: "
                + (", ".join(known) or "(none)")
                + ".",
            )
        wanted = [lang for lang in languages if lang] or list(DEFAULT_LANGUAGES)
        if sample.language not in wanted:
            available = [
                {
                    "language_code": sample.language,
                    "language": sample.language,
                    "is_generated": sample.is_generated,
                }
            ]
            raise _error(
                "NO_TRANSCRIPT_IN_LANGUAGE",
                {
                    "video_id": video_id,
                    "requested_languages": wanted,
                    "available_languages": available,
                },
                _no_transcript_message(wanted, available),
            )
        return Transcript(
            video_id=sample.video_id,
            language=sample.language,
            is_generated=sample.is_generated,
            segments=list(sample.segments),
        )
