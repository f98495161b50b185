"""The transcript index: each transcript's windows (``ytresearch.windows``) and full-text search
over them, on PostgreSQL (a tsvector per window, GIN-indexed) and on SQLite (FTS5).

How a search works. A question is cut into words (``search_terms``: English stop words left out),
each a search term of its own, and a window matches when it has any of them: a question is not a
boolean query, and its words rarely all occur in one minute of speech. Nothing of the user's text
reaches a query parser but those words, so quotes, parentheses, AND/OR/NOT, ``*``, ``-`` or NUL
can never make a syntax error (they are not words).

- SQLite: the words, quoted, joined with OR, matched against the FTS5 table and ranked by
  ``bm25()`` (its IDF counted over every window; English stemming by FTS5's porter tokenizer).
- PostgreSQL: each window's ``tsv`` holds its words twice: as the text search configuration of
  its transcript's language stems them (``TEXT_SEARCH_CONFIGS``) and as written (``simple``, which
  is all an unlisted language gets). Each word of the question becomes one tsquery, the OR of
  ``websearch_to_tsquery`` under every configuration of the searched videos, under English (the
  usual language of a question) and under ``simple``. So a Spanish question meets a Spanish video
  stem to stem; an English question meets it through the words both languages write alike (names,
  numbers, technical words: ``simple``) and the stems English and Spanish share ("panels" and
  "paneles" both stem to "panel"). A word that is a stop word in every language of the videos is
  dropped too ("los" among Spanish videos; but "war", a German stop word, is still searched for
  when English videos sit beside the German one). A window's score is BM25's IDF summed over the
  question's words it has (counted among the searched videos' windows: a rare word weighs more
  than a common one), plus ``ts_rank`` normalised to [0, 1) to order windows with the same words
  by how often they say them. (Not ``ts_rank_cd``: with a query of OR'd words every occurrence is
  a cover of its own, so it ranks like ``ts_rank`` at twenty times the cost.)
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence

from sqlalchemy import bindparam, delete, distinct, func, insert, select, text

from ytresearch.db.models import TranscriptWindow, Video
from ytresearch.repository.base import Queries, table_of
from ytresearch.windows import Window

# Transcript language (ISO 639-1, the part before any region: "pt-BR" -> "pt") -> PostgreSQL's
# built-in text search configuration. Any other language is indexed with "simple" (lower case,
# no stemming, no stop words). Changing an entry changes how new windows are indexed: re-index the
# videos in that language (replace_windows) so old and new windows agree.
TEXT_SEARCH_CONFIGS = {
    "ar": "arabic",
    "ca": "catalan",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "eu": "basque",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "nb": "norwegian",
    "ne": "nepali",
    "nl": "dutch",
    "nn": "norwegian",
    "no": "norwegian",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}
QUESTION_LANGUAGE = "english"  # every search also stems by it and drops its stop words
MAX_TERMS = 32  # words of a question searched for (the first ones); bounds the query's work
MAX_TERM_CHARS = 100  # a longer "word" is no word (and could not be indexed whole anyway)

# PostgreSQL's English stop words (Snowball's list): never searched for, on either backend (SQLite
# has none of its own), so a question made only of them finds nothing.
_ENGLISH_STOP_LIST = """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can did do does doing don down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more
    most my myself no nor not now of off on once only or other our ours ourselves out over own s
    same she should so some such t than that the their theirs them themselves then there these they
    this those through to too under until up very was we were what when where which while who whom
    why will with you your yours yourself yourselves
"""
ENGLISH_STOP_WORDS = frozenset(_ENGLISH_STOP_LIST.split())

# PostgreSQL. The statements' texts are fixed (lists go in as arrays), so each is prepared once per
# connection (db/prepared.py).
_PG_INSERT = text(
    """
    INSERT INTO transcript_windows (video_id, seq, start_seconds, end_seconds, text, language, tsv)
    SELECT :video_id, w.seq, w.start_seconds, w.end_seconds, w.text, :language,
           CASE WHEN :config = 'simple' THEN to_tsvector('simple', w.text)
                ELSE to_tsvector(CAST(:config AS regconfig), w.text) || to_tsvector('simple', w.text)
           END
    FROM unnest(CAST(:seqs AS integer[]), CAST(:starts AS double precision[]),
                CAST(:ends AS double precision[]), CAST(:texts AS text[]))
         AS w(seq, start_seconds, end_seconds, text)
    """
)
_PG_TERM_QUERIES = text(
    """
    SELECT c.config, t.term, CAST(websearch_to_tsquery(CAST(c.config AS regconfig), t.term) AS text)
    FROM unnest(CAST(:configs AS text[])) AS c(config), unnest(CAST(:terms AS text[])) AS t(term)
    """
)
_PG_SEARCH = text(
    """
    WITH q AS (
        SELECT CAST(u.query AS tsquery) AS query, u.term
        FROM unnest(CAST(:queries AS text[])) WITH ORDINALITY AS u(query, term)
    ),
    hits AS (
        SELECT w.id, q.term
        FROM transcript_windows AS w JOIN q ON w.tsv @@ q.query
        WHERE w.video_id = ANY(CAST(:video_ids AS text[]))
    ),
    searched AS (
        SELECT CAST(count(*) AS double precision) AS n FROM transcript_windows
        WHERE video_id = ANY(CAST(:video_ids AS text[]))
    ),
    idf AS (
        SELECT h.term, ln(1 + (s.n - count(*) + 0.5) / (count(*) + 0.5)) AS idf
        FROM hits AS h CROSS JOIN searched AS s
        GROUP BY h.term, s.n
    ),
    weighted AS (
        SELECT h.id, sum(idf.idf) AS idf FROM hits AS h JOIN idf ON idf.term = h.term GROUP BY h.id
    )
    SELECT w.id, weighted.idf + ts_rank(w.tsv, CAST(:anything AS tsquery), 32) AS score
    FROM weighted JOIN transcript_windows AS w ON w.id = weighted.id
    ORDER BY score DESC, w.video_id, w.seq
    LIMIT :limit
    """
)

# SQLite: bm25() is lower for better matches.
_SQLITE_SEARCH = text(
    """
    SELECT w.id, -bm25(transcript_windows_fts) AS score
    FROM transcript_windows_fts JOIN transcript_windows AS w ON w.id = transcript_windows_fts.rowid
    WHERE transcript_windows_fts MATCH :match AND w.video_id IN :video_ids
    ORDER BY bm25(transcript_windows_fts), w.video_id, w.seq
    LIMIT :limit
    """
).bindparams(bindparam("video_ids", expanding=True))

# A search's other statements, built once too (a chat about long transcripts runs them every time).
_LANGUAGES = select(distinct(TranscriptWindow.language)).where(
    TranscriptWindow.video_id.in_(bindparam("video_ids", expanding=True))
)
_WINDOWS_BY_ID = select(TranscriptWindow).where(TranscriptWindow.id.in_(bindparam("ids", expanding=True)))


def text_search_config(language: str | None) -> str:
    """PostgreSQL's text search configuration for a transcript language code."""
    primary = re.split(r"[-_]", (language or "").strip().lower(), maxsplit=1)[0]
    return TEXT_SEARCH_CONFIGS.get(primary, "simple")


def search_terms(query: str) -> list[str]:
    """What a search looks for: the distinct words of ``query`` (runs of letters, marks and digits,
    lower case) but English stop words, the first ``MAX_TERMS`` of them."""
    words = "".join(c if unicodedata.category(c)[0] in "LMN" else " " for c in query.lower()).split()
    kept = (w for w in words if len(w) <= MAX_TERM_CHARS and w not in ENGLISH_STOP_WORDS)
    return list(dict.fromkeys(kept))[:MAX_TERMS]


class WindowQueries(Queries):
    def replace_windows(self, video_id: str, language: str | None, windows: Sequence[Window]) -> None:
        """Make ``windows`` the video's windows (and index them), in the caller's transaction."""
        table = table_of(TranscriptWindow)
        self.session.execute(delete(table).where(table.c.video_id == video_id))
        if not windows:
            return
        if self._postgres:
            self.session.execute(
                _PG_INSERT,
                {
                    "video_id": video_id,
                    "language": language,
                    "config": text_search_config(language),
                    "seqs": [w.seq for w in windows],
                    "starts": [w.start for w in windows],
                    "ends": [w.end for w in windows],
                    "texts": [w.text for w in windows],
                },
            )
            return
        # SQLite: the FTS5 table follows by its triggers (migration 0006).
        rows = [
            {
                "video_id": video_id,
                "seq": w.seq,
                "start_seconds": w.start,
                "end_seconds": w.end,
                "text": w.text,
                "language": language,
            }
            for w in windows
        ]
        self.session.execute(insert(table), rows)

    def windows_of(self, video_id: str) -> list[TranscriptWindow]:
        """The video's windows in order."""
        return self.window_range(video_id, 0, None)

    def window_range(self, video_id: str, start_seq: int, end_seq: int | None) -> list[TranscriptWindow]:
        """Windows ``start_seq`` to ``end_seq`` (both included; None: to the last) of a video, in
        order: a cited window with its neighbours."""
        query = select(TranscriptWindow).where(
            TranscriptWindow.video_id == video_id, TranscriptWindow.seq >= start_seq
        )
        if end_seq is not None:
            query = query.where(TranscriptWindow.seq <= end_seq)
        return list(self.session.scalars(query.order_by(TranscriptWindow.seq)))

    def count_windows(self, video_id: str) -> int:
        return int(
            self.session.scalar(
                select(func.count())
                .select_from(TranscriptWindow)
                .where(TranscriptWindow.video_id == video_id)
            )
            or 0
        )

    def videos_without_windows(self, limit: int, *, after: str | None = None) -> list[str]:
        """Ready videos with a transcript and no windows, by id (those after ``after``): what the
        backfill indexes. A transcript without a line yields no windows, so it stays listed: walk
        the ids with ``after`` rather than asking again from the start."""
        indexed = select(TranscriptWindow.id).where(TranscriptWindow.video_id == Video.id)
        query = select(Video.id).where(
            Video.status == "ready", Video.transcript_text.is_not(None), ~indexed.exists()
        )
        if after is not None:
            query = query.where(Video.id > after)
        return list(self.session.scalars(query.order_by(Video.id).limit(limit)))

    def search_windows(
        self, video_ids: Sequence[str], query: str, limit: int
    ) -> list[tuple[TranscriptWindow, float]]:
        """The windows of ``video_ids`` that best match ``query``, best first, with their scores
        (higher is better; comparable within one search only). Empty for an empty query, a query
        with no searchable word, or no match; never a syntax error, whatever the text."""
        terms = search_terms(query)
        if not terms or not video_ids or limit <= 0:
            return []
        ids = list(dict.fromkeys(video_ids))
        if self._postgres:
            scored = self._search_postgres(ids, terms, limit)
        else:
            match = " OR ".join('"' + term.replace('"', '""') + '"' for term in terms)
            rows = self.session.execute(_SQLITE_SEARCH, {"match": match, "video_ids": ids, "limit": limit})
            scored = [(int(row_id), float(score)) for row_id, score in rows.tuples()]
        if not scored:
            return []
        found = self.session.scalars(_WINDOWS_BY_ID, {"ids": [row_id for row_id, _ in scored]})
        by_id = {window.id: window for window in found}
        return [(by_id[row_id], score) for row_id, score in scored if row_id in by_id]

    def _search_postgres(self, video_ids: list[str], terms: list[str], limit: int) -> list[tuple[int, float]]:
        languages = self.session.scalars(_LANGUAGES, {"video_ids": video_ids}).all()
        if not languages:
            return []
        own = {text_search_config(language) for language in languages} - {"simple"}
        searched = sorted(own | {QUESTION_LANGUAGE, "simple"})
        rows = self.session.execute(_PG_TERM_QUERIES, {"configs": searched, "terms": terms})
        by_term: dict[str, dict[str, str]] = {}
        for config, term, tsquery in rows.tuples():
            by_term.setdefault(term, {})[config] = tsquery
        queries: list[str] = []
        for term in terms:
            forms = by_term.get(term, {})
            if not forms.get(QUESTION_LANGUAGE) or (own and not any(forms.get(config) for config in own)):
                continue  # a stop word in English, or in every language of the videos
            # PostgreSQL's own rendering of each tsquery, so the text casts back exactly.
            alternatives = dict.fromkeys(forms[config] for config in searched if forms.get(config))
            if alternatives:
                queries.append(" | ".join(f"( {q} )" for q in alternatives))
        if not queries:
            return []
        rows = self.session.execute(
            _PG_SEARCH,
            {
                "queries": queries,
                "video_ids": video_ids,
                "anything": " | ".join(f"( {q} )" for q in queries),
                "limit": limit,
            },
        )
        return [(int(row_id), float(score)) for row_id, score in rows.tuples()]

    @property
    def _postgres(self) -> bool:
        return self.session.get_bind().dialect.name == "postgresql"
