"""The transcript index: windows built at ingest and by the backfill, searched on SQLite (FTS5) and
PostgreSQL (tsvector), whatever the question's text; they go with their video."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import uuid
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, delete, inspect, text

from tests.integration.test_migrations import _diff
from tests.support.postgres import PostgresServer
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytresearch.bootstrap import Container
from ytresearch.db.engine import make_engine
from ytresearch.db.migrations import alembic_config, upgrade_to_head
from ytresearch.db.models import TranscriptWindow, Video
from ytresearch.llm import OfflineChatModel
from ytresearch.ports import IngestMessage, Transcript, TranscriptSegment
from ytresearch.services.ingest import IngestDeps, ingest_video
from ytresearch.services.windows import backfill_windows
from ytresearch.windows import transcript_windows
from ytresearch.youtube import NullMetadataSource

YTR_ADMIN = str(Path(sys.executable).parent / "ytr-admin")
THREE_HOURS = 3 * 3600
FILLER_TEXT = """
    we talk about energy and power today with the team so that everyone can follow the system design
    numbers costs weather roof battery inverter grid meter cable sunlight morning evening question
    answer example reason people house water wind heat light market price
"""
FILLER = FILLER_TEXT.split()  # plausible words, none of them the needle's
NEEDLE = "the turbine gearbox failed because salt corrosion ate the bearings"


def filler_segments(seconds: int, *, seed: int, every: float = 3.0) -> list[dict[str, Any]]:
    """Captions every ``every`` seconds of plausible words that never mention the needle."""
    rng = random.Random(seed)
    return [
        {"text": " ".join(rng.choices(FILLER, k=9)), "start": i * every, "duration": every}
        for i in range(int(seconds / every))
    ]


def with_line(segments: list[dict[str, Any]], at: float, line: str) -> list[dict[str, Any]]:
    return sorted([*segments, {"text": line, "start": at, "duration": 3.0}], key=lambda s: s["start"])


def index(
    container: Container, video_id: str, segments: Sequence[dict[str, Any]], language: str = "en"
) -> None:
    """A ready video with these captions, and its windows."""
    with container.store.transaction() as repo:
        video = repo.get_or_add_video(video_id)
        video.status, video.transcript_language = "ready", language
        video.transcript_segments = list(segments)
        video.transcript_text = " ".join(s["text"] for s in segments)
        repo.session.flush()
        repo.replace_windows(video_id, language, transcript_windows(segments))


def search(container: Container, video_ids: Sequence[str], query: str, limit: int = 5) -> list[Any]:
    with container.store.transaction() as repo:
        return repo.search_windows(video_ids, query, limit)


class SyntheticTranscripts:
    """A transcript source with made-up captions in a given language."""

    def __init__(self, segments: list[dict[str, Any]], language: str = "en") -> None:
        self.segments, self.language = segments, language

    def fetch(self, video_id: str, languages: Sequence[str]) -> Transcript:
        segments = [TranscriptSegment(s["text"], s["start"], s["duration"]) for s in self.segments]
        return Transcript(video_id, self.language, False, segments)


def ingest(container: Container, video_id: str, transcripts: SyntheticTranscripts) -> str:
    user, _ = make_user(container)
    with container.store.transaction() as repo:
        session = repo.add_session(user.id, "s")
        repo.get_or_add_video(video_id)
        repo.link_video(session.id, video_id, None)
        job = repo.add_job(user_id=user.id, session_id=session.id, video_id=video_id, language=None)
    deps = IngestDeps(
        container.store, container.settings, transcripts, NullMetadataSource(), OfflineChatModel()
    )
    return ingest_video(deps, IngestMessage(job_id=str(job.id), video_id=video_id))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Engine]:
    """An engine on a database without any schema, on each backend."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/empty.db"
    else:
        server: PostgresServer = request.getfixturevalue("pg_server")
        url = server.create_database(f"idx_{uuid.uuid4().hex[:8]}")
    engine = make_engine(test_settings(url))
    yield engine
    engine.dispose()


# ---------------------------------------------------------------------- building the index


def test_ingest_stores_the_windows_with_the_transcript(container: Container) -> None:
    segments = with_line(filler_segments(1200, seed=1), 1100.0, NEEDLE)

    assert ingest(container, "Ingest00001", SyntheticTranscripts(segments, "en-GB")) == "done"

    with container.store.transaction() as repo:
        windows = repo.windows_of("Ingest00001")
        assert [w.seq for w in windows] == list(range(len(windows)))
        assert len(windows) == len(transcript_windows(segments)) > 15
        assert windows[0].start_seconds == 0.0 and windows[-1].end_seconds == 1200.0
        assert {w.language for w in windows} == {"en-GB"}
        assert repo.count_windows("Ingest00001") == len(windows)
        assert [w.seq for w in repo.window_range("Ingest00001", 3, 5)] == [3, 4, 5]
        found = repo.search_windows(["Ingest00001"], "what broke the gearbox?", 3)
    assert found and "[18:20] " + NEEDLE in found[0][0].text


def test_the_backfill_indexes_ready_videos_without_windows_once(container: Container) -> None:
    index(container, "Indexed0001", filler_segments(300, seed=2))
    index(container, "Empty000001", [])  # a transcript without a line: nothing to index, ever
    for video_id in ("Missing0001", "Missing0002", "Missing0003"):
        index(container, video_id, with_line(filler_segments(300, seed=3), 250.0, NEEDLE))
        with container.store.transaction() as repo:
            repo.replace_windows(video_id, "en", [])  # ingested before the index existed
    with container.store.transaction() as repo:
        pending = repo.get_or_add_video("Pending0001")  # not ready: ingest will index it
        pending.transcript_text = "half done"

    assert backfill_windows(container.store, batch=1) == 3  # batches of one: the walk ends
    assert backfill_windows(container.store) == 0

    with container.store.transaction() as repo:
        assert repo.videos_without_windows(10) == ["Empty000001"]
        missing = with_line(filler_segments(300, seed=3), 250.0, NEEDLE)
        assert repo.count_windows("Missing0001") == len(transcript_windows(missing))
        assert repo.count_windows("Indexed0001") > 0 and repo.count_windows("Pending0001") == 0
    found = search(container, ["Missing0002"], "gearbox corrosion")
    assert found and NEEDLE in found[0][0].text


def test_ytr_admin_backfills_the_index(container: Container, database_url: str) -> None:
    index(container, "AdminFill01", with_line(filler_segments(300, seed=14), 100.0, NEEDLE))
    with container.store.transaction() as repo:
        repo.replace_windows("AdminFill01", "en", [])
    env = {**os.environ, "YTR_DATABASE_URL": database_url}

    done = subprocess.run(
        [YTR_ADMIN, "--json", "backfill-windows"], capture_output=True, text=True, env=env, timeout=120
    )

    assert (done.returncode, json.loads(done.stdout)) == (0, {"videos_indexed": 1}), done.stderr
    assert search(container, ["AdminFill01"], "gearbox")


def test_upgrading_an_existing_database_backfills_its_videos(empty_database: Engine) -> None:
    command.upgrade(alembic_config(empty_database), "0005")  # a deployment from before the index
    with empty_database.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO videos (id, status, transcript_language, transcript_segments, "
                "transcript_text, created_at, updated_at) VALUES ('OldVideo001', 'ready', 'en', "
                """'[{"text": "salt corrosion", "start": 1.0, "duration": 2.0}]', """
                "'salt corrosion', CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"
            )
        )

    upgrade_to_head(engine=empty_database)

    container = Container(test_settings(str(empty_database.url)), engine=empty_database)
    with container.store.transaction() as repo:
        assert [w.text for w in repo.windows_of("OldVideo001")] == ["[00:01] salt corrosion"]
    assert search(container, ["OldVideo001"], "corrosion")


# ---------------------------------------------------------------------- searching


def test_a_phrase_in_the_last_minute_of_a_three_hour_video_is_found_among_long_videos(
    container: Container,
) -> None:
    needle_at = THREE_HOURS - 40.0
    videos = {f"LongVideo{n:02d}": filler_segments(THREE_HOURS, seed=10 + n) for n in range(4)}
    videos["LongVideo02"] = with_line(videos["LongVideo02"], needle_at, NEEDLE)
    for video_id, segments in videos.items():
        index(container, video_id, segments)

    found = search(container, list(videos), "Why did the gearbox fail? Was it corrosion?")

    best, score = found[0]
    assert (best.video_id, best.start_seconds <= needle_at <= best.end_seconds) == ("LongVideo02", True)
    assert "[2:59:20] " + NEEDLE in best.text
    assert [s for _, s in found] == sorted((s for _, s in found), reverse=True) and score > 0
    assert all(w.video_id in videos for w, _ in found)
    with container.store.transaction() as repo:
        assert repo.count_windows("LongVideo02") > 140  # ~75 s windows over three hours


def test_search_is_limited_to_the_given_videos(container: Container) -> None:
    index(container, "HasNeedle01", with_line(filler_segments(200, seed=4), 100.0, NEEDLE))
    index(container, "NoNeedle001", filler_segments(200, seed=5))

    assert search(container, ["NoNeedle001"], "gearbox") == []
    assert search(container, [], "gearbox") == []
    assert [w.video_id for w, _ in search(container, ["NoNeedle001", "HasNeedle01"], "gearbox")] == [
        "HasNeedle01"
    ]


def test_the_more_question_words_a_window_has_the_better_it_ranks(container: Container) -> None:
    index(
        container,
        "Ranking0001",
        [
            {"text": "the gearbox was new", "start": 0.0, "duration": 3.0},
            {"text": "corrosion is a slow process", "start": 200.0, "duration": 3.0},
            {"text": "salt corrosion wrecked the gearbox", "start": 400.0, "duration": 3.0},
        ],
    )

    found = search(container, ["Ranking0001"], "gearbox salt corrosion")

    assert [w.seq for w, _ in found][:1] == [2]
    assert len(found) == 3


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        '"',
        '"unbalanced quote',
        "(gearbox",
        "gearbox)",
        "((()))",
        "AND OR NOT",
        "gearbox AND NOT corrosion OR",
        "NEAR(gearbox corrosion, 2)",
        "*",
        "gear*",
        "-",
        "-gearbox --corrosion",
        "gearbox\x00corrosion",
        "\x00",
        "col:gearbox text:corrosion ^salt {a b}",
        "'; DROP TABLE transcript_windows; --",
        "!gearbox & | <-> :*",
        "x" * 10_000,
        "gearbox " * 1_250,
        "ветряк ギアボックス 🚀 عربى",
        "\\ \\\\ %_ \t\n",
    ],
)
def test_hostile_queries_return_results_or_nothing_and_never_fail(container: Container, query: str) -> None:
    index(container, "Hostile0001", with_line(filler_segments(300, seed=6), 200.0, NEEDLE))

    found = search(container, ["Hostile0001"], query)

    assert isinstance(found, list)
    if "gearbox" in query:
        assert found and NEEDLE in found[0][0].text
    with container.store.transaction() as repo:  # and the index is intact afterwards
        assert repo.count_windows("Hostile0001") > 0


def test_a_question_of_stop_words_or_unknown_words_finds_nothing(container: Container) -> None:
    index(container, "StopWords01", filler_segments(300, seed=7))

    assert search(container, ["StopWords01"], "how is it that they were?") == []
    assert search(container, ["StopWords01"], "zeppelin") == []


@pytest.mark.postgres
def test_english_stemming_on_postgres(db: Container) -> None:
    index(db, "Stemming001", [{"text": "one solar panel converts light", "start": 0.0, "duration": 3.0}])

    assert [w.seq for w, _ in search(db, ["Stemming001"], "panels")] == [0]
    assert [w.seq for w, _ in search(db, ["Stemming001"], "converting lights")] == [0]


@pytest.mark.postgres
def test_a_spanish_video_answers_spanish_and_english_questions_on_postgres(db: Container) -> None:
    index(
        db,
        "Spanish0001",
        [
            {
                "text": "Los paneles solares de Tesla convierten la luz en electricidad",
                "start": 0.0,
                "duration": 4.0,
            },
            {"text": "En 2019 la batería Powerwall costaba mucho", "start": 300.0, "duration": 4.0},
        ],
        language="es",
    )

    spanish = search(db, ["Spanish0001"], "¿Cómo convierte la luz un panel solar?")
    names = search(db, ["Spanish0001"], "What did Tesla say about the Powerwall in 2019?")
    cognates = search(db, ["Spanish0001"], "How do solar panels make electricity?")

    assert [w.seq for w, _ in spanish] == [0]  # Spanish stems: panel/paneles, convierte/convierten
    assert [w.seq for w, _ in names] == [1, 0]  # words written alike, the rarer first
    assert [w.seq for w, _ in cognates] == [0]  # English stems that Spanish shares: solar, panel, electr
    with db.store.transaction() as repo:
        assert repo.windows_of("Spanish0001")[0].language == "es"
        tsv = repo.session.execute(text("SELECT tsv FROM transcript_windows WHERE seq = 0")).scalar()
    assert "'panel'" in str(tsv) and "'conviert'" in str(tsv)  # indexed with Spanish stems


# ---------------------------------------------------------------------- lifetime and schema


def test_deleting_a_video_deletes_its_windows(container: Container) -> None:
    index(container, "Deleted0001", with_line(filler_segments(300, seed=8), 100.0, NEEDLE))
    index(container, "Kept0000001", with_line(filler_segments(300, seed=9), 100.0, NEEDLE))

    with container.store.transaction() as repo:
        repo.session.execute(delete(Video).where(Video.id == "Deleted0001"))

    with container.store.transaction() as repo:
        assert repo.count_windows("Deleted0001") == 0
        assert repo.session.query(TranscriptWindow).filter_by(video_id="Deleted0001").count() == 0
        if repo.session.get_bind().dialect.name == "sqlite":
            # The FTS5 index forgot them too (its triggers ran on the cascade).
            check = "INSERT INTO transcript_windows_fts (transcript_windows_fts, rank) VALUES (:c, 1)"
            repo.session.execute(text(check), {"c": "integrity-check"})
    assert search(container, ["Deleted0001"], "gearbox") == []
    assert [w.video_id for w, _ in search(container, ["Deleted0001", "Kept0000001"], "gearbox")] == [
        "Kept0000001"
    ]


def test_replacing_windows_replaces_their_index(container: Container) -> None:
    index(container, "Replaced001", with_line(filler_segments(300, seed=11), 100.0, NEEDLE))

    index(container, "Replaced001", filler_segments(120, seed=12))

    assert search(container, ["Replaced001"], "gearbox") == []
    with container.store.transaction() as repo:
        assert repo.count_windows("Replaced001") == len(transcript_windows(filler_segments(120, seed=12)))


def test_the_migration_goes_down_and_up_again(empty_database: Engine) -> None:
    url = empty_database.url.render_as_string(hide_password=False)
    upgrade_to_head(engine=empty_database)
    index(Container(test_settings(url), engine=empty_database), "UpAndDown01", filler_segments(200, seed=13))

    command.downgrade(alembic_config(empty_database), "0005")

    schema = inspect(empty_database)
    assert not any(name.startswith("transcript_windows") for name in schema.get_table_names())
    assert "citations" not in {c["name"] for c in schema.get_columns("messages")}
    upgrade_to_head(engine=empty_database)  # and up again: the video is indexed again
    assert _diff(url) == []
    with empty_database.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM transcript_windows")).scalar() == len(
            transcript_windows(filler_segments(200, seed=13))
        )
