"""Metadata sources: oEmbed (+ YouTube Data API v3 when a key is set), the samples, and none.

Metadata is best effort: a failing source logs a warning and returns what it has, never raises.
httpx is imported lazily inside the adapter to keep ``import ytresearch.youtube`` light.
"""

from __future__ import annotations

import logging
from dataclasses import fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from ytresearch.ports import VideoMetadata
from ytresearch.youtube._data_api import (
    API_KEY_HEADER,
    DATA_API_BASE_URL,
    google_reasons,
    parse_iso8601_duration,
)
from ytresearch.youtube._data_api import parse_datetime as _parse_datetime
from ytresearch.youtube._data_api import text_or_none as _text
from ytresearch.youtube._samples import SampleFileError, default_samples_dir, find_sample, sample_folders
from ytresearch.youtube.urls import canonical_url, is_video_id

if TYPE_CHECKING:
    import httpx

    from ytresearch.config import Settings

__all__ = [
    "NullMetadataSource",
    "OEmbedMetadataSource",
    "SampleMetadataSource",
    "parse_iso8601_duration",
]

logger = logging.getLogger(__name__)

OEMBED_URL = "https://www.youtube.com/oembed"
DATA_API_URL = DATA_API_BASE_URL + "/videos"

_THUMBNAIL_SIZES = ("maxres", "standard", "high", "medium", "default")


def _http_url(value: Any) -> str | None:
    # URLs end up in links and <img src>: accept web URLs only (no javascript:, data: ...).
    text = _text(value)
    return text if text and text.lower().startswith(("https://", "http://")) else None


class OEmbedMetadataSource:
    """MetadataSource over YouTube's oEmbed endpoint (no key: title, channel, thumbnail) and the
    YouTube Data API v3 when ``data_api_key`` is set (duration, publish date)."""

    def __init__(
        self,
        http_timeout: float,
        data_api_key: str | SecretStr | None = None,
        oembed_url: str = OEMBED_URL,
        data_api_url: str = DATA_API_URL,
    ) -> None:
        self._timeout = http_timeout
        # Kept as SecretStr so a repr or a debugger never shows the key.
        self._data_api_key = SecretStr(data_api_key) if isinstance(data_api_key, str) else data_api_key
        self._oembed_url = oembed_url
        self._data_api_url = data_api_url

    @classmethod
    def from_settings(cls, settings: Settings) -> OEmbedMetadataSource:
        """Build the source with the timeout and Data API key from ``settings``."""
        return cls(
            http_timeout=settings.http_timeout_seconds,
            data_api_key=settings.youtube_data_api_key,
        )

    def fetch(self, video_id: str) -> VideoMetadata:
        """Best-effort metadata; any failure is logged and whatever was found is returned."""
        if not is_video_id(video_id):
            logger.warning("metadata skipped: %r is not a video id", video_id[:40])
            return VideoMetadata()
        found = VideoMetadata()
        try:
            import httpx

            with httpx.Client(timeout=self._timeout) as client:
                found = self._from_oembed(client, video_id)
                if self._data_api_key is not None and self._data_api_key.get_secret_value():
                    found = _fill_gaps(found, self._from_data_api(client, video_id))
        except Exception as exc:  # the contract: metadata never fails an ingest
            logger.warning("metadata for %s failed unexpectedly (%s)", video_id, type(exc).__name__)
        return found

    def _get_json(
        self,
        client: httpx.Client,
        what: str,
        video_id: str,
        url: str,
        params: dict[str, str],
        headers: dict[str, str] | None = None,
    ) -> Any:
        """The decoded JSON body, or None (after a warning) on any transport/HTTP/JSON error.
        Log lines carry the status and error names only, never headers (the key travels in
        one) or bodies."""
        import httpx

        try:
            response = client.get(url, params=params, headers=headers)
        except httpx.HTTPError as exc:
            logger.warning("%s request for %s failed: %s", what, video_id, type(exc).__name__)
            return None
        if response.status_code != 200:
            logger.warning(
                "%s for %s returned HTTP %s%s",
                what,
                video_id,
                response.status_code,
                _google_reason(response),
            )
            return None
        try:
            return response.json()
        except ValueError:
            logger.warning("%s for %s returned a body that is not JSON", what, video_id)
            return None

    def _from_oembed(self, client: httpx.Client, video_id: str) -> VideoMetadata:
        body = self._get_json(
            client,
            "oEmbed",
            video_id,
            self._oembed_url,
            {"url": canonical_url(video_id), "format": "json"},
        )
        if body is None:
            return VideoMetadata()
        if not isinstance(body, dict):
            logger.warning("oEmbed for %s returned JSON that is not an object", video_id)
            return VideoMetadata()
        return VideoMetadata(
            title=_text(body.get("title")),
            channel=_text(body.get("author_name")),
            channel_url=_http_url(body.get("author_url")),
            thumbnail_url=_http_url(body.get("thumbnail_url")),
        )

    def _from_data_api(self, client: httpx.Client, video_id: str) -> VideoMetadata:
        assert self._data_api_key is not None
        body = self._get_json(
            client,
            "YouTube Data API",
            video_id,
            self._data_api_url,
            {"id": video_id, "part": "snippet,contentDetails"},
            # In a header, not the query string: URLs end up in httpx's own log lines and in
            # exception messages; headers do not.
            headers={API_KEY_HEADER: self._data_api_key.get_secret_value()},
        )
        items = body.get("items") if isinstance(body, dict) else None
        if not isinstance(items, list) or not items or not isinstance(items[0], dict):
            if body is not None:
                logger.warning("YouTube Data API has no video %s", video_id)
            return VideoMetadata()
        item = items[0]
        snippet = item.get("snippet")
        if not isinstance(snippet, dict):
            snippet = {}
        details = item.get("contentDetails")
        duration = details.get("duration") if isinstance(details, dict) else None
        channel_id = _text(snippet.get("channelId"))
        return VideoMetadata(
            title=_text(snippet.get("title")),
            channel=_text(snippet.get("channelTitle")),
            channel_url=f"https://www.youtube.com/channel/{channel_id}" if channel_id else None,
            thumbnail_url=_best_thumbnail(snippet.get("thumbnails")),
            duration_seconds=parse_iso8601_duration(duration) if isinstance(duration, str) else None,
            published_at=_parse_datetime(snippet.get("publishedAt")),
        )


def _fill_gaps(first: VideoMetadata, second: VideoMetadata) -> VideoMetadata:
    """``first`` wins for what both know (oEmbed); ``second`` (the Data API) fills the gaps."""
    return replace(
        first,
        **{f.name: getattr(second, f.name) for f in fields(second) if getattr(first, f.name) is None},
    )


def _best_thumbnail(thumbnails: Any) -> str | None:
    if not isinstance(thumbnails, dict):
        return None
    for size in _THUMBNAIL_SIZES:
        entry = thumbnails.get(size)
        if isinstance(entry, dict) and (url := _http_url(entry.get("url"))):
            return url
    return None


def _google_reason(response: httpx.Response) -> str:
    """Google's machine-readable error reason (``quotaExceeded``, ``keyInvalid``), if any."""
    reasons = google_reasons(response)
    return f" ({reasons[0]})" if reasons else ""


class SampleMetadataSource:
    """MetadataSource over the sample files (title, channel, duration): ``samples_dir``'s first,
    then the bundled ones, like ``SampleTranscriptSource``."""

    def __init__(self, samples_dir: Path | str | None = None) -> None:
        self.samples_dir = Path(samples_dir) if samples_dir is not None else default_samples_dir()
        self.folders = sample_folders(self.samples_dir)

    def fetch(self, video_id: str) -> VideoMetadata:
        """The sample's metadata, or empty metadata for unknown ids or a malformed file."""
        try:
            sample = find_sample(self.folders, video_id)
        except SampleFileError as exc:
            logger.warning("sample metadata unreadable: %s", exc)
            return VideoMetadata()
        if sample is None:
            return VideoMetadata()
        return VideoMetadata(
            title=sample.title,
            channel=sample.channel,
            channel_url=_http_url(sample.channel_url),
            duration_seconds=sample.duration_seconds,
        )


class NullMetadataSource:
    """MetadataSource that knows nothing (metadata disabled)."""

    def fetch(self, video_id: str) -> VideoMetadata:
        """Always empty metadata."""
        return VideoMetadata()
