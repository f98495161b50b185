"""Finding videos without the network: playlist/channel URL parsing, the offline samples' catalog
(search and expand), and the factory that picks an adapter from settings."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ytresearch.config import load_settings
from ytresearch.errors import ConfigurationError
from ytresearch.ports import DiscoveryError, VideoCandidate
from ytresearch.youtube import (
    SampleCatalogDiscovery,
    YouTubeDataDiscovery,
    build_discovery,
    default_samples_dir,
    parse_list_url,
)
from ytresearch.youtube.discovery_inputs import ChannelRef, PlaylistRef

PLAYLIST_URL = "https://www.youtube.com/playlist?list=PLytrSampleScienceAndHistory"
CHANNEL_URL = "https://www.youtube.com/@ytr-samples"
PLAYLIST_IDS = ["SoLarP4nels", "vacc1neImmu", "PrintPr3ss1"]
UPLOADS_NEWEST_FIRST = ["vacc1neImmu", "s0urd0ughBr", "PrintPr3ss1", "SoLarP4nels"]
CHANNEL_ID = "UCytrSampleChannel000000"
PL = "PLrAXtmErZgOeiKm4sgNOknGvNjby9efdf"


def ids(candidates: list[VideoCandidate]) -> list[str]:
    return [c.video_id for c in candidates]


def refused(call: object, *args: object) -> DiscoveryError:
    assert callable(call)
    with pytest.raises(DiscoveryError) as caught:
        call(*args)
    return caught.value


# ---------------------------------------------------------------- playlist and channel URLs


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (f"https://www.youtube.com/playlist?list={PL}", PlaylistRef(PL)),
        (f"  youtube.com/playlist?list={PL}\n", PlaylistRef(PL)),
        (f"http://m.youtube.com/playlist?list={PL}&si=abc", PlaylistRef(PL)),
        (f"https://music.youtube.com/playlist?list={PL}", PlaylistRef(PL)),
        (f"https://www.youtube.com/watch?v=dQw4w9WgXcQ&list={PL}&index=3", PlaylistRef(PL)),
        (f"https://youtu.be/dQw4w9WgXcQ?list={PL}", PlaylistRef(PL)),
        (f"https://www.youtube-nocookie.com/embed/videoseries?list={PL}", PlaylistRef(PL)),
        (f"https://www.youtube.com:443/playlist?list={PL}", PlaylistRef(PL)),
        (
            "https://www.youtube.com/playlist?list=UUytrSampleChannel000000",
            PlaylistRef("UUytrSampleChannel000000"),
        ),
        (f"https://www.youtube.com/channel/{CHANNEL_ID}", ChannelRef("id", CHANNEL_ID)),
        (f"https://www.youtube.com/channel/{CHANNEL_ID}/videos", ChannelRef("id", CHANNEL_ID)),
        ("https://www.youtube.com/@veritasium", ChannelRef("handle", "veritasium")),
        ("youtube.com/@Veritasium/videos?view=0", ChannelRef("handle", "Veritasium")),
        ("https://m.youtube.com/@some.one-else_2", ChannelRef("handle", "some.one-else_2")),
        ("https://www.youtube.com/@%E3%81%B2%E3%82%8D%E3%82%86%E3%81%8D", ChannelRef("handle", "ひろゆき")),
        ("@veritasium", ChannelRef("handle", "veritasium")),
        ("https://www.youtube.com/c/LinusTechTips", ChannelRef("custom", "LinusTechTips")),
        ("https://www.youtube.com/user/schafer5/featured", ChannelRef("username", "schafer5")),
    ],
)
def test_playlist_and_channel_links_are_understood(url: str, expected: PlaylistRef | ChannelRef) -> None:
    assert parse_list_url(url) == expected


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("", "the URL is empty"),
        ("   ", "the URL is empty"),
        ("x" * 3000, "longer than 2048 characters"),
        ("science videos", "this is not a URL"),
        ("https://www.youtube.com/watch?v=dQw4w9WgXcQ", "one video"),
        ("https://youtu.be/dQw4w9WgXcQ", "one video"),
        ("https://www.youtube.com/shorts/dQw4w9WgXcQ", "one video"),
        ("https://www.youtube.com/playlist", "no list= parameter"),
        ("https://www.youtube.com/playlist?list=", "no list= parameter"),
        ("https://www.youtube.com/playlist?list=PL<script>", "not a playlist id"),
        ("https://vimeo.com/channels/staffpicks", "vimeo.com is not a YouTube host"),
        ("https://youtube.com.evil.example/playlist?list=PL123", "not a YouTube host"),
        ("ftp://www.youtube.com/playlist?list=PL123", "unsupported URL scheme"),
        ("https://www.youtube.com:8443/playlist?list=PL123", "unsupported port"),
        ("https://www.youtube.com/channel/not-a-channel-id", "UC and 22 more characters"),
        ("https://www.youtube.com/channel/", "names no channel"),
        ("https://www.youtube.com/@a", "not a valid channel name"),
        ("https://www.youtube.com/@a b", "not a valid channel name"),
        ("https://www.youtube.com/", "names no playlist or channel"),
        ("https://www.youtube.com/results?search_query=sourdough", "names no playlist or channel"),
        ("https://[::1/playlist?list=PL123", "not a valid URL"),
    ],
)
def test_other_input_is_refused_saying_why(url: str, reason: str) -> None:
    error = refused(parse_list_url, url)

    assert error.code == "INVALID_PLAYLIST_URL" and error.retryable is False
    assert reason in error.message
    assert "playlist link (with list=...) or a channel link" in error.message  # and what would work


def test_a_non_string_is_refused() -> None:
    assert refused(parse_list_url, None).code == "INVALID_PLAYLIST_URL"


# ---------------------------------------------------------------- the shipped catalog


def test_the_shipped_catalog_lists_one_playlist_and_one_channel_over_existing_samples() -> None:
    folder = default_samples_dir()
    catalog = json.loads((folder / "catalog.json").read_text(encoding="utf-8"))

    [playlist] = catalog["playlists"]
    [channel] = catalog["channels"]
    assert parse_list_url(f"https://www.youtube.com/playlist?list={playlist['id']}") == PlaylistRef(
        playlist["id"]
    )
    assert parse_list_url(f"https://www.youtube.com/channel/{channel['id']}") == ChannelRef(
        "id", channel["id"]
    )
    assert parse_list_url(f"https://www.youtube.com/{channel['handle']}") == ChannelRef(
        "handle", channel["handle"].removeprefix("@")
    )
    for video_id in [*playlist["video_ids"], *channel["uploads"]]:
        assert (folder / f"{video_id}.json").is_file(), video_id


# ---------------------------------------------------------------- offline search


@pytest.fixture
def samples() -> SampleCatalogDiscovery:
    return SampleCatalogDiscovery(default_samples_dir())


def test_search_finds_a_sample_by_its_title_with_its_metadata(samples: SampleCatalogDiscovery) -> None:
    assert samples.search("Gutenberg printing press", 5) == [
        VideoCandidate(
            video_id="PrintPr3ss1",
            title="The Printing Press: How Gutenberg's Machine Changed Europe",
            channel="Footnotes History",
            duration_seconds=308,
        )
    ]


def test_search_matches_plurals_and_case(samples: SampleCatalogDiscovery) -> None:
    assert ids(samples.search("SOLAR PANEL", 5)) == ["SoLarP4nels"]
    assert ids(samples.search("How do vaccines work?", 5)) == ["vacc1neImmu"]


def test_search_finds_a_channel_name(samples: SampleCatalogDiscovery) -> None:
    assert ids(samples.search("Footnotes", 5)) == ["PrintPr3ss1"]


def test_a_channel_match_ranks_above_a_transcript_only_match(tmp_path: Path) -> None:
    write_sample(tmp_path, "AAAAAAAAAAA", title="Bread", text="our kitchen is small")
    write_sample(tmp_path, "BBBBBBBBBBB", title="Bread", text="flour", channel="Crumb Kitchen")

    assert ids(SampleCatalogDiscovery(tmp_path).search("kitchen", 5)) == ["BBBBBBBBBBB", "AAAAAAAAAAA"]


def test_a_title_match_ranks_above_a_transcript_only_match(tmp_path: Path) -> None:
    # Given two samples that both mention "starter": one in its title, one only in its transcript
    write_sample(tmp_path, "AAAAAAAAAAA", title="Crossing the river", text="a starter is a culture")
    write_sample(tmp_path, "BBBBBBBBBBB", title="Starter care", text="flour and water")

    # When searching for it, Then the title match comes first although its id sorts later
    assert ids(SampleCatalogDiscovery(tmp_path).search("starter", 5)) == ["BBBBBBBBBBB", "AAAAAAAAAAA"]


def test_more_matched_words_rank_higher_and_ties_go_by_id(tmp_path: Path) -> None:
    write_sample(tmp_path, "ccccccccccc", title="Rivers", text="nothing else")
    write_sample(tmp_path, "bbbbbbbbbbb", title="Rivers and bridges", text="nothing else")
    write_sample(tmp_path, "aaaaaaaaaaa", title="Rivers", text="nothing else")

    found = ids(SampleCatalogDiscovery(tmp_path).search("rivers bridges", 5))

    assert found == ["bbbbbbbbbbb", "aaaaaaaaaaa", "ccccccccccc"]


def test_a_word_found_only_in_a_transcript_still_finds_the_sample(samples: SampleCatalogDiscovery) -> None:
    transcript_word = first_transcript_only_word("s0urd0ughBr")

    assert "s0urd0ughBr" in ids(samples.search(transcript_word, 5))


@pytest.mark.parametrize("query", ["quantum chromodynamics", "the of and", "what is this video about"])
def test_search_with_no_match_finds_nothing_rather_than_a_made_up_hit(
    samples: SampleCatalogDiscovery, query: str
) -> None:
    assert samples.search(query, 5) == []


def test_search_results_are_clamped_to_1_through_25(tmp_path: Path) -> None:
    for n in range(30):
        write_sample(tmp_path, f"river{n:06d}", title="River", text="water")
    discovery = SampleCatalogDiscovery(tmp_path)

    assert len(discovery.search("river", 0)) == 1
    assert len(discovery.search("river", 3)) == 3
    assert len(discovery.search("river", 500)) == 25


@pytest.mark.parametrize(("query", "reason"), [("", "empty"), ("  \n ", "empty"), ("x" * 201, "200")])
def test_an_empty_or_overlong_query_is_refused(
    samples: SampleCatalogDiscovery, query: str, reason: str
) -> None:
    error = refused(samples.search, query, 5)

    assert error.code == "INVALID_SEARCH_QUERY" and reason in error.message


def test_a_query_of_200_characters_is_accepted(samples: SampleCatalogDiscovery) -> None:
    assert ids(samples.search(("sourdough " * 30)[:200], 5)) == ["s0urd0ughBr"]


def test_a_malformed_sample_is_skipped_not_fatal(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_sample(tmp_path, "goodGoodGoo", title="River", text="water")
    (tmp_path / "brokenBroke.json").write_text("{not json", encoding="utf-8")

    assert ids(SampleCatalogDiscovery(tmp_path).search("river", 5)) == ["goodGoodGoo"]
    assert "brokenBroke.json" in caplog.text


# ---------------------------------------------------------------- offline playlists and channels


@pytest.mark.parametrize(
    "url",
    [
        PLAYLIST_URL,
        "youtube.com/playlist?list=PLytrSampleScienceAndHistory",
        "https://www.youtube.com/watch?v=SoLarP4nels&list=PLytrSampleScienceAndHistory&index=2",
        "https://youtu.be/SoLarP4nels?list=PLytrSampleScienceAndHistory",
    ],
)
def test_the_sample_playlist_expands_in_its_order(samples: SampleCatalogDiscovery, url: str) -> None:
    found = samples.expand(url, 10)

    assert ids(found) == PLAYLIST_IDS
    assert found[0].title == "How Solar Panels Actually Work: From Photon to Power Outlet"
    assert found[0].url == "https://www.youtube.com/watch?v=SoLarP4nels"


@pytest.mark.parametrize(
    "url",
    [
        CHANNEL_URL,
        "https://www.youtube.com/@YTR-Samples/videos",
        "@ytr-samples",
        f"https://www.youtube.com/channel/{CHANNEL_ID}",
        "https://www.youtube.com/c/ytrsamples",
        "https://www.youtube.com/user/ytrsamples",
        "https://www.youtube.com/playlist?list=UUytrSampleChannel000000",
    ],
)
def test_the_sample_channel_gives_its_uploads_newest_first(samples: SampleCatalogDiscovery, url: str) -> None:
    assert ids(samples.expand(url, 10)) == UPLOADS_NEWEST_FIRST


def test_expand_is_limited_and_the_limit_clamped_to_1_through_50(samples: SampleCatalogDiscovery) -> None:
    assert ids(samples.expand(CHANNEL_URL, 2)) == UPLOADS_NEWEST_FIRST[:2]
    assert ids(samples.expand(CHANNEL_URL, 0)) == UPLOADS_NEWEST_FIRST[:1]
    assert ids(samples.expand(CHANNEL_URL, -5)) == UPLOADS_NEWEST_FIRST[:1]
    assert ids(samples.expand(CHANNEL_URL, 10_000)) == UPLOADS_NEWEST_FIRST


def test_another_playlist_is_not_found_and_the_message_names_the_sample_one(
    samples: SampleCatalogDiscovery,
) -> None:
    error = refused(samples.expand, f"https://www.youtube.com/playlist?list={PL}", 5)

    assert error.code == "PLAYLIST_NOT_FOUND" and error.retryable is False
    assert PLAYLIST_URL in error.message


@pytest.mark.parametrize(
    "url", ["https://www.youtube.com/@veritasium", "https://www.youtube.com/user/ytrsample"]
)
def test_another_channel_is_not_found(samples: SampleCatalogDiscovery, url: str) -> None:
    error = refused(samples.expand, url, 5)

    assert error.code == "CHANNEL_NOT_FOUND"
    assert CHANNEL_URL in error.message


def test_a_video_url_is_not_a_playlist(samples: SampleCatalogDiscovery) -> None:
    assert (
        refused(samples.expand, "https://www.youtube.com/watch?v=SoLarP4nels", 5).code
        == "INVALID_PLAYLIST_URL"
    )


def test_a_samples_folder_without_a_catalog_has_no_playlists(tmp_path: Path) -> None:
    write_sample(tmp_path, "AAAAAAAAAAA", title="River", text="water")

    error = refused(SampleCatalogDiscovery(tmp_path).expand, PLAYLIST_URL, 5)

    assert error.code == "PLAYLIST_NOT_FOUND"


def test_catalog_ids_without_a_sample_file_are_skipped(tmp_path: Path) -> None:
    shutil.copy(default_samples_dir() / "catalog.json", tmp_path / "catalog.json")
    shutil.copy(default_samples_dir() / "PrintPr3ss1.json", tmp_path / "PrintPr3ss1.json")

    assert ids(SampleCatalogDiscovery(tmp_path).expand(PLAYLIST_URL, 10)) == ["PrintPr3ss1"]


def test_a_malformed_catalog_lists_nothing_and_says_so(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "catalog.json").write_text(json.dumps({"playlists": [{"id": "PLx"}]}), encoding="utf-8")

    assert refused(SampleCatalogDiscovery(tmp_path).expand, PLAYLIST_URL, 5).code == "PLAYLIST_NOT_FOUND"
    assert "catalog.json is malformed" in caplog.text


# ---------------------------------------------------------------- the factory


def test_the_offline_run_gets_the_samples_catalog(tmp_path: Path) -> None:
    discovery = build_discovery(load_settings(transcript_source="samples"), tmp_path)

    assert isinstance(discovery, SampleCatalogDiscovery) and discovery.samples_dir == tmp_path


def test_without_a_key_every_call_says_which_setting_to_set() -> None:
    discovery = build_discovery(load_settings(transcript_source="youtube", youtube_data_api_key=None), None)

    assert isinstance(discovery, YouTubeDataDiscovery)
    for error in (refused(discovery.search, "sourdough", 5), refused(discovery.expand, PLAYLIST_URL, 5)):
        assert error.code == "DISCOVERY_NOT_CONFIGURED" and error.retryable is False
        assert "YTR_YOUTUBE_DATA_API_KEY" in error.message


def test_the_key_secret_is_read_on_first_use_not_at_build(monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []

    def unreadable(arn: str) -> str:
        reads.append(arn)
        raise ConfigurationError("the YouTube Data API key secret is empty")

    monkeypatch.setattr("ytresearch.secrets.read_youtube_data_api_key", unreadable)
    arn = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:yt-key"
    settings = load_settings(transcript_source="youtube", youtube_data_api_key_secret_arn=arn)

    discovery = build_discovery(settings, None)
    assert reads == []

    error = refused(discovery.search, "sourdough", 5)
    assert reads == [arn]
    assert error.code == "DISCOVERY_NOT_CONFIGURED" and "secret is empty" in error.message

    refused(discovery.search, "sourdough", 5)
    assert reads == [arn, arn]  # a failed read is tried again, not remembered


def test_a_key_in_the_settings_wins_over_the_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    def must_not_read(arn: str) -> str:
        raise AssertionError("the secret was read")

    monkeypatch.setattr("ytresearch.secrets.read_youtube_data_api_key", must_not_read)
    settings = load_settings(
        transcript_source="youtube",
        youtube_data_api_key="AIza-direct",
        youtube_data_api_key_secret_arn="arn:x",
    )

    discovery = build_discovery(settings, None)

    assert isinstance(discovery, YouTubeDataDiscovery)
    assert discovery._api_key() == "AIza-direct"


@pytest.mark.parametrize(
    "module", ["ytresearch.youtube.discovery", "ytresearch.youtube.sample_catalog", "ytresearch.youtube"]
)
def test_importing_discovery_pulls_in_no_http_or_aws_library(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        "loaded = [m for m in ('httpx', 'requests', 'boto3', 'botocore') if m in sys.modules]\n"
        "assert not loaded, loaded\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr


# ---------------------------------------------------------------- helpers


def write_sample(
    folder: Path, video_id: str, *, title: str, text: str, channel: str = "Test Channel"
) -> None:
    data = {
        "video_id": video_id,
        "title": title,
        "channel": channel,
        "channel_url": None,
        "duration_seconds": 60,
        "language": "en",
        "is_generated": False,
        "segments": [{"text": text, "start": 0.0, "duration": 5.0}],
    }
    (folder / f"{video_id}.json").write_text(json.dumps(data), encoding="utf-8")


def first_transcript_only_word(video_id: str) -> str:
    """A long word of the sample's transcript that no sample's title or channel holds."""
    folder = default_samples_dir()
    headings = " ".join(
        f"{d['title']} {d['channel']}".lower()
        for d in (
            json.loads(p.read_text(encoding="utf-8")) for p in folder.glob("*.json") if p.stem != "catalog"
        )
    )
    data = json.loads((folder / f"{video_id}.json").read_text(encoding="utf-8"))
    words = " ".join(s["text"] for s in data["segments"]).lower().split()
    return next(w for w in words if w.isalpha() and len(w) > 8 and w not in headings)
