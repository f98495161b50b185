"""`ytr`: the command-line entry point.

Client commands (sessions, videos, jobs, chat, shell, history, configure) talk to a deployment
over HTTP; `ytr admin` talks to the database. The admin module (SQLAlchemy, the domain) is
imported only when `admin` is on the command line, so the client starts fast.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from ytresearch.cli import commands

ADMIN_HELP = "administer users and keys (talks to the database)"


def build_parser(*, with_admin: bool = True) -> argparse.ArgumentParser:
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
    if with_admin:
        from ytresearch.cli import admin

        admin.add_parser(sub)
    else:
        # Listed in --help; the real parser is built when `admin` is on the command line.
        sub.add_parser("admin", help=ADMIN_HELP, add_help=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(with_admin="admin" in argv).parse_args(argv)
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
