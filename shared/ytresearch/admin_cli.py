"""`ytr-admin ...`: users and API keys, either against the configured database (a local run, or a
machine that can reach the database) or, with ``--deployed FUNCTION``, through a deployed stack's
admin Lambda function (``AdminFunctionName`` in the stack outputs), invoked with your AWS
credentials: the database of a deployment sits in isolated subnets.

An operator's tool, installed with the server (the `ytr` client does not carry it). Nothing of the
database is imported for ``--deployed`` (boto3 is imported when the call is made), and nothing of
boto3 for the direct path. Exit codes match `ytr`'s: 0 ok, 1 error, 2 usage, 3 auth, 4 not found,
6 unavailable.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Any

EXIT_ERROR = 1
EXIT_USAGE = 2
EXIT_AUTH = 3
EXIT_NOT_FOUND = 4
EXIT_UNAVAILABLE = 6


class AdminCommandError(Exception):
    """An expected failure: shown as one line, ``error: <message> (<CODE>)``, and an exit code."""

    def __init__(self, code: str, message: str, exit_code: int = EXIT_ERROR) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.exit_code = exit_code

    def line(self) -> str:
        return f"error: {self.message} ({self.code})"

    def as_json(self) -> dict[str, object]:
        return {"error": {"code": self.code, "message": self.message, "exit_code": self.exit_code}}


# The admin function's actions (ytresearch.services.admin.ACTIONS); the direct path adds migrate,
# backfill-windows and link-identity. Spelled out here so --deployed imports nothing of the server.
DEPLOYED_ACTIONS = ("create-user", "create-key", "list-keys", "revoke-key")


def build_parser() -> argparse.ArgumentParser:
    admin = argparse.ArgumentParser(
        prog="ytr-admin",
        description="Administer users and API keys. By default against the configured database "
        "(YTR_DATABASE_URL); with --deployed, through the admin Lambda function of a deployed "
        "stack (stack output AdminFunctionName), using your AWS credentials.",
    )
    admin.add_argument(
        "--deployed",
        metavar="FUNCTION",
        help="the admin function's name or ARN (needs AWS credentials allowed lambda:InvokeFunction)",
    )
    admin.add_argument("--json", action="store_true", help="print the result as one JSON document")
    cmds = admin.add_subparsers(dest="admin_command", required=True)
    p = cmds.add_parser("create-user", help="create a user and print their first API key")
    p.add_argument("email")
    p = cmds.add_parser("create-key", help="print a new API key for an existing user")
    p.add_argument("email")
    p = cmds.add_parser("list-keys", help="list a user's API keys (id, prefix, created, revoked)")
    p.add_argument("email")
    p = cmds.add_parser("revoke-key", help="revoke one of a user's API keys: it stops working at once")
    p.add_argument("email")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--key-id", metavar="ID", help="the key's id (from list-keys)")
    which.add_argument("--prefix", metavar="PREFIX", help="the key's first characters, e.g. ytr_AbC123")
    p = cmds.add_parser(
        "link-identity",
        help="let a sign-in identity (Cognito sub) act as an existing user, e.g. one with API keys",
    )
    p.add_argument("email")
    p.add_argument("subject", metavar="SUB", help="the sub claim of the user's access token")
    cmds.add_parser("migrate", help="apply database migrations")
    cmds.add_parser(
        "backfill-windows",
        help="build the transcript index for every ready video that lacks it (migrate builds "
        "what it can in two minutes)",
    )
    return admin


def main(argv: list[str] | None = None) -> int:
    return run(build_parser().parse_args(argv))


def run(args: argparse.Namespace) -> int:
    try:
        result = run_deployed(args) if args.deployed else run_direct(args)
    except AdminCommandError as exc:
        if args.json:
            print(json.dumps(exc.as_json()))
        else:
            print(exc.line(), file=sys.stderr)
        return exc.exit_code
    show(args, result)
    return 0


def event_for(args: argparse.Namespace) -> dict[str, Any]:
    event: dict[str, Any] = {"action": args.admin_command, "email": args.email}
    if args.admin_command == "revoke-key":
        if args.key_id:
            event["key_id"] = args.key_id
        else:
            event["prefix"] = args.prefix
    return event


def show(args: argparse.Namespace, result: dict[str, Any]) -> None:
    if args.json:
        print(json.dumps(result))
        return
    command = args.admin_command
    if command in ("create-user", "create-key"):
        if command == "create-user":
            print(f"created user {result['user']['email']} ({result['user']['id']})", file=sys.stderr)
        else:
            print(f"created a new key for {result['email']}", file=sys.stderr)
        print(result["api_key"])
        print("store it now: it is shown once and kept only as a hash", file=sys.stderr)
    elif command == "list-keys":
        keys = result["keys"]
        if not keys:
            print("no keys")
        for key in keys:
            state = f"revoked {key['revoked_at']}" if key["revoked_at"] else "active"
            print(f"{key['id']}  {key['prefix']}…  created {key['created_at']}  {state}")
    elif command == "revoke-key":
        key = result["revoked"]
        print(f"revoked {key['prefix']}… ({key['id']}) at {key['revoked_at']}")
    elif command == "link-identity":
        print(f"{result['subject']} now signs in as {result['user']['email']} ({result['user']['id']})")
        if result.get("moved_from"):
            print(f"(moved from {result['moved_from']}; that user's sessions stay with it)", file=sys.stderr)
    elif command == "migrate":
        print(f"database at revision {result['revision']}")
    elif command == "backfill-windows":
        print(f"indexed the transcripts of {result['videos_indexed']} videos")


# ---------------------------------------------------------------------- against the database


def run_direct(args: argparse.Namespace) -> dict[str, Any]:
    from ytresearch.bootstrap import Container
    from ytresearch.db.migrations import upgrade_to_head
    from ytresearch.errors import AppError
    from ytresearch.services.users import link_external_identity

    container = Container()
    try:
        if args.admin_command == "migrate":
            return {"revision": upgrade_to_head(container.settings)}
        if args.admin_command == "backfill-windows":
            from ytresearch.services.windows import backfill_windows

            upgrade_to_head(container.settings, backfill=False)  # all of it here, unhurried
            return {"videos_indexed": backfill_windows(container.store)}
        upgrade_to_head(container.settings)
        if args.admin_command == "link-identity":
            user, moved_from = link_external_identity(container.store, args.email, args.subject)
            return {
                "subject": args.subject,
                "user": {"id": str(user.id), "email": user.email},
                "moved_from": moved_from,
            }
        # The same code the admin function runs, so both paths answer alike.
        from ytresearch.services.admin import run_admin_action

        return run_admin_action(container.store, event_for(args), cache=container.key_cache)
    except AppError as exc:
        raise AdminCommandError(exc.code, exc.message, EXIT_ERROR) from None
    finally:
        container.engine.dispose()


# ---------------------------------------------------------------------- through the admin function


def _region_of(function: str) -> str | None:
    """The region named by a function ARN (arn:aws:lambda:<region>:<account>:function:<name>)."""
    parts = function.split(":")
    return parts[3] if function.startswith("arn:") and len(parts) >= 7 and parts[3] else None


def run_deployed(args: argparse.Namespace) -> dict[str, Any]:
    if args.admin_command not in DEPLOYED_ACTIONS:
        raise AdminCommandError(
            "USAGE",
            f"{args.admin_command} is not available with --deployed "
            f"(use one of {', '.join(DEPLOYED_ACTIONS)})",
            EXIT_USAGE,
        )
    answer = invoke(args.deployed, event_for(args))
    error = answer.get("error")
    if isinstance(error, dict):
        code = str(error.get("code") or "ADMIN_ERROR")
        exit_code = EXIT_NOT_FOUND if code.endswith("NOT_FOUND") else EXIT_ERROR
        if code == "DATABASE_UNAVAILABLE":
            exit_code = EXIT_UNAVAILABLE
        raise AdminCommandError(code, str(error.get("message") or "the admin function refused"), exit_code)
    return answer


def invoke(function: str, event: dict[str, Any]) -> dict[str, Any]:
    """Invoke the admin function synchronously (lambda:InvokeFunction) and return its answer."""
    import boto3
    from botocore.exceptions import (
        BotoCoreError,
        ClientError,
        EndpointConnectionError,
        NoCredentialsError,
        NoRegionError,
    )

    try:
        # The ARN's region, else AWS_REGION (as the AWS CLI reads it), else boto3's own chain.
        region = _region_of(function) or os.environ.get("AWS_REGION") or None
        client = boto3.client("lambda", region_name=region)
        response = client.invoke(
            FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(event).encode()
        )
        raw = response["Payload"].read()
    except NoRegionError:
        raise AdminCommandError(
            "MISSING_AWS_REGION",
            "no AWS region: give the function's ARN, or set AWS_REGION (or aws configure)",
            EXIT_USAGE,
        ) from None
    except NoCredentialsError:
        raise AdminCommandError(
            "MISSING_AWS_CREDENTIALS", "no AWS credentials found (aws configure / aws sso login)", EXIT_AUTH
        ) from None
    except EndpointConnectionError as exc:
        raise AdminCommandError(
            "AWS_UNREACHABLE", f"cannot reach AWS Lambda: {exc}", EXIT_UNAVAILABLE
        ) from None
    except ClientError as exc:
        info = exc.response.get("Error", {})
        kind, message = str(info.get("Code", "ClientError")), str(info.get("Message", exc))
        if kind == "ResourceNotFoundException":
            raise AdminCommandError(
                "FUNCTION_NOT_FOUND", f"{message} (see the stack output AdminFunctionName)", EXIT_NOT_FOUND
            ) from None
        if kind in ("AccessDeniedException", "UnrecognizedClientException", "ExpiredTokenException"):
            raise AdminCommandError("AWS_ACCESS_DENIED", message, EXIT_AUTH) from None
        raise AdminCommandError("LAMBDA_ERROR", f"{kind}: {message}", EXIT_UNAVAILABLE) from None
    except BotoCoreError as exc:
        raise AdminCommandError("LAMBDA_ERROR", str(exc), EXIT_UNAVAILABLE) from None
    try:
        answer = json.loads(raw or b"null")
    except ValueError:
        answer = None
    if response.get("FunctionError"):
        detail = answer.get("errorMessage") if isinstance(answer, dict) else None
        raise AdminCommandError(
            "FUNCTION_ERROR", f"the admin function failed: {detail or 'no detail'}", EXIT_UNAVAILABLE
        )
    if not isinstance(answer, dict):
        raise AdminCommandError(
            "FUNCTION_ERROR",
            "the admin function answered something other than a JSON object",
            EXIT_UNAVAILABLE,
        )
    return answer


if __name__ == "__main__":
    sys.exit(main())
