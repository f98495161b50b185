"""The fake Anthropic server (tests/fakes/anthropic_server.py) in a process of its own, so its CPU
is not charged to the servers being measured. Every streamed request gets the same reply:
``--chunks`` text deltas of ``--chunk-size`` characters, paced at ``--chunks-per-second``, the
first after ``--delay-first`` seconds. Prints its port on stdout, then serves until SIGTERM.

    python -m bench.fake_upstream --chunks 100 --chunk-size 8 --chunks-per-second 50
"""

from __future__ import annotations

import argparse
import signal
import threading
from typing import Any

from tests.fakes.anthropic_server import FakeAnthropic, Reply

SENTENCE = "the quick brown fox jumps over a lazy dog while the solar panel research video explains. "


def reply_text(chars: int) -> str:
    return (SENTENCE * (chars // len(SENTENCE) + 1))[:chars]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--chunks", type=int, default=100)
    parser.add_argument("--chunk-size", type=int, default=8)
    parser.add_argument("--chunks-per-second", type=float, default=50.0)
    parser.add_argument("--delay-first", type=float, default=0.0)
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()

    reply = Reply(
        text=reply_text(args.chunks * args.chunk_size),
        chunk_size=args.chunk_size,
        delay_first=args.delay_first,
    )

    def respond(body: dict[str, Any]) -> Reply:
        return reply

    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    fake = FakeAnthropic(responder=respond, chunks_per_second=args.chunks_per_second or None, port=args.port)
    fake.start()
    print(fake.port, flush=True)
    while not stop.wait(0.5):
        # The fake records every request; a long run must not grow without bound.
        if len(fake.requests) > 2000:
            fake.requests.clear()
    fake.stop()


if __name__ == "__main__":
    main()
