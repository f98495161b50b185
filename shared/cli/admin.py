"""`ytr admin ...`: create users and API keys against the configured database."""

from __future__ import annotations

import argparse
import sys

from ytresearch.bootstrap import Container
from ytresearch.db.migrations import upgrade_to_head
from ytresearch.errors import AppError
from ytresearch.services.users import create_api_key, create_user, link_external_identity


def add_parser(sub: argparse._SubParsersAction) -> None:
    admin = sub.add_parser("admin", help="administer users and keys (talks to the database)")
    cmds = admin.add_subparsers(dest="admin_command", required=True)
    p = cmds.add_parser("create-user", help="create a user and print their first API key")
    p.add_argument("email")
    p = cmds.add_parser("create-key", help="print a new API key for an existing user")
    p.add_argument("email")
    p = cmds.add_parser(
        "link-identity",
        help="let a sign-in identity (Cognito sub) act as an existing user, e.g. one with API keys",
    )
    p.add_argument("email")
    p.add_argument("subject", metavar="SUB", help="the sub claim of the user's access token")
    cmds.add_parser("migrate", help="apply database migrations")
    admin.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    container = Container()
    try:
        if args.admin_command == "migrate":
            print(f"database at revision {upgrade_to_head(container.settings)}")
            return 0
        upgrade_to_head(container.settings)
        if args.admin_command == "link-identity":
            user, moved_from = link_external_identity(container.store, args.email, args.subject)
            print(f"{args.subject} now signs in as {user.email} ({user.id})")
            if moved_from:
                print(f"(moved from {moved_from}; that user's sessions stay with it)", file=sys.stderr)
            return 0
        if args.admin_command == "create-user":
            user, key = create_user(container.store, args.email)
            print(f"created user {user.email} ({user.id})", file=sys.stderr)
        else:
            key = create_api_key(container.store, args.email)
            print(f"created a new key for {args.email}", file=sys.stderr)
        print(key)
        print("store it now: it is shown once and kept only as a hash", file=sys.stderr)
        return 0
    except AppError as exc:
        print(f"error: {exc.message} ({exc.code})", file=sys.stderr)
        return 1
