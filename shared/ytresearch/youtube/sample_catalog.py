"""The offline VideoDiscovery (YTR_TRANSCRIPT_SOURCE=samples): keyword search over the bundled
samples, and the playlists and channels their ``catalog.json`` lists."""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ytresearch.ports import DiscoveryError, VideoCandidate
from ytresearch.youtube._samples import Sample, SampleFileError, default_samples_dir, read_sample, sample_ids
from ytresearch.youtube.discovery_inputs import (
    CHANNEL_NOT_FOUND,
    MAX_LIST_ITEMS,
    MAX_SEARCH_RESULTS,
    PLAYLIST_NOT_FOUND,
    ChannelRef,
    PlaylistRef,
    checked_query,
    clamp_count,
    parse_list_url,
)
from ytresearch.youtube.urls import is_video_id

__all__ = ["CATALOG_FILE", "SampleCatalogDiscovery"]

logger = logging.getLogger(__name__)

CATALOG_FILE = "catalog.json"
_TITLE_WEIGHT, _CHANNEL_WEIGHT, _TRANSCRIPT_WEIGHT = 3, 2, 1
_WORD_RE = re.compile(r"\w+")
# "How do vaccines work?": the question's frame words say nothing about the topic.
_STOPWORDS = frozenset(
    _WORD_RE.findall(
        """a about after all also an and any are as at be been but by can could did do does for from had
        has have how i if in into is it its just me more most my no not of on or our s so some t than that
        the their them then there these they this those to up us video videos was we were what when where
        which who why will with work works would you your"""
    )
)


def _words(text: str) -> set[str]:
    """Lower-cased words minus stopwords, plurals folded (``panels`` -> ``panel``)."""
    return {_singular(w) for w in _WORD_RE.findall(text.casefold()) if w not in _STOPWORDS}


def _singular(word: str) -> str:
    if len(word) > 4 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


@dataclass(frozen=True)
class _CatalogList:
    playlist_id: str
    video_ids: tuple[str, ...]


@dataclass(frozen=True)
class _CatalogChannel:
    channel_id: str
    handle: str
    username: str | None
    uploads: tuple[str, ...]  # newest first

    def matches(self, ref: ChannelRef) -> bool:
        if ref.kind == "id":
            return ref.value == self.channel_id
        names: dict[str, list[str | None]] = {
            "handle": [self.handle],
            "custom": [self.handle, self.username],
            "username": [self.username],
        }
        return any(name is not None and name.casefold() == ref.value.casefold() for name in names[ref.kind])


class SampleCatalogDiscovery:
    """VideoDiscovery over the bundled samples, for the offline run (YTR_TRANSCRIPT_SOURCE=samples).

    ``search`` is an honest keyword search over the samples' titles, channels and transcripts: no
    match gives no result. ``expand`` knows the playlists and channels in ``catalog.json`` beside
    the samples; every other list is not found.
    """

    def __init__(self, samples_dir: Path | str | None = None) -> None:
        self.samples_dir = Path(samples_dir) if samples_dir is not None else default_samples_dir()

    def search(self, query: str, max_results: int) -> list[VideoCandidate]:
        """Samples that share words with ``query``, best first: a word counts 3 in a title, 2 in a
        channel name, 1 in a transcript (its best place only); ties go by video id."""
        wanted = _words(checked_query(query))
        count = clamp_count(max_results, MAX_SEARCH_RESULTS)
        scored: list[tuple[int, Sample]] = []
        for video_id in sample_ids(self.samples_dir):
            sample = self._read(video_id)
            if sample is None:
                continue
            places = [
                (_TITLE_WEIGHT, _words(sample.title or "")),
                (_CHANNEL_WEIGHT, _words(sample.channel or "")),
                (_TRANSCRIPT_WEIGHT, _words(" ".join(s.text for s in sample.segments))),
            ]
            score = sum(
                max((weight for weight, found in places if word in found), default=0) for word in wanted
            )
            if score > 0:
                scored.append((score, sample))
        scored.sort(key=lambda hit: (-hit[0], hit[1].video_id))
        return [_sample_candidate(sample) for _, sample in scored[:count]]

    def expand(self, url: str, limit: int) -> list[VideoCandidate]:
        """The catalog's playlist or channel (uploads, newest first) that ``url`` names, at most
        ``limit`` (clamped to 1..50). Raises DiscoveryError as the Data API adapter does."""
        ref = parse_list_url(url)
        count = clamp_count(limit, MAX_LIST_ITEMS)
        playlists, channels = self._catalog()
        ids: tuple[str, ...] | None = None
        if isinstance(ref, PlaylistRef):
            # A channel's uploads playlist is its id with UU for UC, as on YouTube.
            lists = {p.playlist_id: p.video_ids for p in playlists}
            lists.update({"UU" + c.channel_id[2:]: c.uploads for c in channels})
            ids = lists.get(ref.playlist_id)
            if ids is None:
                raise DiscoveryError(
                    "There is no sample playlist at that URL (the offline samples have "
                    f"{_listing(playlists)}).",
                    code=PLAYLIST_NOT_FOUND,
                )
        else:
            ids = next((c.uploads for c in channels if c.matches(ref)), None)
            if ids is None:
                raise DiscoveryError(
                    "There is no sample channel at that URL (the offline samples have "
                    f"{_listing(channels)}).",
                    code=CHANNEL_NOT_FOUND,
                )
        samples = (self._read(video_id) for video_id in ids)
        return [_sample_candidate(sample) for sample in samples if sample is not None][:count]

    def _read(self, video_id: str) -> Sample | None:
        try:
            return read_sample(self.samples_dir, video_id)
        except SampleFileError as exc:
            logger.warning("sample skipped: %s", exc)
            return None

    def _catalog(self) -> tuple[list[_CatalogList], list[_CatalogChannel]]:
        path = self.samples_dir / CATALOG_FILE
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            return _parse_catalog(data)
        except FileNotFoundError:
            return [], []
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("sample catalog %s is malformed (%s); it lists nothing", path.name, exc)
            return [], []


def _sample_candidate(sample: Sample) -> VideoCandidate:
    return VideoCandidate(
        video_id=sample.video_id,
        title=sample.title,
        channel=sample.channel,
        duration_seconds=sample.duration_seconds,
    )


def _parse_catalog(data: Any) -> tuple[list[_CatalogList], list[_CatalogChannel]]:
    if not isinstance(data, dict):
        raise ValueError("top level must be an object")
    playlists = [_CatalogList(str(p["id"]), _video_ids(p["video_ids"])) for p in data.get("playlists", [])]
    channels = [
        _CatalogChannel(
            channel_id=str(c["id"]),
            handle=str(c["handle"]).removeprefix("@"),
            username=str(c["username"]) if c.get("username") else None,
            uploads=_video_ids(c["uploads"]),
        )
        for c in data.get("channels", [])
    ]
    return playlists, channels


def _video_ids(values: Any) -> tuple[str, ...]:
    if not isinstance(values, list) or not all(isinstance(v, str) and is_video_id(v) for v in values):
        raise ValueError("video id lists must hold 11-character video ids")
    return tuple(values)


def _listing(entries: list[_CatalogList] | list[_CatalogChannel]) -> str:
    if not entries:
        return "none"
    return ", ".join(
        f"https://www.youtube.com/playlist?list={e.playlist_id}"
        if isinstance(e, _CatalogList)
        else f"https://www.youtube.com/@{e.handle}"
        for e in entries
    )
