"""YouTubeDataDiscovery against a real HTTP server on 127.0.0.1 that speaks the YouTube Data API v3's
JSON (search, videos, playlistItems, channels), and the key read from Secrets Manager (moto)."""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import boto3
import pytest

from tests.support.aws import fake_aws
from tests.support.http_stub import QuietHandler, serving
from ytresearch.errors import ConfigurationError
from ytresearch.ports import DiscoveryError, VideoCandidate
from ytresearch.secrets import read_youtube_data_api_key
from ytresearch.youtube import YouTubeDataDiscovery

KEY = "AIzaTEST-discovery-key-never-shown"
API = "/youtube/v3"
PLAYLIST = "PLfakePlaylist0000000000000000001"
UPLOADS = "UUfakeChannel00000000000"
CHANNEL_ID = "UCfakeChannel00000000000"

# The videos the fake YouTube serves (videos.list answers only these): id -> (title, channel, duration).
VIDEOS = {
    "vid00000001": ("Sourdough & starters", "Crumb Kitchen", "PT12M5S"),
    "vid00000002": ("Bread science", "Crumb Kitchen", "PT1H2M3S"),
    "vid00000003": ("Live: baking along", "Crumb Kitchen", "P0D"),
    "vid00000004": ("Rye loaves", "Crumb Kitchen", "PT8M"),
    "vid00000005": ("Oven spring", "Crumb Kitchen", "PT45S"),
    "vid00000006": ("Scoring patterns", "Crumb Kitchen", "PT3M"),
}
PRIVATE = "vidPrivate1"  # listed in the playlist as private: YouTube hides its details
DELETED = "vidDeleted1"  # listed as public in the playlist, but videos.list no longer knows it
PLAYLIST_ITEMS = [
    ("vid00000001", "public"),
    (PRIVATE, "private"),
    ("vid00000002", "public"),
    (DELETED, "public"),
    ("vid00000004", "unlisted"),
    ("vid00000001", "public"),  # listed twice
    ("vid00000005", "public"),
    ("vid00000006", "public"),
]
UPLOAD_IDS = ["vid00000006", "vid00000005", "vid00000004"]  # newest first


@dataclass
class Forced:
    status: int
    body: str
    delay: float = 0.0
    content_type: str = "application/json"


def google_error(status: int, reason: str, *, detail: str | None = None) -> Forced:
    error: dict[str, Any] = {
        "code": status,
        "message": "x",
        "errors": [{"reason": reason, "domain": "youtube"}],
    }
    if detail:
        error["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo", "reason": detail}]
    return Forced(status, json.dumps({"error": error}))


@dataclass
class FakeDataApi:
    """A small YouTube: one search index, one playlist, one channel; ``forced`` answers a resource
    with a fixed response instead (errors, garbage, delays). Records every request."""

    page_size: int = 2  # playlistItems pages, so paging shows with few videos
    search_hits: list[str] = field(
        default_factory=lambda: ["vid00000002", DELETED, "vid00000003", "vid00000001"]
    )
    forced: dict[str, Forced] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, list[str]], dict[str, str], str]] = field(default_factory=list)
    base_url: str = ""

    def discovery(self, key: Any = KEY, timeout: float = 2.0) -> YouTubeDataDiscovery:
        return YouTubeDataDiscovery(key, http_timeout=timeout, base_url=self.base_url + API)

    def calls(self, resource: str) -> list[dict[str, list[str]]]:
        return [query for path, query, _, _ in self.requests if path == f"{API}/{resource}"]

    def answer(self, resource: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        one = {k: v[0] for k, v in query.items()}
        if resource == "search":
            hits = self.search_hits[: int(one["maxResults"])]
            return 200, {
                "kind": "youtube#searchListResponse",
                "items": [
                    {
                        "kind": "youtube#searchResult",
                        "id": {"kind": "youtube#video", "videoId": vid},
                        # search.list escapes HTML in titles; videos.list does not
                        "snippet": {"title": "Sourdough &amp; starters", "channelTitle": "x"},
                    }
                    for vid in hits
                ]
                + [{"id": {"kind": "youtube#channel", "channelId": CHANNEL_ID}}],
            }
        if resource == "videos":
            wanted = one["id"].split(",")
            return 200, {"items": [video_item(vid) for vid in wanted if vid in VIDEOS]}
        if resource == "playlistItems":
            items = {PLAYLIST: PLAYLIST_ITEMS, UPLOADS: [(vid, "public") for vid in UPLOAD_IDS]}.get(
                one["playlistId"]
            )
            if items is None:
                return 404, json.loads(google_error(404, "playlistNotFound").body)
            start = int(one.get("pageToken", "0"))
            size = min(self.page_size, int(one["maxResults"]))
            page = items[start : start + size]
            body: dict[str, Any] = {
                "items": [
                    {
                        "snippet": {"title": "Private video" if status == "private" else "t"},
                        "contentDetails": {"videoId": vid},
                        "status": {"privacyStatus": status},
                    }
                    for vid, status in page
                ]
            }
            if start + size < len(items):
                body["nextPageToken"] = str(start + size)
            return 200, body
        if resource == "channels":
            known = one.get("id") == CHANNEL_ID or one.get("forHandle", "").lower() == "@crumbkitchen"
            known = known or one.get("forUsername") == "oldcrumb"  # its legacy username
            if not known:
                return 200, {"kind": "youtube#channelListResponse", "pageInfo": {"totalResults": 0}}
            return 200, {
                "items": [{"id": CHANNEL_ID, "contentDetails": {"relatedPlaylists": {"uploads": UPLOADS}}}]
            }
        return 404, {"error": {"code": 404}}


def video_item(vid: str) -> dict[str, Any]:
    title, channel, duration = VIDEOS[vid]
    return {
        "id": vid,
        "snippet": {
            "publishedAt": f"2024-01-{int(vid[-2:]):02d}T10:00:00Z",
            "channelId": CHANNEL_ID,
            "title": title,
            "channelTitle": channel,
        },
        "contentDetails": {"duration": duration},
    }


@pytest.fixture
def youtube() -> Iterator[FakeDataApi]:
    state = FakeDataApi()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            query = parse_qs(parts.query)
            headers = {k.lower(): v for k, v in self.headers.items()}
            state.requests.append((parts.path, query, headers, self.path))
            resource = parts.path.removeprefix(API + "/")
            forced = state.forced.get(resource)
            if forced is not None:
                time.sleep(forced.delay)
                self.reply(forced.status, forced.body.encode(), forced.content_type)
            else:
                status, data = state.answer(resource, query)
                self.reply(status, json.dumps(data).encode(), "application/json")

    with serving(Handler) as base_url:
        state.base_url = base_url
        yield state


@pytest.fixture(autouse=True)
def capture_all_logs(caplog: pytest.LogCaptureFixture) -> None:
    # DEBUG everywhere, httpx's own request logging included, so a leaked key would show up.
    caplog.set_level(logging.DEBUG)


def ids(candidates: list[VideoCandidate]) -> list[str]:
    return [c.video_id for c in candidates]


def refused(call: Any, *args: Any) -> DiscoveryError:
    with pytest.raises(DiscoveryError) as caught:
        call(*args)
    return caught.value


def assert_key_kept_secret(
    youtube: FakeDataApi, caplog: pytest.LogCaptureFixture, *errors: DiscoveryError
) -> None:
    """The key went in the X-Goog-Api-Key header of every request, never in a URL, a log line or
    an error message."""
    assert youtube.requests
    for _, query, headers, raw_path in youtube.requests:
        assert headers["x-goog-api-key"] == KEY
        assert "key" not in query and KEY not in raw_path
    assert KEY not in caplog.text
    assert all(KEY not in str(record.args) for record in caplog.records)
    for error in errors:
        assert KEY not in str(error) and KEY not in error.message


# ---------------------------------------------------------------- search


def test_search_gives_videos_in_youtube_order_with_details_from_videos_list(
    youtube: FakeDataApi, caplog: pytest.LogCaptureFixture
) -> None:
    found = youtube.discovery().search("  sourdough starter  ", 10)

    # The deleted hit is gone; titles come unescaped from videos.list; P0D (live) is "unknown".
    assert found == [
        VideoCandidate(
            "vid00000002", "Bread science", "Crumb Kitchen", 3723, datetime(2024, 1, 2, 10, tzinfo=UTC)
        ),
        VideoCandidate(
            "vid00000003", "Live: baking along", "Crumb Kitchen", None, datetime(2024, 1, 3, 10, tzinfo=UTC)
        ),
        VideoCandidate(
            "vid00000001", "Sourdough & starters", "Crumb Kitchen", 725, datetime(2024, 1, 1, 10, tzinfo=UTC)
        ),
    ]
    [search] = youtube.calls("search")
    assert search == {
        "part": ["snippet"],
        "type": ["video"],
        "q": ["sourdough starter"],
        "maxResults": ["10"],
    }
    [videos] = youtube.calls("videos")
    assert videos["part"] == ["snippet,contentDetails"]
    assert videos["id"] == [f"vid00000002,{DELETED},vid00000003,vid00000001"]
    assert_key_kept_secret(youtube, caplog)


@pytest.mark.parametrize(("asked", "sent"), [(0, "1"), (-3, "1"), (25, "25"), (500, "25")])
def test_search_clamps_the_count_to_1_through_25(youtube: FakeDataApi, asked: int, sent: str) -> None:
    youtube.discovery().search("bread", asked)

    assert youtube.calls("search")[0]["maxResults"] == [sent]


def test_a_search_with_no_hits_makes_no_videos_call(youtube: FakeDataApi) -> None:
    youtube.search_hits = []

    assert youtube.discovery().search("nothing like this", 5) == []
    assert youtube.calls("videos") == []


def test_an_invalid_query_is_refused_before_any_request(youtube: FakeDataApi) -> None:
    assert refused(youtube.discovery().search, "   ", 5).code == "INVALID_SEARCH_QUERY"
    assert refused(youtube.discovery().search, "q" * 201, 5).code == "INVALID_SEARCH_QUERY"
    assert youtube.requests == []


# ---------------------------------------------------------------- playlists


def test_a_playlist_is_read_page_by_page_up_to_the_limit(
    youtube: FakeDataApi, caplog: pytest.LogCaptureFixture
) -> None:
    found = youtube.discovery().expand(f"https://www.youtube.com/playlist?list={PLAYLIST}", 3)

    # private and deleted items are skipped; pages of 2 mean three pages for three videos
    assert ids(found) == ["vid00000001", "vid00000002", "vid00000004"]
    assert found[0].title == "Sourdough & starters" and found[0].duration_seconds == 725
    pages = youtube.calls("playlistItems")
    assert [p.get("pageToken") for p in pages] == [None, ["2"], ["4"]]
    assert all(p["playlistId"] == [PLAYLIST] and p["part"] == ["contentDetails,status"] for p in pages)
    assert [p["maxResults"] for p in pages] == [["3"], ["2"], ["1"]]  # only what is still missing
    assert PRIVATE not in ",".join(q["id"][0] for q in youtube.calls("videos"))
    assert_key_kept_secret(youtube, caplog)


def test_a_whole_playlist_stops_at_its_last_page_without_duplicates(youtube: FakeDataApi) -> None:
    found = youtube.discovery().expand(f"https://youtu.be/vid00000001?list={PLAYLIST}", 50)

    assert ids(found) == ["vid00000001", "vid00000002", "vid00000004", "vid00000005", "vid00000006"]
    assert len(youtube.calls("playlistItems")) == 4  # 8 items, 2 a page, and then no nextPageToken
    assert youtube.calls("playlistItems")[0]["maxResults"] == ["50"]


def test_the_limit_is_clamped_to_1_through_50(youtube: FakeDataApi) -> None:
    assert ids(youtube.discovery().expand(f"https://www.youtube.com/playlist?list={PLAYLIST}", 0)) == [
        "vid00000001"
    ]


def test_an_unknown_playlist_is_not_found(youtube: FakeDataApi, caplog: pytest.LogCaptureFixture) -> None:
    error = refused(youtube.discovery().expand, "https://www.youtube.com/playlist?list=PLdoesNotExist", 5)

    assert error.code == "PLAYLIST_NOT_FOUND" and error.retryable is False
    assert "HTTP 404, playlistNotFound" in caplog.text
    assert_key_kept_secret(youtube, caplog, error)


def test_a_private_playlist_is_not_found(youtube: FakeDataApi) -> None:
    youtube.forced["playlistItems"] = google_error(403, "playlistItemsNotAccessible")

    error = refused(youtube.discovery().expand, f"https://www.youtube.com/playlist?list={PLAYLIST}", 5)

    assert error.code == "PLAYLIST_NOT_FOUND" and "private" in error.message


def test_a_video_url_is_refused_before_any_request(youtube: FakeDataApi) -> None:
    error = refused(youtube.discovery().expand, "https://www.youtube.com/watch?v=vid00000001", 5)

    assert error.code == "INVALID_PLAYLIST_URL"
    assert youtube.requests == []


# ---------------------------------------------------------------- channels


def test_a_channel_handle_gives_its_newest_uploads(
    youtube: FakeDataApi, caplog: pytest.LogCaptureFixture
) -> None:
    found = youtube.discovery().expand("https://www.youtube.com/@CrumbKitchen/videos", 2)

    assert ids(found) == ["vid00000006", "vid00000005"]
    [lookup] = youtube.calls("channels")
    assert lookup == {"part": ["contentDetails"], "forHandle": ["@CrumbKitchen"]}
    assert youtube.calls("playlistItems")[0]["playlistId"] == [UPLOADS]
    assert_key_kept_secret(youtube, caplog)


def test_a_channel_id_is_looked_up_by_id(youtube: FakeDataApi) -> None:
    found = youtube.discovery().expand(f"https://www.youtube.com/channel/{CHANNEL_ID}", 10)

    assert ids(found) == UPLOAD_IDS
    assert youtube.calls("channels") == [{"part": ["contentDetails"], "id": [CHANNEL_ID]}]


def test_a_custom_channel_name_is_tried_as_a_handle_then_as_a_username(youtube: FakeDataApi) -> None:
    found = youtube.discovery().expand("https://www.youtube.com/c/oldcrumb", 10)

    assert ids(found) == UPLOAD_IDS
    assert youtube.calls("channels") == [
        {"part": ["contentDetails"], "forHandle": ["@oldcrumb"]},
        {"part": ["contentDetails"], "forUsername": ["oldcrumb"]},
    ]


def test_a_custom_channel_name_that_is_a_handle_needs_one_lookup(youtube: FakeDataApi) -> None:
    assert ids(youtube.discovery().expand("https://www.youtube.com/c/CrumbKitchen", 10)) == UPLOAD_IDS
    assert len(youtube.calls("channels")) == 1


def test_a_user_url_is_looked_up_by_username(youtube: FakeDataApi) -> None:
    assert ids(youtube.discovery().expand("https://www.youtube.com/user/oldcrumb", 10)) == UPLOAD_IDS
    assert youtube.calls("channels") == [{"part": ["contentDetails"], "forUsername": ["oldcrumb"]}]


def test_an_unknown_channel_is_not_found(youtube: FakeDataApi) -> None:
    error = refused(youtube.discovery().expand, "https://www.youtube.com/@nobody-here", 5)

    assert error.code == "CHANNEL_NOT_FOUND" and error.retryable is False
    assert youtube.calls("playlistItems") == []


def test_a_channel_without_uploads_has_no_videos(youtube: FakeDataApi) -> None:
    youtube.forced["playlistItems"] = google_error(404, "playlistNotFound")

    assert youtube.discovery().expand("https://www.youtube.com/@crumbkitchen", 5) == []


# ---------------------------------------------------------------- failures


@pytest.mark.parametrize(
    ("resource", "forced", "fragment"),
    [
        ("search", google_error(403, "quotaExceeded"), "quota is used up for now (HTTP 403, quotaExceeded)"),
        ("videos", google_error(403, "quotaExceeded"), "quota is used up for now (HTTP 403, quotaExceeded)"),
        ("search", google_error(403, "forbidden"), "HTTP 403, forbidden"),
        ("search", google_error(429, "rateLimitExceeded"), "HTTP 429, rateLimitExceeded"),
        ("search", Forced(503, "<html>unavailable</html>", content_type="text/html"), "HTTP 503"),
        ("search", Forced(200, "{truncated"), "not a JSON object"),
        ("search", Forced(200, json.dumps(["a", "list"])), "not a JSON object"),
        ("search", Forced(200, json.dumps({"items": []}), delay=1.5), "did not answer in time"),
    ],
    ids=["quota", "quota on videos", "403", "429", "503", "malformed JSON", "JSON array", "timeout"],
)
def test_trouble_at_youtube_is_unavailable_and_retryable(
    youtube: FakeDataApi, caplog: pytest.LogCaptureFixture, resource: str, forced: Forced, fragment: str
) -> None:
    youtube.forced[resource] = forced

    error = refused(youtube.discovery(timeout=0.3).search, "bread", 5)

    assert error.code == "DISCOVERY_UNAVAILABLE" and error.retryable is True
    assert fragment in error.message and "try again later" in error.message
    assert_key_kept_secret(youtube, caplog, error)


@pytest.mark.parametrize(
    "forced",
    [google_error(400, "badRequest", detail="API_KEY_INVALID"), google_error(400, "keyInvalid")],
    ids=["current shape", "older shape"],
)
def test_a_refused_key_says_which_setting_to_check_without_retrying(
    youtube: FakeDataApi, caplog: pytest.LogCaptureFixture, forced: Forced
) -> None:
    youtube.forced["search"] = forced

    error = refused(youtube.discovery().search, "bread", 5)

    assert error.code == "DISCOVERY_NOT_CONFIGURED" and error.retryable is False
    assert "YTR_YOUTUBE_DATA_API_KEY" in error.message
    assert "API_KEY_INVALID" in error.message or "keyInvalid" in error.message
    assert_key_kept_secret(youtube, caplog, error)


def test_an_unexpected_refusal_is_not_retryable(youtube: FakeDataApi) -> None:
    youtube.forced["search"] = google_error(400, "invalidSearchFilter")

    error = refused(youtube.discovery().search, "bread", 5)

    assert (error.code, error.retryable) == ("DISCOVERY_UNAVAILABLE", False)
    assert "HTTP 400, invalidSearchFilter" in error.message


def test_an_unreachable_api_is_unavailable(caplog: pytest.LogCaptureFixture) -> None:
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()
    discovery = YouTubeDataDiscovery(KEY, http_timeout=1.0, base_url=f"http://127.0.0.1:{port}{API}")

    error = refused(discovery.search, "bread", 5)

    assert error.code == "DISCOVERY_UNAVAILABLE" and error.retryable is True
    assert "ConnectError" in error.message
    assert KEY not in caplog.text and KEY not in error.message


def test_no_key_means_no_request(youtube: FakeDataApi) -> None:
    error = refused(youtube.discovery(key="").search, "bread", 5)

    assert error.code == "DISCOVERY_NOT_CONFIGURED" and "YTR_YOUTUBE_DATA_API_KEY" in error.message
    assert youtube.requests == []


# ---------------------------------------------------------------- the key in Secrets Manager


@pytest.fixture
def secretsmanager(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with fake_aws(monkeypatch):
        yield boto3.client("secretsmanager", region_name="eu-west-1")


@pytest.mark.parametrize("stored", [KEY, f"  {KEY}\n", json.dumps({"YOUTUBE_DATA_API_KEY": KEY})])
def test_the_key_secret_may_be_raw_or_json(secretsmanager: Any, stored: str) -> None:
    arn = secretsmanager.create_secret(Name="yt", SecretString=stored)["ARN"]

    assert read_youtube_data_api_key(arn) == KEY


@pytest.mark.parametrize(
    ("stored", "fragment"),
    [
        ("", "is empty"),
        (json.dumps({"OTHER": KEY}), "has no YOUTUBE_DATA_API_KEY field"),
        ('{"YOUTUBE_DATA_API_KEY": "' + KEY, "not valid JSON"),
        (json.dumps({"YOUTUBE_DATA_API_KEY": "  "}), "is empty"),
    ],
)
def test_an_unusable_key_secret_names_the_setting_not_the_value(
    secretsmanager: Any, stored: str, fragment: str
) -> None:
    arn = secretsmanager.create_secret(Name="yt", SecretString=stored or " ")["ARN"]

    with pytest.raises(ConfigurationError) as caught:
        read_youtube_data_api_key(arn)

    assert fragment in caught.value.message and "YTR_YOUTUBE_DATA_API_KEY_SECRET_ARN" in caught.value.message
    assert KEY not in str(caught.value)


def test_a_missing_secret_is_a_configuration_error(secretsmanager: Any) -> None:
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:missing-AbCdEf"

    with pytest.raises(ConfigurationError, match="ResourceNotFoundException"):
        read_youtube_data_api_key(arn)


def test_the_key_is_read_from_its_secret_once_on_first_use(
    youtube: FakeDataApi,
    secretsmanager: Any,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    arn = secretsmanager.create_secret(Name="yt", SecretString=json.dumps({"YOUTUBE_DATA_API_KEY": KEY}))[
        "ARN"
    ]
    reads: list[str] = []

    def counted(arn: str) -> str:
        reads.append(arn)
        return read_youtube_data_api_key(arn)

    discovery = youtube.discovery(key=functools.partial(counted, arn))
    assert reads == []

    discovery.search("bread", 5)
    discovery.expand(f"https://www.youtube.com/playlist?list={PLAYLIST}", 2)

    assert reads == [arn]
    assert_key_kept_secret(youtube, caplog)


def test_an_unusable_key_secret_is_not_configured(youtube: FakeDataApi, secretsmanager: Any) -> None:
    arn = secretsmanager.create_secret(Name="yt", SecretString=json.dumps({"OTHER": "x"}))["ARN"]

    error = refused(
        youtube.discovery(key=functools.partial(read_youtube_data_api_key, arn)).search, "bread", 5
    )

    assert error.code == "DISCOVERY_NOT_CONFIGURED" and "YOUTUBE_DATA_API_KEY field" in error.message
    assert youtube.requests == []
