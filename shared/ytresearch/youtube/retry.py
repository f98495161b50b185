"""Retries for YouTube fetches: transient failures (network, blocked, request failed) are retried a
few times with full-jitter exponential backoff before the ingest attempt gives up; permanent ones
(transcripts disabled, video unavailable...) are raised at once."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence

from ytresearch.ports import Transcript, TranscriptError, TranscriptSource

log = logging.getLogger(__name__)


class RetryingTranscriptSource:
    def __init__(
        self,
        inner: TranscriptSource,
        *,
        attempts: int = 3,
        backoff_base: float = 0.5,
        backoff_max: float = 4.0,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.inner = inner
        self.attempts = attempts
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.sleep = sleep

    def fetch(self, video_id: str, languages: Sequence[str]) -> Transcript:
        for attempt in range(1, self.attempts + 1):
            try:
                return self.inner.fetch(video_id, languages)
            except TranscriptError as exc:
                if not exc.retryable or attempt == self.attempts:
                    raise
                delay = random.uniform(0, min(self.backoff_max, self.backoff_base * 2 ** (attempt - 1)))
                log.info(
                    "transcript fetch for %s failed (%s); retry %d in %.2f s",
                    video_id,
                    exc.code,
                    attempt,
                    delay,
                )
                self.sleep(delay)
        raise AssertionError("unreachable")
