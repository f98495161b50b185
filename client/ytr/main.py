"""`ytr`: the command-line entry point.

Every command (sessions, videos, jobs, chat, shell, history, configure, login) talks to a
deployment over HTTP. Administering users and keys is the operator's `ytr-admin`, installed with
the server.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from ytr import commands
from ytr.errors import EXIT_USAGE

ADMIN_MOVED = (
    "administering users and keys is `ytr-admin`, installed with the server "
    "(`make run` puts it in the repository's .venv/bin)"
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ytr",
        description="YouTube Research Tool: research sessions over YouTube videos, with Claude.",
        epilog="Settings: flags, then YTR_API_URL / YTR_STREAM_URL / YTR_API_KEY (or YTR_ACCESS_TOKEN), "
        "then the config file (`ytr configure`, `ytr login`), then, for the local default address, the "
        "key `make run` saved in .ytr/dev_api_key. Exit codes: 0 ok, 1 error, 2 usage, 3 auth, "
        "4 not found, 5 rate limited, 6 server unavailable, 130 cancelled.",
    )
    commands.add_global_options(parser)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    commands.add_parsers(sub)
    # Kept as a signpost for people used to `ytr-admin`.
    moved = sub.add_parser("admin", help="moved: see ytr-admin", add_help=False)
    moved.add_argument("rest", nargs=argparse.REMAINDER)
    moved.set_defaults(run=_admin_moved)
    return parser


def _admin_moved(args: argparse.Namespace) -> int:
    print(f"error: {ADMIN_MOVED} (USAGE)", file=sys.stderr)
    return EXIT_USAGE


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    _tolerant_output()
    code: int = args.run(args)
    return code


def _tolerant_output() -> None:
    # An answer with characters the terminal's encoding lacks must not crash the command.
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            with contextlib.suppress(ValueError, OSError):
                reconfigure(errors="replace")


if __name__ == "__main__":
    sys.exit(main())
