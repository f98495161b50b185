"""`ytr chat --timings`: how one reply felt on its transport. Three figures, defined as the
transport benchmark (bench/protocols.py, docs/protocols.md) defines them:

* first text: from just before the first request to the first text of the answer in hand (the
  first token on a stream, the first poll with text, the whole answer on sync);
* total: to the whole reply in hand (its terminal event, final status or response);
* tokens/s: the reply's tokens over the total, the rate at which the answer reached this client.
  Tokens are the API's ``output_tokens`` (the ``usage`` event, or the saved reply's usage), else
  the answer's words (polling sees no usage).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ytr.render import Output, StreamedText


class TimedText(StreamedText):
    """The answer as it is shown, noting when its first text arrived."""

    def __init__(
        self, out: Output, *, show: bool = True, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(out, show=show)
        self.clock = clock
        self.first_at: float | None = None

    def add(self, delta: str) -> None:
        if delta and self.first_at is None:
            self.first_at = self.clock()
        super().add(delta)


def count_tokens(text: str, usage: dict[str, Any] | None) -> tuple[int, str]:
    """The reply's tokens and what was counted: ``output_tokens`` when the API told, else words."""
    value = (usage or {}).get("output_tokens")
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value, "output_tokens"
    return len(text.split()), "words"


def tokens_per_second(tokens: int, total: float) -> float | None:
    return tokens / total if total > 0 else None


@dataclass
class Timings:
    transport: str
    text: TimedText
    clock: Callable[[], float] = time.monotonic
    started_at: float = field(init=False)
    ended_at: float | None = None

    def __post_init__(self) -> None:
        self.started_at = self.clock()

    def stop(self) -> None:
        self.ended_at = self.clock()

    def figures(self, text: str, usage: dict[str, Any] | None) -> dict[str, Any]:
        """The ``timings`` object of ``--json`` (seconds; null when there was no text)."""
        end = self.ended_at if self.ended_at is not None else self.clock()
        total = end - self.started_at
        first = self.text.first_at - self.started_at if self.text.first_at is not None else None
        tokens, counted = count_tokens(text, usage)
        rate = tokens_per_second(tokens, total)
        return {
            "transport": self.transport,
            "first_text_seconds": None if first is None else round(first, 4),
            "total_seconds": round(total, 4),
            "tokens": tokens,
            "tokens_counted": counted,
            "tokens_per_second": None if rate is None else round(rate, 1),
        }


def timings_line(figures: dict[str, Any], *, unicode: bool = True) -> str:
    """``first text 412 ms · total 2.31 s · 43.2 tokens/s (transport sse)`` (with ``-`` between
    the figures on a terminal that cannot show ``·``)."""
    first = figures.get("first_text_seconds")
    rate = figures.get("tokens_per_second")
    parts = [
        "first text " + ("none" if first is None else f"{first * 1000:.0f} ms"),
        f"total {figures['total_seconds']:.2f} s",
        "? tokens/s" if rate is None else f"{rate:.1f} tokens/s",
    ]
    return (" · " if unicode else " - ").join(parts) + f" (transport {figures['transport']})"
