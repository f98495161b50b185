"""The `ytr` commands' argparse wiring, and `client_command`, which runs a command with an
`ApiClient` and turns every failure into one error line and an exit code. The commands themselves:
`ytr.account` (configure, login, logout), `ytr.library` (sessions, videos, jobs, export) and
`ytr.conversation` (chat, shell, history), `ytr.actions` (actions, undo) and `ytr.artifacts`
(artifacts, artifact show|versions|delete).

httpx and websockets are imported only when a command runs, so `ytr --help` and `ytr-admin`
start fast.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ytr import account, actions, artifacts, conversation, library
from ytr.errors import EXIT_CANCELLED, EXIT_ERROR, EXIT_OK, CliError
from ytr.render import Output

if TYPE_CHECKING:
    from ytr.client import ApiClient

Handler = Callable[[argparse.Namespace, "ApiClient", Output], int]


# ---------------------------------------------------------------------- options


def add_global_options(parser: argparse.ArgumentParser, *, in_subcommand: bool = False) -> None:
    """--api-url, --stream-url, --api-key and --json: accepted before or after the command."""
    default: Any = argparse.SUPPRESS if in_subcommand else None
    group = parser.add_argument_group("connection and output")
    group.add_argument(
        "--api-url",
        default=default,
        metavar="URL",
        help=f"REST API base URL (env YTR_API_URL; default {_d()})",
    )
    group.add_argument(
        "--stream-url",
        default=default,
        metavar="URL",
        help=f"streaming service base URL (env YTR_STREAM_URL; default {_d()})",
    )
    group.add_argument("--api-key", default=default, metavar="KEY", help="API key (env YTR_API_KEY)")
    group.add_argument(
        "--json",
        action="store_true",
        default=argparse.SUPPRESS if in_subcommand else False,
        help="print one JSON document (for scripts)",
    )


def _d() -> str:
    from ytr.config import DEFAULT_URL

    return DEFAULT_URL


def _leaf(
    sub: argparse._SubParsersAction, name: str, handler: Handler, help_text: str, **kwargs: Any
) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help_text, description=help_text, **kwargs)
    add_global_options(parser, in_subcommand=True)
    parser.set_defaults(run=client_command(handler))
    return parser


def _group(sub: argparse._SubParsersAction, name: str, help_text: str) -> argparse._SubParsersAction:
    parser = sub.add_parser(name, help=help_text, description=help_text)
    return parser.add_subparsers(dest=f"{name}_command", required=True, metavar="COMMAND")


def _limit(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if not 1 <= number <= 100:
        raise argparse.ArgumentTypeError("must be between 1 and 100")
    return number


def _version(value: str) -> int:
    try:
        number = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {value!r}") from None
    if number < 1:
        raise argparse.ArgumentTypeError("versions start at 1")
    return number


def add_parsers(sub: argparse._SubParsersAction) -> None:
    configure = sub.add_parser(
        "configure",
        help="save the API URL, stream URL and API key in the config file",
        description="Save settings in ~/.config/ytr/config.toml (or $YTR_CONFIG), readable only by you. "
        "With no options, show the settings in effect and where they come from.",
    )
    add_global_options(configure, in_subcommand=True)
    configure.set_defaults(run=account.run_configure)

    login = sub.add_parser(
        "login",
        help="sign in with your Cognito user (or save an access token) instead of an API key",
        description="Sign in against the deployment's Cognito user pool (USER_PASSWORD_AUTH): the "
        "access and refresh tokens are saved in the config file (readable only by you) and sent as "
        "'Authorization: Bearer' from then on; the access token is renewed automatically. "
        "The password is asked for without echo, or read from stdin with --password-stdin; "
        "it is never saved. A user an admin created (temporary password) chooses a new password "
        "on the first sign-in: asked for twice without echo, or the next stdin line.",
    )
    add_global_options(login, in_subcommand=True)
    who = login.add_mutually_exclusive_group(required=True)
    who.add_argument("--username", "-u", metavar="USER", help="your user name (your email address)")
    who.add_argument(
        "--token", metavar="TOKEN", help="save this access token as is ('-' reads it from stdin); no refresh"
    )
    login.add_argument("--password-stdin", action="store_true", help="read the password from stdin")
    login.add_argument("--mfa-code", metavar="CODE", help="the authenticator app code, if MFA is on")
    login.add_argument(
        "--client-id",
        metavar="ID",
        help="the app client id (stack output UserPoolClientId; env YTR_COGNITO_CLIENT_ID)",
    )
    login.add_argument("--region", metavar="REGION", help="the user pool's region (env YTR_COGNITO_REGION)")
    login.add_argument(
        "--cognito-endpoint",
        metavar="URL",
        help="the user pool API endpoint (default https://cognito-idp.REGION.amazonaws.com/; "
        "env YTR_COGNITO_ENDPOINT)",
    )
    login.set_defaults(run=account.run_login)
    logout = sub.add_parser("logout", help="forget the saved access and refresh tokens")
    add_global_options(logout, in_subcommand=True)
    logout.set_defaults(run=account.run_logout)

    sessions = _group(sub, "sessions", "research sessions")
    p = _leaf(sessions, "create", library.cmd_sessions_create, "create a session")
    p.add_argument("--title", help="the session's title")
    p = _leaf(sessions, "list", library.cmd_sessions_list, "list your sessions, newest first")
    p.add_argument("--limit", type=_limit, help="page size (1-100)")
    p.add_argument("--cursor", help="the next cursor of the previous page")
    p = _leaf(sessions, "show", library.cmd_sessions_show, "show a session and its videos")
    p.add_argument("session_id", metavar="SESSION_ID")
    p = _leaf(sessions, "delete", library.cmd_sessions_delete, "delete a session and its history")
    p.add_argument("session_id", metavar="SESSION_ID")

    videos = _group(sub, "videos", "videos in sessions")
    p = _leaf(videos, "add", library.cmd_videos_add, "add a YouTube video to a session and follow its ingest")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("url", metavar="URL", help="any YouTube URL form, or a bare video id")
    p.add_argument("--language", help="preferred transcript language (e.g. en)")
    p.add_argument("--no-follow", action="store_true", help="return once queued; do not wait for the summary")
    p = _leaf(videos, "list", library.cmd_videos_list, "list a session's videos")
    p.add_argument("session_id", metavar="SESSION_ID")
    p = _leaf(videos, "remove", library.cmd_videos_remove, "remove a video from a session")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("video_id", metavar="VIDEO_ID")
    p = _leaf(videos, "show", library.cmd_videos_show, "show a video's metadata and summary")
    p.add_argument("video_id", metavar="VIDEO_ID", help="a video id or any YouTube URL")
    p.add_argument("--transcript", action="store_true", help="also print the transcript")

    jobs = _group(sub, "jobs", "ingest jobs")
    p = _leaf(jobs, "show", library.cmd_jobs_show, "show an ingest job's status and stages")
    p.add_argument("job_id", metavar="JOB_ID")

    p = _leaf(
        sub,
        "export",
        library.cmd_export,
        "save a session (its videos and summaries, the whole conversation with its sources) as Markdown",
    )
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument(
        "-o",
        "--output",
        metavar="FILE",
        help="a file, a folder, or '-' for stdout (default: the server's name for it, the title's "
        "slug with .md, in the current folder)",
    )
    p.add_argument("--force", action="store_true", help="overwrite the file if it exists")

    p = _leaf(
        sub,
        "chat",
        conversation.cmd_chat,
        "ask about a session's videos; the answer streams as it is written",
    )
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("question", nargs="?", metavar="QUESTION", help="your question ('-' reads it from stdin)")
    p.add_argument(
        "--transport",
        choices=("sse", "ws", "poll", "sync"),
        help="sse: POST then stream (default); ws: WebSocket; poll: POST then poll (text only: "
        "no tool calls shown, approvals cannot be answered); sync: one REST call",
    )
    p.add_argument(
        "--video",
        dest="video_ids",
        action="append",
        metavar="VIDEO_ID",
        help="limit the answer to this video (repeatable; default: all the session's videos)",
    )
    p.add_argument(
        "--tools",
        choices=("auto", "confirm", "off"),
        help="what the research agent may do in this reply: auto (act), confirm (ask before "
        "changing the session), off (answer only); default: the session's setting",
    )
    p.add_argument(
        "--yes",
        action="store_true",
        help="allow every tool call that asks for approval (otherwise asked on a terminal, denied elsewhere)",
    )
    p.add_argument(
        "-i",
        "--interactive",
        action="store_true",
        help="a conversation over one WebSocket (like `ytr shell`)",
    )
    p.add_argument(
        "--timings",
        action="store_true",
        help="after the reply, print its time to first text, total time and tokens/s on stderr "
        "(and add them to --json as `timings`)",
    )

    p = _leaf(
        sub,
        "shell",
        conversation.cmd_shell,
        "an interactive chat over one WebSocket (Ctrl-C cancels, Ctrl-D exits)",
    )
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("--video", dest="video_ids", action="append", metavar="VIDEO_ID", help="limit answers")
    p.add_argument(
        "--tools",
        choices=("auto", "confirm", "off"),
        help="what the research agent may do: auto, confirm (ask first) or off; default: the session's",
    )
    p.add_argument("--yes", action="store_true", help="allow every tool call that asks for approval")

    p = _leaf(sub, "history", conversation.cmd_history, "a session's messages (oldest first within a page)")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("--limit", type=_limit, help="page size (1-100)")
    p.add_argument("--cursor", help="the next cursor printed under the previous page (older messages)")
    p.add_argument("--all", action="store_true", help="every message of the session")

    p = _leaf(sub, "actions", actions.cmd_actions, "what the research agent did in a session, newest first")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("--limit", type=_limit, help="page size (1-100)")
    p.add_argument("--cursor", help="the cursor printed under the previous page (older actions)")

    p = _leaf(sub, "undo", actions.cmd_undo, "undo one of the research agent's actions")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("action_id", metavar="ACTION_ID", help="an id from `ytr actions SESSION_ID`")

    p = _leaf(
        sub,
        "artifacts",
        artifacts.cmd_artifacts,
        "the documents the research agent wrote in a session (tables, outlines, notes), latest first",
    )
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("--limit", type=_limit, help="page size (1-100)")
    p.add_argument("--cursor", help="the cursor printed under the previous page")

    artifact = _group(sub, "artifact", "one of a session's artifacts: show, versions, delete")
    p = _leaf(
        artifact,
        "show",
        artifacts.cmd_artifact_show,
        "print an artifact's Markdown (its latest version unless --version), without terminal escapes",
    )
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("artifact_id", metavar="ARTIFACT_ID", help="an id from `ytr artifacts SESSION_ID`")
    p.add_argument("--version", type=_version, metavar="N", help="an earlier version (see `versions`)")
    p.add_argument(
        "-o",
        "--output",
        "--out",
        dest="output",
        metavar="FILE",
        help="write it to a file (or into a folder, named after its title) instead; '-' for stdout",
    )
    p.add_argument("--force", action="store_true", help="overwrite the file if it exists")
    p = _leaf(artifact, "versions", artifacts.cmd_artifact_versions, "an artifact's versions, newest first")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("artifact_id", metavar="ARTIFACT_ID")
    p = _leaf(artifact, "delete", artifacts.cmd_artifact_delete, "delete an artifact with every version")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("artifact_id", metavar="ARTIFACT_ID")


# ---------------------------------------------------------------------- running


def _settings(args: argparse.Namespace) -> Any:
    from ytr.config import resolve

    return resolve(
        api_url=getattr(args, "api_url", None),
        stream_url=getattr(args, "stream_url", None),
        api_key=getattr(args, "api_key", None),
    )


def client_command(handler: Handler) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        out = Output(json_mode=bool(getattr(args, "json", False)))
        try:
            from ytr.auth import fresh_settings

            settings = fresh_settings(_settings(args))
            from ytr.client import ApiClient

            with ApiClient(
                settings.api_url, settings.stream_url, settings.api_key, access_token=settings.access_token
            ) as client:
                return handler(args, client, out)
        except CliError as exc:
            out.error(exc)
            return exc.exit_code
        except KeyboardInterrupt:
            out.note("interrupted")
            return EXIT_CANCELLED
        except BrokenPipeError:
            # The reader went away (e.g. `| head`): stop quietly.
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
            return EXIT_OK
        except Exception as exc:
            if os.environ.get("YTR_DEBUG"):
                raise
            out.error(
                CliError("INTERNAL_ERROR", f"unexpected failure: {type(exc).__name__}: {exc}", EXIT_ERROR)
            )
            return EXIT_ERROR

    return run
