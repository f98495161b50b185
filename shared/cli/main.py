"""`ytr`: the command-line entry point."""

from __future__ import annotations

import argparse
import sys

from ytresearch.cli import admin


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ytr", description="YouTube Research Tool")
    sub = parser.add_subparsers(dest="command", required=True)
    admin.add_parser(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    code: int = args.run(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
