"""Finding videos (the VideoDiscovery port) with the YouTube Data API v3, and the factory that picks
it or the offline samples' catalog (``sample_catalog``) from settings.

httpx is imported on the first request and a key kept in Secrets Manager is read on the first call,
so importing this module and building the adapter stay cheap.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeGuard

from pydantic import SecretStr

from ytresearch.errors import ConfigurationError, DependencyUnavailableError
from ytresearch.ports import DiscoveryError, VideoCandidate, VideoDiscovery
from ytresearch.youtube._data_api import (
    API_KEY_HEADER,
    DATA_API_BASE_URL,
    google_reasons,
    parse_datetime,
    parse_iso8601_duration,
    text_or_none,
)
from ytresearch.youtube.discovery_inputs import (
    CHANNEL_NOT_FOUND,
    DISCOVERY_ERROR_CODES,
    DISCOVERY_NOT_CONFIGURED,
    DISCOVERY_UNAVAILABLE,
    MAX_LIST_ITEMS,
    MAX_SEARCH_RESULTS,
    PLAYLIST_NOT_FOUND,
    ChannelRef,
    PlaylistRef,
    checked_query,
    clamp_count,
    is_playlist_id,
    parse_list_url,
)
from ytresearch.youtube.sample_catalog import SampleCatalogDiscovery
from ytresearch.youtube.urls import is_video_id

if TYPE_CHECKING:
    import httpx

    from ytresearch.config import Settings

__all__ = [
    "DISCOVERY_ERROR_CODES",
    "SampleCatalogDiscovery",
    "YouTubeDataDiscovery",
    "build_discovery",
    "parse_list_url",
]

logger = logging.getLogger(__name__)

_MAX_PLAYLIST_PAGES = 10  # pages skipped items can cost before we stop (quota: 2 units a page)
_API_PAGE_MAX = 50  # the Data API's maxResults ceiling

_NOT_CONFIGURED_MESSAGE = (
    "Searching YouTube needs a YouTube Data API key: set YTR_YOUTUBE_DATA_API_KEY "
    "(or, on AWS, YTR_YOUTUBE_DATA_API_KEY_SECRET_ARN naming a secret that holds it)."
)
_QUOTA_REASONS = frozenset(
    {
        "quotaExceeded",
        "dailyLimitExceeded",
        "rateLimitExceeded",
        "userRateLimitExceeded",
        "RATE_LIMIT_EXCEEDED",
    }
)
# The key is wrong, or not allowed to call this API from here: trying again will not help.
_KEY_REASONS = frozenset(
    {
        "keyInvalid",
        "keyExpired",
        "ipRefererBlocked",
        "accessNotConfigured",
        "API_KEY_INVALID",
        "API_KEY_EXPIRED",
        "API_KEY_SERVICE_BLOCKED",
        "API_KEY_IP_ADDRESS_BLOCKED",
        "API_KEY_HTTP_REFERRER_BLOCKED",
        "SERVICE_DISABLED",
    }
)
_PRIVATE_LIST_REASONS = frozenset({"playlistItemsNotAccessible", "playlistForbidden"})
_LISTED = frozenset({"public", "unlisted"})  # a playlist item in any other state cannot be watched


class YouTubeDataDiscovery:
    """VideoDiscovery over the YouTube Data API v3: search.list, playlistItems.list and
    channels.list, then one videos.list per batch for titles, durations and dates.

    ``api_key`` is the key or a function that returns it (read on the first call, e.g. from Secrets
    Manager, and kept; a failed read is tried again on the next call). The key travels in a
    header; error messages and log lines carry HTTP statuses and Google's reason names only.
    Quota: a search costs 101 units, a playlist or channel about 2-3 per 50 videos.
    """

    def __init__(
        self,
        api_key: str | Callable[[], str],
        *,
        http_timeout: float,
        base_url: str = DATA_API_BASE_URL,
    ) -> None:
        self._key: SecretStr | None = SecretStr(api_key) if isinstance(api_key, str) else None
        self._key_source = None if isinstance(api_key, str) else api_key
        self._key_lock = threading.Lock()
        self._timeout = http_timeout
        self._base_url = base_url.rstrip("/")

    def search(self, query: str, max_results: int) -> list[VideoCandidate]:
        """Videos matching ``query`` in YouTube's relevance order, at most ``max_results``
        (clamped to 1..25). Raises DiscoveryError."""
        text = checked_query(query)
        count = clamp_count(max_results, MAX_SEARCH_RESULTS)
        with self._client() as client:
            body = self._get(
                client,
                "search",
                {"part": "snippet", "type": "video", "q": text, "maxResults": str(count)},
            )
            ids = _unique(
                item["id"]["videoId"]
                for item in _items(body)
                if isinstance(item.get("id"), dict) and _is_id(item["id"].get("videoId"))
            )[:count]
            return self._videos(client, ids)

    def expand(self, url: str, limit: int) -> list[VideoCandidate]:
        """The videos of a playlist, or a channel's newest uploads, at most ``limit`` (clamped to
        1..50), in the list's order; private and deleted items are skipped. Raises DiscoveryError."""
        ref = parse_list_url(url)
        count = clamp_count(limit, MAX_LIST_ITEMS)
        with self._client() as client:
            if isinstance(ref, PlaylistRef):
                return self._playlist(client, ref.playlist_id, count)
            uploads = self._uploads_playlist(client, ref)
            try:
                return self._playlist(client, uploads, count)
            except DiscoveryError as exc:
                if exc.code == PLAYLIST_NOT_FOUND:
                    return []  # a channel that never uploaded has no uploads playlist
                raise

    # -------------------------------------------------------- the calls

    def _uploads_playlist(self, client: httpx.Client, ref: ChannelRef) -> str:
        lookups = {
            "id": [{"id": ref.value}],
            "handle": [{"forHandle": "@" + ref.value}],
            # A /c/ name is not something the API can look up; most became handles, and old
            # ones are usernames.
            "custom": [{"forHandle": "@" + ref.value}, {"forUsername": ref.value}],
            "username": [{"forUsername": ref.value}],
        }[ref.kind]
        for lookup in lookups:
            try:
                body = self._get(
                    client, "channels", {"part": "contentDetails", **lookup}, not_found=CHANNEL_NOT_FOUND
                )
            except DiscoveryError as exc:
                if exc.code == CHANNEL_NOT_FOUND:
                    continue  # the API usually answers an empty list instead; the next lookup may know it
                raise
            for item in _items(body):
                details = item.get("contentDetails")
                related = details.get("relatedPlaylists") if isinstance(details, dict) else None
                uploads = related.get("uploads") if isinstance(related, dict) else None
                if isinstance(uploads, str) and is_playlist_id(uploads):
                    return uploads
        raise DiscoveryError("YouTube has no channel at that URL.", code=CHANNEL_NOT_FOUND)

    def _playlist(self, client: httpx.Client, playlist_id: str, count: int) -> list[VideoCandidate]:
        found: list[VideoCandidate] = []
        seen: set[str] = set()
        page_token: str | None = None
        for _ in range(_MAX_PLAYLIST_PAGES):
            params = {
                "part": "contentDetails,status",
                "playlistId": playlist_id,
                "maxResults": str(min(_API_PAGE_MAX, count - len(found))),
            }
            if page_token:
                params["pageToken"] = page_token
            body = self._get(client, "playlistItems", params, not_found=PLAYLIST_NOT_FOUND)
            ids = [video_id for video_id in _unique(_playlist_item_ids(_items(body))) if video_id not in seen]
            seen.update(ids)
            # videos.list answers only for videos that can be watched: deleted ones drop out here.
            found.extend(self._videos(client, ids)[: count - len(found)])
            token = body.get("nextPageToken")
            page_token = token if isinstance(token, str) and token else None
            if len(found) >= count or page_token is None:
                break
        return found

    def _videos(self, client: httpx.Client, ids: list[str]) -> list[VideoCandidate]:
        """Candidates for ``ids``, in that order, for the videos YouTube still serves."""
        if not ids:
            return []
        body = self._get(
            client,
            "videos",
            {"part": "snippet,contentDetails", "id": ",".join(ids), "maxResults": str(len(ids))},
        )
        by_id = {item["id"]: item for item in _items(body) if _is_id(item.get("id"))}
        return [_candidate(by_id[video_id]) for video_id in ids if video_id in by_id]

    # -------------------------------------------------------- HTTP and the key

    def _client(self) -> httpx.Client:
        key = self._api_key()  # before any connection: a missing key needs no network
        import httpx

        return httpx.Client(timeout=self._timeout, headers={API_KEY_HEADER: key})

    def _api_key(self) -> str:
        with self._key_lock:
            if self._key is None and self._key_source is not None:
                try:
                    self._key = SecretStr(self._key_source())
                except DependencyUnavailableError as exc:
                    raise DiscoveryError(
                        f"The YouTube Data API key could not be read just now ({exc.message}); "
                        "try again later.",
                        code=DISCOVERY_UNAVAILABLE,
                        retryable=True,
                    ) from None
                except ConfigurationError as exc:
                    raise DiscoveryError(
                        f"The YouTube Data API key is not usable: {exc.message}.",
                        code=DISCOVERY_NOT_CONFIGURED,
                    ) from None
            key = self._key.get_secret_value().strip() if self._key is not None else ""
        if not key:
            raise DiscoveryError(_NOT_CONFIGURED_MESSAGE, code=DISCOVERY_NOT_CONFIGURED)
        return key

    def _get(
        self, client: httpx.Client, resource: str, params: dict[str, str], *, not_found: str | None = None
    ) -> dict[str, Any]:
        """The JSON object the Data API answers ``resource`` with, or a DiscoveryError."""
        import httpx

        try:
            response = client.get(f"{self._base_url}/{resource}", params=params)
        except httpx.TimeoutException as exc:
            logger.warning("YouTube Data API %s timed out (%s)", resource, type(exc).__name__)
            raise _unavailable(f"did not answer in time ({type(exc).__name__})") from None
        except httpx.HTTPError as exc:
            logger.warning("YouTube Data API %s failed: %s", resource, type(exc).__name__)
            raise _unavailable(f"could not be reached ({type(exc).__name__})") from None
        if response.status_code != 200:
            raise _http_error(resource, response.status_code, google_reasons(response), not_found)
        try:
            body = response.json()
        except ValueError:
            body = None
        if not isinstance(body, dict):
            logger.warning("YouTube Data API %s answered with something that is not a JSON object", resource)
            raise _unavailable("answered with something that is not a JSON object")
        return body


def _http_error(resource: str, status: int, reasons: list[str], not_found: str | None) -> DiscoveryError:
    # The most telling reason: Google puts a generic one ("badRequest") before the precise one.
    precise = [r for r in reasons if r in _KEY_REASONS | _QUOTA_REASONS | _PRIVATE_LIST_REASONS]
    reason = next(iter(precise or reasons), None)
    shown = f"HTTP {status}" + (f", {reason}" if reason else "")
    logger.warning("YouTube Data API %s answered %s", resource, shown)
    if not_found is not None and (status == 404 or reason in _PRIVATE_LIST_REASONS):
        if not_found == CHANNEL_NOT_FOUND:
            return DiscoveryError("YouTube has no channel at that URL.", code=CHANNEL_NOT_FOUND)
        return DiscoveryError(
            "YouTube has no playlist at that URL, or it is private.", code=PLAYLIST_NOT_FOUND
        )
    if reason in _KEY_REASONS:
        return DiscoveryError(
            f"The YouTube Data API refused the configured key ({shown}): check "
            "YTR_YOUTUBE_DATA_API_KEY (or its secret) and that the API is enabled for it.",
            code=DISCOVERY_NOT_CONFIGURED,
        )
    if reason in _QUOTA_REASONS:
        return _unavailable(f"quota is used up for now ({shown})")
    if status in (403, 429) or status >= 500:
        return _unavailable(f"is not serving requests ({shown})")
    return DiscoveryError(f"The YouTube Data API refused the request ({shown}).", code=DISCOVERY_UNAVAILABLE)


def _unavailable(what: str) -> DiscoveryError:
    return DiscoveryError(
        f"The YouTube Data API {what}; try again later.", code=DISCOVERY_UNAVAILABLE, retryable=True
    )


def _items(body: dict[str, Any]) -> list[dict[str, Any]]:
    items = body.get("items")
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _playlist_item_ids(items: list[dict[str, Any]]) -> Iterable[str]:
    for item in items:
        status = item.get("status")
        privacy = status.get("privacyStatus") if isinstance(status, dict) else None
        if privacy is not None and privacy not in _LISTED:
            continue  # private, or deleted ("privacyStatusUnspecified")
        details = item.get("contentDetails")
        video_id = details.get("videoId") if isinstance(details, dict) else None
        if _is_id(video_id):
            yield video_id


def _candidate(item: dict[str, Any]) -> VideoCandidate:
    snippet = item.get("snippet")
    snippet = snippet if isinstance(snippet, dict) else {}
    details = item.get("contentDetails")
    duration = details.get("duration") if isinstance(details, dict) else None
    return VideoCandidate(
        video_id=item["id"],
        title=text_or_none(snippet.get("title")),
        channel=text_or_none(snippet.get("channelTitle")),
        duration_seconds=parse_iso8601_duration(duration) if isinstance(duration, str) else None,
        published_at=parse_datetime(snippet.get("publishedAt")),
    )


def _is_id(value: Any) -> TypeGuard[str]:
    return isinstance(value, str) and is_video_id(value)


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


# ---------------------------------------------------------------- the factory


def build_discovery(settings: Settings, samples_dir: Path | str | None = None) -> VideoDiscovery:
    """The samples' catalog for the offline run (``transcript_source == "samples"``), else the
    Data API with the key from YTR_YOUTUBE_DATA_API_KEY or, read on first use, from the secret
    YTR_YOUTUBE_DATA_API_KEY_SECRET_ARN names. With neither, every call answers
    DISCOVERY_NOT_CONFIGURED (the rest of the app runs fine without finding videos)."""
    if settings.transcript_source == "samples":
        return SampleCatalogDiscovery(samples_dir)
    key: str | Callable[[], str]
    if settings.youtube_data_api_key is not None and settings.youtube_data_api_key.get_secret_value():
        key = settings.youtube_data_api_key.get_secret_value()
    elif settings.youtube_data_api_key_secret_arn:
        key = functools.partial(_read_key_secret, settings.youtube_data_api_key_secret_arn)
    else:
        key = ""
    return YouTubeDataDiscovery(key, http_timeout=settings.http_timeout_seconds)


def _read_key_secret(arn: str) -> str:
    from ytresearch.secrets import read_youtube_data_api_key

    return read_youtube_data_api_key(arn)
