"""YouTubeTranscriptSource over the real youtube-transcript-api, with YouTube faked at the wire.

The library gets a real requests Session whose adapter for https://www.youtube.com answers with
canned watch pages, InnerTube player JSON and timedtext XML (or raises transport errors), so the
library's own parsing and its real exceptions are exercised; nothing leaves the process.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from xml.sax.saxutils import escape

import pytest
import requests
import youtube_transcript_api as yta
from requests.adapters import BaseAdapter
from youtube_transcript_api.proxies import GenericProxyConfig, WebshareProxyConfig

from ytresearch.config import load_settings
from ytresearch.errors import ConfigurationError
from ytresearch.ports import TranscriptError
from ytresearch.youtube import TRANSCRIPT_ERROR_CODES, YouTubeTranscriptSource
from ytresearch.youtube._http import TimeoutSession
from ytresearch.youtube.transcripts import (
    build_proxy_config,
    library_error_table,
    to_transcript_error,
)

VID = "SoLarP4nels"
WATCH_HTML = '<html><script>ytcfg.set({"INNERTUBE_API_KEY": "fakeKey_123"});</script></html>'


# ---------------------------------------------------------------- a fake YouTube at the wire


@dataclass
class Reply:
    status: int = 200
    body: str = ""
    content_type: str = "text/html; charset=utf-8"


Answer = Reply | BaseException | Callable[[requests.PreparedRequest], Reply]


def track(lang: str, name: str, *, generated: bool = False, base_url: str | None = None) -> dict:
    url = base_url or f"https://www.youtube.com/api/timedtext?v={VID}&lang={lang}"
    data: dict[str, Any] = {
        "baseUrl": url + ("&kind=asr" if generated else ""),
        "name": {"runs": [{"text": name}]},
        "languageCode": lang,
        "isTranslatable": False,
    }
    if generated:
        data["kind"] = "asr"
    return data


def player_reply(tracks: list[dict] | None = None, status: dict | None = None) -> Reply:
    data: dict[str, Any] = {"playabilityStatus": status or {"status": "OK"}}
    if tracks is not None:
        data["captions"] = {
            "playerCaptionsTracklistRenderer": {"captionTracks": tracks, "translationLanguages": []}
        }
    return Reply(body=json.dumps(data), content_type="application/json")


def timedtext_reply(request: requests.PreparedRequest) -> Reply:
    # The caption text names the track it came from, so tests can see which one was chosen.
    query = (request.url or "").split("?", 1)[1]
    params = dict(part.split("=", 1) for part in query.split("&"))
    label = params["lang"] + (" generated" if params.get("kind") == "asr" else " manual")
    lines = [(0.0, 2.5, f"{label} line one"), (2.75, 3.1, f"{label} line two")]
    body = "".join(f'<text start="{s}" dur="{d}">{escape(t)}</text>' for s, d, t in lines)
    return Reply(body=f'<?xml version="1.0" encoding="utf-8" ?><transcript>{body}</transcript>')


@dataclass
class FakeYouTube(BaseAdapter):
    watch: Answer = field(default_factory=lambda: Reply(body=WATCH_HTML))
    player: Answer = field(default_factory=lambda: player_reply([track("en", "English")]))
    timedtext: Answer = timedtext_reply
    seen: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)

    def __post_init__(self) -> None:
        super().__init__()

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:  # type: ignore[override]
        url = request.url or ""
        self.seen.append((request.method or "", url, kwargs))
        if "/watch?" in url:
            answer = self.watch
        elif "/youtubei/v1/player" in url:
            answer = self.player
        elif "/api/timedtext" in url:
            answer = self.timedtext
        else:
            raise AssertionError(f"unexpected request to {url}")
        if isinstance(answer, BaseException):
            raise answer
        reply = answer(request) if callable(answer) else answer
        response = requests.Response()
        response.status_code = reply.status
        response.reason = "OK" if reply.status < 400 else "Error"
        response._content = reply.body.encode()
        response.headers["Content-Type"] = reply.content_type
        response.encoding = "utf-8"
        response.url = url
        response.request = request
        return response

    def close(self) -> None:
        pass


@dataclass
class Sessions:
    """An http_client_factory that mounts the fake and remembers every Session it made."""

    fake: FakeYouTube
    made: list[requests.Session] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def __call__(self) -> requests.Session:
        session = requests.Session()
        # A longer prefix than "https://", so it wins over the retrying adapters the library
        # mounts for Webshare.
        session.mount("https://www.youtube.com", self.fake)
        with self.lock:
            self.made.append(session)
        return session


def source_for(fake: FakeYouTube, **kwargs: Any) -> YouTubeTranscriptSource:
    return YouTubeTranscriptSource(http_client_factory=Sessions(fake), **kwargs)


def fetch_error(fake: FakeYouTube, languages: tuple[str, ...] = ("en",)) -> TranscriptError:
    with pytest.raises(TranscriptError) as caught:
        source_for(fake).fetch(VID, languages)
    return caught.value


# ---------------------------------------------------------------- choosing a transcript


def test_fetch_returns_segments_language_and_kind() -> None:
    fake = FakeYouTube()

    transcript = source_for(fake).fetch(VID, ["en"])

    assert transcript.video_id == VID
    assert transcript.language == "en"
    assert transcript.is_generated is False
    assert [(s.text, s.start, s.duration) for s in transcript.segments] == [
        ("en manual line one", 0.0, 2.5),
        ("en manual line two", 2.75, 3.1),
    ]
    assert [method for method, _, _ in fake.seen] == ["GET", "POST", "GET"]


def test_manual_transcript_beats_generated_even_in_a_later_language() -> None:
    # Given English only auto-generated and German written by a person
    fake = FakeYouTube(player=player_reply([track("en", "English", generated=True), track("de", "Deutsch")]))

    transcript = source_for(fake).fetch(VID, ["en", "de"])

    assert (transcript.language, transcript.is_generated) == ("de", False)
    assert transcript.segments[0].text == "de manual line one"


def test_language_order_decides_among_manual_transcripts() -> None:
    fake = FakeYouTube(player=player_reply([track("en", "English"), track("de", "Deutsch")]))

    assert source_for(fake).fetch(VID, ["de", "en"]).language == "de"
    assert source_for(fake).fetch(VID, ["en", "de"]).language == "en"


def test_generated_transcript_is_used_when_no_manual_one_is_wanted() -> None:
    fake = FakeYouTube(
        player=player_reply(
            [
                track("fr", "Français"),
                track("de", "Deutsch", generated=True),
                track("en", "English", generated=True),
            ]
        )
    )

    transcript = source_for(fake).fetch(VID, ["en", "de"])

    assert (transcript.language, transcript.is_generated) == ("en", True)
    assert transcript.segments[0].text == "en generated line one"


def test_empty_language_list_means_english() -> None:
    fake = FakeYouTube(player=player_reply([track("de", "Deutsch"), track("en", "English")]))

    assert source_for(fake).fetch(VID, []).language == "en"


def test_no_transcript_in_wanted_languages_lists_what_exists() -> None:
    fake = FakeYouTube(player=player_reply([track("fr", "Français"), track("es", "Español", generated=True)]))

    error = fetch_error(fake, ("en", "de"))

    assert (error.code, error.retryable) == ("NO_TRANSCRIPT_IN_LANGUAGE", False)
    assert error.details["requested_languages"] == ["en", "de"]
    assert error.details["available_languages"] == [
        {"language_code": "fr", "language": "Français", "is_generated": False},
        {"language_code": "es", "language": "Español", "is_generated": True},
    ]
    assert "en, de" in error.message
    assert "fr (manual)" in error.message and "es (auto-generated)" in error.message


def test_a_url_is_refused_before_any_request() -> None:
    fake = FakeYouTube()

    with pytest.raises(TranscriptError) as caught:
        source_for(fake).fetch("https://youtu.be/SoLarP4nels", ["en"])

    assert (caught.value.code, caught.value.retryable) == ("INVALID_VIDEO_ID", False)
    assert fake.seen == []


# ---------------------------------------------------------------- errors produced at the wire

CONSENT_HTML = '<form action="https://consent.youtube.com/s" method="post"></form>'
RECAPTCHA_HTML = '<html><div class="g-recaptcha"></div></html>'


def status(code: str, reason: str | None = None, subreason: str | None = None) -> dict:
    data: dict[str, Any] = {"status": code}
    if reason is not None:
        data["reason"] = reason
    if subreason is not None:
        data["errorScreen"] = {"playerErrorMessageRenderer": {"subreason": {"runs": [{"text": subreason}]}}}
    return data


WIRE_CASES: list[tuple[str, FakeYouTube, str, bool]] = [
    (
        "captions off",
        FakeYouTube(player=player_reply(tracks=None)),
        "TRANSCRIPTS_DISABLED",
        False,
    ),
    (
        "video gone",
        FakeYouTube(player=player_reply(status=status("ERROR", "This video is unavailable"))),
        "VIDEO_UNAVAILABLE",
        False,
    ),
    (
        "region locked",
        FakeYouTube(
            player=player_reply(status=status("UNPLAYABLE", "Video unavailable", "Not in your country"))
        ),
        "VIDEO_UNPLAYABLE",
        False,
    ),
    (
        "age restricted",
        FakeYouTube(
            player=player_reply(
                status=status("LOGIN_REQUIRED", "This video may be inappropriate for some users.")
            )
        ),
        "AGE_RESTRICTED",
        False,
    ),
    (
        "bot check",
        FakeYouTube(
            player=player_reply(status=status("LOGIN_REQUIRED", "Sign in to confirm you\u2019re not a bot"))
        ),
        "YOUTUBE_BLOCKED",
        True,
    ),
    ("HTTP 429", FakeYouTube(watch=Reply(status=429)), "YOUTUBE_BLOCKED", True),
    ("recaptcha page", FakeYouTube(watch=Reply(body=RECAPTCHA_HTML)), "YOUTUBE_BLOCKED", True),
    (
        "urllib3 gave up retrying",
        FakeYouTube(watch=requests.exceptions.RetryError("too many 429 error responses")),
        "YOUTUBE_BLOCKED",
        True,
    ),
    ("HTTP 500", FakeYouTube(watch=Reply(status=500)), "YOUTUBE_REQUEST_FAILED", True),
    (
        "player 503",
        FakeYouTube(player=Reply(status=503)),
        "YOUTUBE_REQUEST_FAILED",
        True,
    ),
    (
        "consent wall",
        FakeYouTube(watch=Reply(body=CONSENT_HTML)),
        "YOUTUBE_REQUEST_FAILED",
        True,
    ),
    (
        "no api key in page",
        FakeYouTube(watch=Reply(body="<html>nothing here</html>")),
        "YOUTUBE_UNPARSABLE",
        True,
    ),
    (
        "player body not JSON",
        FakeYouTube(player=Reply(body="<html>oops</html>")),
        "YOUTUBE_UNPARSABLE",
        True,
    ),
    (
        "caption track shape changed",
        FakeYouTube(
            player=Reply(
                body=json.dumps(
                    {
                        "playabilityStatus": {"status": "OK"},
                        "captions": {
                            "playerCaptionsTracklistRenderer": {
                                "captionTracks": [{"baseUrl": "https://www.youtube.com/x"}]
                            }
                        },
                    }
                )
            )
        ),
        "YOUTUBE_UNPARSABLE",
        True,
    ),
    (
        "timedtext not XML",
        FakeYouTube(timedtext=Reply(body="<transcript><text start=")),
        "YOUTUBE_UNPARSABLE",
        True,
    ),
    (
        "PO token experiment",
        FakeYouTube(
            player=player_reply(
                [
                    track(
                        "en",
                        "English",
                        base_url=f"https://www.youtube.com/api/timedtext?v={VID}&lang=en&exp=xpe",
                    )
                ]
            )
        ),
        "PO_TOKEN_REQUIRED",
        False,
    ),
    (
        "connection refused",
        FakeYouTube(watch=requests.exceptions.ConnectionError("connection refused")),
        "NETWORK_ERROR",
        True,
    ),
    (
        "read timeout",
        FakeYouTube(player=requests.exceptions.ReadTimeout("read timed out")),
        "NETWORK_ERROR",
        True,
    ),
    (
        "proxy down",
        FakeYouTube(watch=requests.exceptions.ProxyError("cannot connect to proxy")),
        "NETWORK_ERROR",
        True,
    ),
    (
        "body cut short",
        FakeYouTube(timedtext=requests.exceptions.ChunkedEncodingError("connection broken")),
        "NETWORK_ERROR",
        True,
    ),
]


@pytest.mark.parametrize(
    ("fake", "code", "retryable"),
    [case[1:] for case in WIRE_CASES],
    ids=[case[0] for case in WIRE_CASES],
)
def test_wire_failures_become_transcript_errors(fake: FakeYouTube, code: str, retryable: bool) -> None:
    error = fetch_error(fake)

    assert (error.code, error.retryable) == (code, retryable)
    assert error.details["video_id"] == VID
    assert error.message in {message for _, _, message in library_error_table().values()}
    assert error.__cause__ is not None  # the library error stays attached for debugging


def test_unplayable_video_keeps_youtubes_reason_in_details() -> None:
    fake = FakeYouTube(player=player_reply(status=status("UNPLAYABLE", "Members only", "Join this channel")))

    error = fetch_error(fake)

    assert error.details["youtube_reason"] == "Members only"


def test_errors_we_do_not_know_propagate_unchanged() -> None:
    # A bug must stay a bug, not turn into a retryable "YouTube failed".
    fake = FakeYouTube(watch=RuntimeError("boom"))

    with pytest.raises(RuntimeError, match="boom"):
        source_for(fake).fetch(VID, ["en"])


def test_failure_log_names_the_code_but_never_the_proxy_credentials(
    caplog: pytest.LogCaptureFixture,
) -> None:
    fake = FakeYouTube(
        watch=requests.exceptions.ProxyError("Cannot connect to proxy http://bob:s3cr3t@proxy:8080")
    )
    caplog.set_level(logging.DEBUG)

    fetch_error(fake)

    assert "NETWORK_ERROR" in caplog.text and VID in caplog.text
    assert "s3cr3t" not in caplog.text


# ---------------------------------------------------------------- every library error class


def _no_transcript_found() -> yta.NoTranscriptFound:
    transcript_list = yta.TranscriptList(
        VID,
        {"fr": yta.Transcript(requests.Session(), VID, "https://x", "Français", "fr", False, [])},
        {"en": yta.Transcript(requests.Session(), VID, "https://y", "English", "en", True, [])},
        [],
    )
    return yta.NoTranscriptFound(VID, ["de"], transcript_list)


def _http_error() -> requests.HTTPError:
    return requests.HTTPError("500 Server Error: Internal Server Error for url: https://x")


LIBRARY_CASES: list[tuple[BaseException, str, bool]] = [
    (yta.TranscriptsDisabled(VID), "TRANSCRIPTS_DISABLED", False),
    (_no_transcript_found(), "NO_TRANSCRIPT_IN_LANGUAGE", False),
    (yta.NotTranslatable(VID), "NO_TRANSCRIPT_IN_LANGUAGE", False),
    (yta.TranslationLanguageNotAvailable(VID), "NO_TRANSCRIPT_IN_LANGUAGE", False),
    (yta.VideoUnavailable(VID), "VIDEO_UNAVAILABLE", False),
    (yta.VideoUnplayable(VID, "Private video", ["Ask the owner"]), "VIDEO_UNPLAYABLE", False),
    (yta.VideoUnplayable(VID, None, []), "VIDEO_UNPLAYABLE", False),
    (yta.AgeRestricted(VID), "AGE_RESTRICTED", False),
    (yta.InvalidVideoId(VID), "INVALID_VIDEO_ID", False),
    (yta.IpBlocked(VID), "YOUTUBE_BLOCKED", True),
    (yta.RequestBlocked(VID), "YOUTUBE_BLOCKED", True),
    (
        yta.RequestBlocked(VID).with_proxy_config(GenericProxyConfig("http://p:1")),
        "YOUTUBE_BLOCKED",
        True,
    ),
    (yta.PoTokenRequired(VID), "PO_TOKEN_REQUIRED", False),
    (yta.YouTubeDataUnparsable(VID), "YOUTUBE_UNPARSABLE", True),
    (yta.YouTubeRequestFailed(VID, _http_error()), "YOUTUBE_REQUEST_FAILED", True),
    (yta.FailedToCreateConsentCookie(VID), "YOUTUBE_REQUEST_FAILED", True),
    (yta.CouldNotRetrieveTranscript(VID), "YOUTUBE_REQUEST_FAILED", True),
    (yta.YouTubeTranscriptApiException("something new"), "YOUTUBE_REQUEST_FAILED", True),
    (requests.exceptions.ConnectionError("refused"), "NETWORK_ERROR", True),
    (requests.exceptions.ConnectTimeout("connect timeout"), "NETWORK_ERROR", True),
    (requests.exceptions.Timeout("timeout"), "NETWORK_ERROR", True),
    (requests.exceptions.SSLError("bad certificate"), "NETWORK_ERROR", True),
    (requests.exceptions.RetryError("429s"), "YOUTUBE_BLOCKED", True),
    (requests.exceptions.JSONDecodeError("Expecting value", "<html>", 0), "YOUTUBE_UNPARSABLE", True),
]


@pytest.mark.parametrize(
    ("exc", "code", "retryable"), LIBRARY_CASES, ids=[type(c[0]).__name__ for c in LIBRARY_CASES]
)
def test_every_library_error_maps_to_a_code(
    monkeypatch: pytest.MonkeyPatch, exc: BaseException, code: str, retryable: bool
) -> None:
    # Given the per-thread library client raises the real exception class
    source = YouTubeTranscriptSource(http_client_factory=Sessions(FakeYouTube()))

    def raise_it(video_id: str) -> None:
        raise exc

    monkeypatch.setattr(source.api(), "list", raise_it)

    with pytest.raises(TranscriptError) as caught:
        source.fetch(VID, ["de"])

    assert (caught.value.code, caught.value.retryable) == (code, retryable)
    assert caught.value.message  # a human sentence, never the library's essay
    assert "github.com" not in caught.value.message
    assert caught.value.__cause__ is exc


def test_no_transcript_found_built_directly_still_lists_languages() -> None:
    error = to_transcript_error(_no_transcript_found(), VID, ["de"])

    assert error is not None
    assert [a["language_code"] for a in error.details["available_languages"]] == ["fr", "en"]


def test_every_exception_the_library_exports_is_mapped() -> None:
    # Catches new error classes after a library upgrade that would otherwise fall to a base.
    table = library_error_table()
    exported = [getattr(yta, name) for name in yta.__all__]
    errors = [cls for cls in exported if isinstance(cls, type) and issubclass(cls, Exception)]
    unmapped = [
        cls.__name__
        for cls in errors
        if cls not in table and not issubclass(cls, yta.CookieError)  # cookies are unused in 1.x
    ]
    assert unmapped == []


def test_error_table_and_code_list_agree() -> None:
    for code, retryable, message in library_error_table().values():
        assert code in TRANSCRIPT_ERROR_CODES
        assert retryable is TRANSCRIPT_ERROR_CODES[code].retryable
        assert message
    used = {code for code, _, _ in library_error_table().values()}
    # INVALID_VIDEO_ID is also raised by our own pre-check.
    assert set(TRANSCRIPT_ERROR_CODES) == used


def test_to_transcript_error_ignores_unrelated_exceptions() -> None:
    assert to_transcript_error(RuntimeError("bug"), VID) is None


# ---------------------------------------------------------------- one library client per thread


def test_each_thread_gets_its_own_client_and_keeps_it() -> None:
    fake = FakeYouTube()
    sessions = Sessions(fake)
    source = YouTubeTranscriptSource(http_client_factory=sessions)
    start = threading.Barrier(3)
    seen: dict[str, list[object]] = {}
    failures: list[BaseException] = []

    def work() -> None:
        try:
            start.wait(timeout=5)
            clients: list[object] = []
            for _ in range(2):
                source.fetch(VID, ["en"])
                clients.append(source.api())
            seen[threading.current_thread().name] = clients
        except BaseException as exc:
            failures.append(exc)

    threads = [threading.Thread(target=work, name=f"worker-{i}") for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert failures == []
    assert len(seen) == 3
    for clients in seen.values():
        assert clients[0] is clients[1]  # reused within a thread
    firsts = [clients[0] for clients in seen.values()]
    assert len({id(c) for c in firsts}) == 3  # never shared across threads
    assert len(sessions.made) == 3  # one Session per thread, not per call


def test_default_client_uses_a_session_with_a_timeout() -> None:
    source = YouTubeTranscriptSource(timeout_seconds=2.5)

    client = source.api()._fetcher._http_client  # the library keeps the Session here

    assert isinstance(client, TimeoutSession)
    assert client.default_timeout == 2.5


def test_timeout_session_applies_its_default_unless_given_one() -> None:
    fake = FakeYouTube()
    session = TimeoutSession(3.0)
    session.mount("https://www.youtube.com", fake)

    session.get(f"https://www.youtube.com/watch?v={VID}")
    session.get(f"https://www.youtube.com/watch?v={VID}", timeout=9)

    assert [kwargs["timeout"] for _, _, kwargs in fake.seen] == [3.0, 9]


# ---------------------------------------------------------------- proxy settings


def settings(**overrides: object) -> Any:
    return load_settings(**overrides)


def test_no_proxy_settings_means_direct_connections() -> None:
    assert build_proxy_config(settings()) is None
    assert YouTubeTranscriptSource.from_settings(settings()).proxy_config is None


def test_generic_proxy_urls_come_from_settings() -> None:
    config = build_proxy_config(
        settings(proxy_http_url="http://u:p@proxy:3128", proxy_https_url="http://u:p@proxy:3129")
    )

    assert isinstance(config, GenericProxyConfig)
    assert config.to_requests_dict() == {
        "http": "http://u:p@proxy:3128",
        "https": "http://u:p@proxy:3129",
    }


def test_one_generic_proxy_url_serves_both_schemes() -> None:
    config = build_proxy_config(settings(proxy_https_url="http://proxy:3128"))

    assert config is not None
    assert config.to_requests_dict() == {"http": "http://proxy:3128", "https": "http://proxy:3128"}


def test_webshare_credentials_come_from_settings() -> None:
    source = YouTubeTranscriptSource.from_settings(
        settings(webshare_proxy_username="alice", webshare_proxy_password="pw", http_timeout_seconds=4)
    )

    config = source.proxy_config
    assert isinstance(config, WebshareProxyConfig)
    assert (config.proxy_username, config.proxy_password) == ("alice", "pw")
    assert "alice-rotate:pw@p.webshare.io" in config.url


@pytest.mark.parametrize(
    "overrides",
    [
        {"webshare_proxy_username": "alice"},
        {"webshare_proxy_password": "pw"},
        {
            "webshare_proxy_username": "alice",
            "webshare_proxy_password": "pw",
            "proxy_https_url": "http://proxy:3128",
        },
    ],
    ids=["username only", "password only", "webshare and generic"],
)
def test_ambiguous_proxy_settings_are_refused(overrides: dict[str, object]) -> None:
    with pytest.raises(ConfigurationError) as caught:
        build_proxy_config(settings(**overrides))
    assert "pw" not in caught.value.message.replace("PROXY_PASSWORD", "")


def test_proxy_reaches_the_wire() -> None:
    fake = FakeYouTube()
    source = YouTubeTranscriptSource(
        proxy_config=GenericProxyConfig(https_url="http://proxy.internal:3128"),
        http_client_factory=Sessions(fake),
    )

    source.fetch(VID, ["en"])

    assert all(kwargs["proxies"].get("https") == "http://proxy.internal:3128" for _, _, kwargs in fake.seen)


def test_webshare_proxy_reaches_the_wire_and_blocks_are_still_mapped() -> None:
    # Webshare makes the library retry blocked requests on fresh IPs before giving up.
    fake = FakeYouTube(watch=Reply(status=429))
    source = YouTubeTranscriptSource(
        proxy_config=WebshareProxyConfig("alice", "pw", retries_when_blocked=2),
        http_client_factory=Sessions(fake),
    )

    with pytest.raises(TranscriptError) as caught:
        source.fetch(VID, ["en"])

    assert (caught.value.code, caught.value.retryable) == ("YOUTUBE_BLOCKED", True)
    assert len(fake.seen) == 2  # one try per IP
    assert all("p.webshare.io" in kwargs["proxies"]["https"] for _, _, kwargs in fake.seen)
