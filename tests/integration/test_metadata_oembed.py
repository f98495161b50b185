"""OEmbedMetadataSource against a real HTTP server on 127.0.0.1 speaking oEmbed and Data API v3."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.support.http_stub import QuietHandler, serving
from ytresearch.ports import VideoMetadata
from ytresearch.youtube import OEmbedMetadataSource

VID = "PrintPr3ss1"
KEY = "AIzaTEST-key-never-logged"

OEMBED = {
    "title": "The Printing Press: How Gutenberg's Machine Changed Europe",
    "author_name": "Footnotes History",
    "author_url": "https://www.youtube.com/@footnoteshistory",
    "type": "video",
    "thumbnail_url": "https://i.ytimg.com/vi/PrintPr3ss1/hqdefault.jpg",
    "provider_name": "YouTube",
}
DATA_API = {
    "kind": "youtube#videoListResponse",
    "items": [
        {
            "id": VID,
            "snippet": {
                "publishedAt": "2023-04-05T16:00:11Z",
                "channelId": "UCfootnotes000000000000",
                "title": "Data API title",
                "channelTitle": "Data API channel",
                "thumbnails": {
                    "default": {"url": "https://i.ytimg.com/vi/PrintPr3ss1/default.jpg"},
                    "high": {"url": "https://i.ytimg.com/vi/PrintPr3ss1/hqdefault.jpg"},
                },
            },
            "contentDetails": {"duration": "PT5M8S"},
        }
    ],
}


@dataclass
class Route:
    status: int = 200
    body: str | bytes = ""
    delay: float = 0.0
    content_type: str = "application/json"


def ok(data: Any) -> Route:
    return Route(body=json.dumps(data))


@dataclass
class FakeGoogle:
    """What the local server answers on /oembed and /youtube/v3/videos, and what it was asked."""

    routes: dict[str, Route] = field(default_factory=dict)
    requests: list[tuple[str, dict[str, list[str]], dict[str, str]]] = field(default_factory=list)
    base_url: str = ""

    @property
    def oembed_url(self) -> str:
        return self.base_url + "/oembed"

    @property
    def data_api_url(self) -> str:
        return self.base_url + "/youtube/v3/videos"

    def source(self, *, key: str | None = None, timeout: float = 2.0) -> OEmbedMetadataSource:
        return OEmbedMetadataSource(
            timeout, data_api_key=key, oembed_url=self.oembed_url, data_api_url=self.data_api_url
        )

    def paths(self) -> list[str]:
        return [path for path, _, _ in self.requests]


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    state = FakeGoogle()

    class Handler(QuietHandler):
        def do_GET(self) -> None:
            parts = urlsplit(self.path)
            state.requests.append(
                (parts.path, parse_qs(parts.query), {k.lower(): v for k, v in self.headers.items()})
            )
            route = state.routes.get(parts.path, Route(status=404, body='{"error": "not found"}'))
            if route.delay:
                time.sleep(route.delay)
            body = route.body.encode() if isinstance(route.body, str) else route.body
            self.reply(route.status, body, route.content_type)

    with serving(Handler) as base_url:
        state.base_url = base_url
        yield state


@pytest.fixture(autouse=True)
def capture_all_logs(caplog: pytest.LogCaptureFixture) -> None:
    # DEBUG everywhere, httpx's own request logging included, so a leaked key would show up.
    caplog.set_level(logging.DEBUG)


def assert_key_not_logged(caplog: pytest.LogCaptureFixture) -> None:
    assert KEY not in caplog.text
    assert all(KEY not in str(record.args) for record in caplog.records)


# ---------------------------------------------------------------- success paths


def test_oembed_alone_gives_title_channel_and_thumbnail(google: FakeGoogle) -> None:
    google.routes["/oembed"] = ok(OEMBED)

    metadata = google.source().fetch(VID)

    assert metadata == VideoMetadata(
        title=OEMBED["title"],
        channel="Footnotes History",
        channel_url="https://www.youtube.com/@footnoteshistory",
        thumbnail_url="https://i.ytimg.com/vi/PrintPr3ss1/hqdefault.jpg",
    )
    assert google.paths() == ["/oembed"]  # no key: the Data API is never called
    _, query, _ = google.requests[0]
    assert query == {"url": [f"https://www.youtube.com/watch?v={VID}"], "format": ["json"]}


def test_data_api_adds_duration_and_publish_date_when_a_key_is_set(
    google: FakeGoogle, caplog: pytest.LogCaptureFixture
) -> None:
    google.routes["/oembed"] = ok(OEMBED)
    google.routes["/youtube/v3/videos"] = ok(DATA_API)

    metadata = google.source(key=KEY).fetch(VID)

    assert metadata.duration_seconds == 308
    assert metadata.published_at == datetime(2023, 4, 5, 16, 0, 11, tzinfo=UTC)
    assert metadata.title == OEMBED["title"]  # oEmbed wins where both know
    assert metadata.channel == "Footnotes History"
    path, query, headers = google.requests[1]
    assert path == "/youtube/v3/videos"
    assert query == {"id": [VID], "part": ["snippet,contentDetails"]}  # no key in the URL
    assert headers["x-goog-api-key"] == KEY
    assert_key_not_logged(caplog)


def test_data_api_fills_in_when_oembed_refuses(google: FakeGoogle, caplog: pytest.LogCaptureFixture) -> None:
    # oEmbed answers 401/404 for private and unlisted-embedding-disabled videos.
    google.routes["/oembed"] = Route(status=401, body="Unauthorized", content_type="text/plain")
    google.routes["/youtube/v3/videos"] = ok(DATA_API)

    metadata = google.source(key=KEY).fetch(VID)

    assert metadata == VideoMetadata(
        title="Data API title",
        channel="Data API channel",
        channel_url="https://www.youtube.com/channel/UCfootnotes000000000000",
        thumbnail_url="https://i.ytimg.com/vi/PrintPr3ss1/hqdefault.jpg",
        duration_seconds=308,
        published_at=datetime(2023, 4, 5, 16, 0, 11, tzinfo=UTC),
    )
    assert "HTTP 401" in caplog.text
    assert_key_not_logged(caplog)


def test_live_stream_duration_is_unknown(google: FakeGoogle) -> None:
    live = json.loads(json.dumps(DATA_API))
    live["items"][0]["contentDetails"]["duration"] = "P0D"
    google.routes["/oembed"] = ok(OEMBED)
    google.routes["/youtube/v3/videos"] = ok(live)

    assert google.source(key=KEY).fetch(VID).duration_seconds is None


def test_non_web_urls_from_upstream_are_dropped(google: FakeGoogle) -> None:
    google.routes["/oembed"] = ok(
        {**OEMBED, "author_url": "javascript:alert(1)", "thumbnail_url": "data:image/png;base64,x"}
    )

    metadata = google.source().fetch(VID)

    assert metadata.title == OEMBED["title"]
    assert (metadata.channel_url, metadata.thumbnail_url) == (None, None)


# ---------------------------------------------------------------- failures never raise


@pytest.mark.parametrize(
    ("route", "log_fragment"),
    [
        (Route(status=404, body="Not Found", content_type="text/plain"), "HTTP 404"),
        (Route(status=500, body="<html>oops</html>", content_type="text/html"), "HTTP 500"),
        (Route(body="{not json"), "not JSON"),
        (Route(body=b"\xff\xfe\x00garbage"), "not JSON"),
        (Route(body=json.dumps(["a", "list"])), "not an object"),
        (Route(body=""), "not JSON"),
    ],
    ids=["404", "500", "malformed JSON", "binary garbage", "JSON array", "empty body"],
)
def test_oembed_failures_give_empty_metadata(
    google: FakeGoogle, caplog: pytest.LogCaptureFixture, route: Route, log_fragment: str
) -> None:
    google.routes["/oembed"] = route

    assert google.source().fetch(VID) == VideoMetadata()
    assert log_fragment in caplog.text
    assert any(r.levelno == logging.WARNING and VID in r.getMessage() for r in caplog.records)


def test_oembed_timeout_gives_empty_metadata(google: FakeGoogle, caplog: pytest.LogCaptureFixture) -> None:
    google.routes["/oembed"] = Route(body=json.dumps(OEMBED), delay=1.5)

    assert google.source(timeout=0.2).fetch(VID) == VideoMetadata()
    assert "Timeout" in caplog.text


def test_unreachable_server_gives_empty_metadata(caplog: pytest.LogCaptureFixture) -> None:
    # Bind and close a port so nothing listens there.
    probe = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    port = probe.server_address[1]
    probe.server_close()
    source = OEmbedMetadataSource(
        1.0,
        data_api_key=KEY,
        oembed_url=f"http://127.0.0.1:{port}/oembed",
        data_api_url=f"http://127.0.0.1:{port}/videos",
    )

    assert source.fetch(VID) == VideoMetadata()
    assert "ConnectError" in caplog.text
    assert_key_not_logged(caplog)


@pytest.mark.parametrize(
    ("route", "log_fragment"),
    [
        (
            Route(
                status=403,
                body=json.dumps({"error": {"code": 403, "errors": [{"reason": "quotaExceeded"}]}}),
            ),
            "HTTP 403 (quotaExceeded)",
        ),
        (
            Route(
                status=400,
                body=json.dumps({"error": {"code": 400, "errors": [{"reason": "keyInvalid"}]}}),
            ),
            "HTTP 400 (keyInvalid)",
        ),
        (Route(status=500, body="boom", content_type="text/plain"), "HTTP 500"),
        (ok({"kind": "youtube#videoListResponse", "items": []}), "has no video"),
        (Route(body="{truncated"), "not JSON"),
        (Route(body=json.dumps(DATA_API), delay=1.5), "Timeout"),
    ],
    ids=["quota", "bad key", "500", "unknown video", "malformed JSON", "timeout"],
)
def test_data_api_failures_keep_the_oembed_metadata(
    google: FakeGoogle, caplog: pytest.LogCaptureFixture, route: Route, log_fragment: str
) -> None:
    google.routes["/oembed"] = ok(OEMBED)
    google.routes["/youtube/v3/videos"] = route

    metadata = google.source(key=KEY, timeout=0.5).fetch(VID)

    assert metadata.title == OEMBED["title"]
    assert (metadata.duration_seconds, metadata.published_at) == (None, None)
    assert log_fragment in caplog.text
    assert_key_not_logged(caplog)


def test_odd_data_api_shapes_are_ignored_field_by_field(google: FakeGoogle) -> None:
    google.routes["/oembed"] = Route(status=404)
    google.routes["/youtube/v3/videos"] = ok(
        {
            "items": [
                {
                    "snippet": {"title": 42, "publishedAt": "yesterday", "thumbnails": "x"},
                    "contentDetails": {"duration": 300},
                }
            ]
        }
    )

    assert google.source(key=KEY).fetch(VID) == VideoMetadata()


def test_an_unexpected_failure_keeps_what_was_already_found(
    google: FakeGoogle, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    google.routes["/oembed"] = ok(OEMBED)
    source = google.source(key=KEY)

    def broken(*args: Any) -> VideoMetadata:
        raise RuntimeError("a bug in the Data API parsing")

    monkeypatch.setattr(source, "_from_data_api", broken)

    metadata = source.fetch(VID)

    assert metadata.title == OEMBED["title"]
    assert "failed unexpectedly (RuntimeError)" in caplog.text
