"""parse_video_id accepts every URL shape people paste and explains what is wrong with the rest."""

from __future__ import annotations

from typing import Any

import pytest

from ytresearch.errors import InvalidInputError
from ytresearch.youtube import canonical_url, parse_video_id

ID = "dQw4w9WgXcQ"

VALID = [
    # bare ids
    (ID, ID),
    ("  dQw4w9WgXcQ \n", ID),
    ("a-b_c-D_E-9", "a-b_c-D_E-9"),
    # watch pages, with and without scheme and www
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", ID),
    ("http://www.youtube.com/watch?v=dQw4w9WgXcQ", ID),
    ("https://youtube.com/watch?v=dQw4w9WgXcQ", ID),
    ("www.youtube.com/watch?v=dQw4w9WgXcQ", ID),
    ("youtube.com/watch?v=dQw4w9WgXcQ", ID),
    ("HTTPS://WWW.YOUTUBE.COM/watch?v=dQw4w9WgXcQ", ID),
    ("//www.youtube.com/watch?v=dQw4w9WgXcQ", ID),
    ("https://www.youtube.com:443/watch?v=dQw4w9WgXcQ", ID),
    ("https://youtu.be:443/dQw4w9WgXcQ", ID),
    ("http://youtu.be:80/dQw4w9WgXcQ", ID),
    ("https://youtu.be:/dQw4w9WgXcQ", ID),  # an empty port means the default one (RFC 3986)
    # extra parameters and timestamps
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&t=42s", ID),
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&list=PLabc123&index=3", ID),
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQ#t=1m10s", ID),
    ("https://www.youtube.com/watch?feature=share&v=dQw4w9WgXcQ", ID),
    ("https://www.youtube.com/watch?app=desktop&v=dQw4w9WgXcQ&ab_channel=RickAstley", ID),
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQ&pp=ygUJcmljayByb2xs", ID),
    # mobile, music and gaming hosts
    ("https://m.youtube.com/watch?v=dQw4w9WgXcQ&feature=youtu.be", ID),
    ("https://music.youtube.com/watch?v=dQw4w9WgXcQ&si=Xy12", ID),
    ("m.youtube.com/shorts/dQw4w9WgXcQ", ID),
    # short links
    ("https://youtu.be/dQw4w9WgXcQ", ID),
    ("https://youtu.be/dQw4w9WgXcQ?si=AbCdEfGhIjKlMnOp", ID),
    ("https://youtu.be/dQw4w9WgXcQ?t=42", ID),
    ("youtu.be/dQw4w9WgXcQ", ID),
    ("http://www.youtu.be/dQw4w9WgXcQ/", ID),
    # Shorts, embeds, live, /v/
    ("https://www.youtube.com/shorts/dQw4w9WgXcQ", ID),
    ("https://youtube.com/shorts/dQw4w9WgXcQ?feature=share", ID),
    ("https://www.youtube.com/shorts/dQw4w9WgXcQ/", ID),
    ("https://www.youtube.com/embed/dQw4w9WgXcQ", ID),
    ("https://www.youtube.com/embed/dQw4w9WgXcQ?start=30&autoplay=1", ID),
    ("https://www.youtube-nocookie.com/embed/dQw4w9WgXcQ?rel=0", ID),
    ("https://youtube-nocookie.com/embed/dQw4w9WgXcQ", ID),
    ("https://www.youtube.com/live/dQw4w9WgXcQ?si=abc", ID),
    ("https://www.youtube.com/v/dQw4w9WgXcQ?version=3", ID),
    ("https://www.youtube.com/e/dQw4w9WgXcQ", ID),
    ("https://www.youtube.com/watch/dQw4w9WgXcQ", ID),
    ("https://www.youtube.com/?v=dQw4w9WgXcQ", ID),
]

# (input, a fragment the error message must contain)
INVALID = [
    ("", "empty"),
    ("   ", "empty"),
    ("dQw4w9WgXc", "11 characters"),  # 10 characters
    ("dQw4w9WgXcQQ", "11 characters"),  # 12 characters
    ("dQw4w9WgXc!", "11 characters"),
    ("https://vimeo.com/123456789", "not a YouTube host: vimeo.com"),
    ("https://www.youtube.com.evil.example/watch?v=dQw4w9WgXcQ", "not a YouTube host"),
    ("https://notyoutube.com/watch?v=dQw4w9WgXcQ", "not a YouTube host: notyoutube.com"),
    ("https://example.com/?v=dQw4w9WgXcQ", "not a YouTube host: example.com"),
    ("ftp://www.youtube.com/watch?v=dQw4w9WgXcQ", "unsupported URL scheme: ftp"),
    ("javascript:alert(1)//youtube.com", "not a YouTube host"),
    ("https://www.youtube.com/watch", "no video id in the URL"),
    ("https://www.youtube.com/watch?v=", "no video id in the URL"),
    ("https://www.youtube.com/watch?v=short", "11 characters"),
    ("https://www.youtube.com/watch?v=dQw4w9WgXcQ123", "11 characters"),
    ("https://www.youtube.com/watch?v=dQw4w9W%20XcQ", "11 characters"),
    ("https://youtu.be/", "no video id in the URL"),
    ("https://youtu.be/dQw4w9", "11 characters"),
    ("https://www.youtube.com/", "no video id in the URL"),
    ("youtube.com", "no video id in the URL"),
    ("https://www.youtube.com/shorts/", "no video id in the URL"),
    ("https://www.youtube.com/results?search_query=sourdough", "no video id in the URL"),
    ("https://www.youtube.com/feed/subscriptions", "no video id in the URL"),
    ("https://www.youtube.com/playlist?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG", "playlist"),
    ("https://www.youtube.com/watch?list=PLx0sYbCqOb8TBPRdmBHs5Iftvv9TPboYG", "playlist"),
    ("https://www.youtube.com/embed/videoseries?list=PLx0sYbCqOb8TBPRdmB", "playlist"),
    ("https://www.youtube.com/channel/UC38IQsAvIsxxjztdMZQtwHA", "channel URL"),
    ("https://www.youtube.com/@SomeCreator", "channel URL"),
    ("https://www.youtube.com/@SomeCreator/videos", "channel URL"),
    ("https://www.youtube.com/c/SomeCreator", "channel URL"),
    ("https://www.youtube.com/user/someone", "channel URL"),
    ("not a url at all", "11 characters"),
    ("https://" + "a" * 3000, "longer than"),
    # ports: only the web's own (443, 80) are YouTube's
    ("https://youtu.be:99999/dQw4w9WgXcQ", "port"),
    ("https://youtu.be:8080/dQw4w9WgXcQ", "port"),
    ("https://www.youtube.com:0/watch?v=dQw4w9WgXcQ", "port"),
    ("https://www.youtube.com:abc/watch?v=dQw4w9WgXcQ", "port"),
    ("https://youtu.be:-443/dQw4w9WgXcQ", "port"),
    ("https://youtu.be:+443/dQw4w9WgXcQ", "port"),
    ("https://youtu.be:0443/dQw4w9WgXcQ", "port"),
    ("https://youtu.be:\uff14\uff14\uff13/dQw4w9WgXcQ", "port"),  # full-width digits
    ("https://youtu.be:443:443/dQw4w9WgXcQ", "port"),
    ("https://user@youtu.be:22/dQw4w9WgXcQ", "port"),
    ("youtu.be:99999/dQw4w9WgXcQ", "port"),
]


@pytest.mark.parametrize(("text", "expected"), VALID, ids=[t for t, _ in VALID])
def test_parse_video_id_accepts_common_url_shapes(text: str, expected: str) -> None:
    # Given a URL or id as people paste it / When parsed / Then the 11-character id comes back
    assert parse_video_id(text) == expected


@pytest.mark.parametrize(("text", "fragment"), INVALID, ids=[t[:60] for t, _ in INVALID])
def test_parse_video_id_refuses_non_video_input_with_a_reason(text: str, fragment: str) -> None:
    with pytest.raises(InvalidInputError) as caught:
        parse_video_id(text)

    error = caught.value
    assert error.code == "INVALID_VIDEO_URL"
    assert fragment.lower() in error.message.lower()
    assert error.details["input"] == text.strip()[:200]
    assert error.details["reason"]


def test_table_is_big_enough_to_be_meaningful() -> None:
    assert len(VALID) + len(INVALID) >= 30
    assert len({expected for _, expected in VALID}) >= 2


def test_parse_video_id_refuses_non_text() -> None:
    not_text: Any = None  # e.g. JSON null slipping past a loose caller

    with pytest.raises(InvalidInputError) as caught:
        parse_video_id(not_text)
    assert caught.value.code == "INVALID_VIDEO_URL"


def test_canonical_url_is_the_www_watch_url() -> None:
    assert canonical_url(ID) == "https://www.youtube.com/watch?v=dQw4w9WgXcQ"
    assert parse_video_id(canonical_url(ID)) == ID


def test_canonical_url_refuses_an_invalid_id() -> None:
    with pytest.raises(InvalidInputError) as caught:
        canonical_url("https://youtu.be/dQw4w9WgXcQ")
    assert caught.value.code == "INVALID_VIDEO_URL"
