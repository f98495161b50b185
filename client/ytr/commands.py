"""The client commands of `ytr` (argparse), thin: resolve settings, call `ApiClient`, render.

httpx and websockets are imported only when a command runs, so `ytr --help` and `ytr-admin`
start fast.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from ytr.errors import (
    EXIT_CANCELLED,
    EXIT_ERROR,
    EXIT_OK,
    EXIT_USAGE,
    CliError,
)
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


def add_parsers(sub: argparse._SubParsersAction) -> None:
    configure = sub.add_parser(
        "configure",
        help="save the API URL, stream URL and API key in the config file",
        description="Save settings in ~/.config/ytr/config.toml (or $YTR_CONFIG), readable only by you. "
        "With no options, show the settings in effect and where they come from.",
    )
    add_global_options(configure, in_subcommand=True)
    configure.set_defaults(run=run_configure)

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
    login.set_defaults(run=run_login)
    logout = sub.add_parser("logout", help="forget the saved access and refresh tokens")
    add_global_options(logout, in_subcommand=True)
    logout.set_defaults(run=run_logout)

    sessions = _group(sub, "sessions", "research sessions")
    p = _leaf(sessions, "create", cmd_sessions_create, "create a session")
    p.add_argument("--title", help="the session's title")
    p = _leaf(sessions, "list", cmd_sessions_list, "list your sessions, newest first")
    p.add_argument("--limit", type=_limit, help="page size (1-100)")
    p.add_argument("--cursor", help="the next cursor of the previous page")
    p = _leaf(sessions, "show", cmd_sessions_show, "show a session and its videos")
    p.add_argument("session_id", metavar="SESSION_ID")
    p = _leaf(sessions, "delete", cmd_sessions_delete, "delete a session and its history")
    p.add_argument("session_id", metavar="SESSION_ID")

    videos = _group(sub, "videos", "videos in sessions")
    p = _leaf(videos, "add", cmd_videos_add, "add a YouTube video to a session and follow its ingest")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("url", metavar="URL", help="any YouTube URL form, or a bare video id")
    p.add_argument("--language", help="preferred transcript language (e.g. en)")
    p.add_argument("--no-follow", action="store_true", help="return once queued; do not wait for the summary")
    p = _leaf(videos, "list", cmd_videos_list, "list a session's videos")
    p.add_argument("session_id", metavar="SESSION_ID")
    p = _leaf(videos, "remove", cmd_videos_remove, "remove a video from a session")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("video_id", metavar="VIDEO_ID")
    p = _leaf(videos, "show", cmd_videos_show, "show a video's metadata and summary")
    p.add_argument("video_id", metavar="VIDEO_ID", help="a video id or any YouTube URL")
    p.add_argument("--transcript", action="store_true", help="also print the transcript")

    jobs = _group(sub, "jobs", "ingest jobs")
    p = _leaf(jobs, "show", cmd_jobs_show, "show an ingest job's status and stages")
    p.add_argument("job_id", metavar="JOB_ID")

    p = _leaf(sub, "chat", cmd_chat, "ask about a session's videos; the answer streams as it is written")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("question", nargs="?", metavar="QUESTION", help="your question ('-' reads it from stdin)")
    p.add_argument(
        "--transport",
        choices=("sse", "ws", "poll", "sync"),
        help="sse: POST then stream (default); ws: WebSocket; poll: POST then poll; sync: one REST call",
    )
    p.add_argument(
        "--video",
        dest="video_ids",
        action="append",
        metavar="VIDEO_ID",
        help="limit the answer to this video (repeatable; default: all the session's videos)",
    )
    p.add_argument(
        "-i",
        "--interactive",
        action="store_true",
        help="a conversation over one WebSocket (like `ytr shell`)",
    )

    p = _leaf(
        sub, "shell", cmd_shell, "an interactive chat over one WebSocket (Ctrl-C cancels, Ctrl-D exits)"
    )
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("--video", dest="video_ids", action="append", metavar="VIDEO_ID", help="limit answers")

    p = _leaf(sub, "history", cmd_history, "a session's messages (oldest first within a page)")
    p.add_argument("session_id", metavar="SESSION_ID")
    p.add_argument("--limit", type=_limit, help="page size (1-100)")
    p.add_argument("--cursor", help="the next cursor printed under the previous page (older messages)")
    p.add_argument("--all", action="store_true", help="every message of the session")


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


def run_configure(args: argparse.Namespace) -> int:
    from ytr.config import mask_key, normalise_url, resolve, write_config

    out = Output(json_mode=bool(getattr(args, "json", False)))
    try:
        updates = {}
        if args.api_url:
            updates["api_url"] = normalise_url(args.api_url, "the API URL")
        if args.stream_url:
            updates["stream_url"] = normalise_url(args.stream_url, "the stream URL")
        if args.api_key:
            updates["api_key"] = args.api_key.strip()
        settings = resolve()
        if updates:
            values = write_config(settings.config_path, updates)
            if out.json_mode:
                out.json(
                    {
                        "config_path": str(settings.config_path),
                        **values,
                        "api_key": mask_key(values.get("api_key")),
                    }
                )
            else:
                out.line(f"saved {', '.join(updates)} to {settings.config_path}")
            return EXIT_OK
        summary = {
            "config_path": str(settings.config_path),
            "api_url": settings.api_url,
            "stream_url": settings.stream_url,
            "api_key": mask_key(settings.api_key),
            "api_key_source": settings.api_key_source,
            "access_token": mask_key(settings.access_token),
            "token_source": settings.token_source,
        }
        if out.json_mode:
            out.json(summary)
        else:
            for key, value in summary.items():
                out.line(f"{key + ':':16}{value}")
        return EXIT_OK
    except CliError as exc:
        out.error(exc)
        return exc.exit_code
    except OSError as exc:
        out.error(CliError("CONFIG_WRITE_FAILED", f"cannot write the config file: {exc}", EXIT_ERROR))
        return EXIT_ERROR


# ---------------------------------------------------------------------- signing in


def _read_secret(prompt: str, *, from_stdin: bool, what: str) -> str:
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
    elif sys.stdin.isatty():
        import getpass

        value = getpass.getpass(prompt)
    else:
        raise CliError(
            "USAGE", f"no terminal to ask for the {what}: pipe it in with --{what}-stdin", EXIT_USAGE
        )
    if not value:
        raise CliError("USAGE", f"the {what} is empty", EXIT_USAGE)
    return value


def _read_new_password(*, from_stdin: bool, attempts: int = 3) -> str:
    """The new password: the next stdin line with --password-stdin, else typed twice, hidden."""
    if from_stdin:
        value = sys.stdin.readline().rstrip("\r\n")
        if not value:
            raise CliError(
                "USAGE",
                "Cognito asks for a new password: give it on the line after the temporary one",
                EXIT_USAGE,
            )
        return value
    if not sys.stdin.isatty():
        raise CliError(
            "USAGE",
            "Cognito asks for a new password and there is no terminal: pipe the temporary and "
            "the new password, one a line, with --password-stdin",
            EXIT_USAGE,
        )
    import getpass

    for _ in range(attempts):
        first = getpass.getpass("New password: ")
        if not first:
            print("the new password is empty", file=sys.stderr)
            continue
        if getpass.getpass("New password again: ") == first:
            return first
        print("the two passwords differ; try again", file=sys.stderr)
    raise CliError("USAGE", "no new password was confirmed; run `ytr login` again", EXIT_USAGE)


def run_login(args: argparse.Namespace) -> int:
    out = Output(json_mode=bool(getattr(args, "json", False)))
    try:
        return _login(args, out)
    except CliError as exc:
        out.error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        out.note("interrupted")
        return EXIT_CANCELLED
    except OSError as exc:
        out.error(CliError("CONFIG_WRITE_FAILED", f"cannot write the config file: {exc}", EXIT_ERROR))
        return EXIT_ERROR


def _login(args: argparse.Namespace, out: Output) -> int:
    from ytr.auth import TOKEN_KEYS, CognitoClient, Tokens, cognito_endpoint, token_claims
    from ytr.config import resolve, write_config

    settings = resolve(
        api_url=getattr(args, "api_url", None),
        stream_url=getattr(args, "stream_url", None),
        api_key=getattr(args, "api_key", None),
    )
    saved: dict[str, str] = {}
    if args.token is not None:
        token = (sys.stdin.readline() if args.token == "-" else args.token).strip()
        claims = token_claims(token)
        if claims.get("token_use") == "id":
            raise CliError("INVALID_TOKEN", "that is an ID token: give the access token", EXIT_USAGE)
        exp = claims.get("exp")
        tokens = Tokens(token, None, int(exp) if isinstance(exp, int | float) else None)
        who = str(claims.get("username") or claims.get("sub") or "the token's user")
    else:
        client_id = args.client_id or settings.cognito_client_id
        if not client_id:
            raise CliError(
                "MISSING_COGNITO_CLIENT",
                "give the app client id with --client-id (the stack output UserPoolClientId)",
                EXIT_USAGE,
            )
        region = args.region or settings.cognito_region
        endpoint = cognito_endpoint(region, args.cognito_endpoint or settings.cognito_endpoint)
        password = _read_secret("Password: ", from_stdin=args.password_stdin, what="password")

        def mfa_code() -> str:
            if args.mfa_code:
                return str(args.mfa_code).strip()
            if not sys.stdin.isatty():
                raise CliError("USAGE", "MFA is on for this user: give the code with --mfa-code", EXIT_USAGE)
            return input("MFA code: ").strip()

        def new_password() -> str:
            out.note("Cognito asks for a new password (the one you signed in with was temporary).")
            return _read_new_password(from_stdin=args.password_stdin)

        with CognitoClient(endpoint, client_id) as cognito:
            tokens = cognito.password_sign_in(args.username, password, mfa_code, new_password)
        who = args.username
        saved = {"cognito_client_id": client_id}
        if region:
            saved["cognito_region"] = region
        if args.cognito_endpoint:
            saved["cognito_endpoint"] = args.cognito_endpoint
    write_config(settings.config_path, {**saved, **tokens.as_config()}, remove=TOKEN_KEYS)
    overridden = [
        name for name in ("YTR_ACCESS_TOKEN", "YTR_API_KEY") if os.environ.get(name, "").strip()
    ] + (["--api-key"] if getattr(args, "api_key", None) else [])
    if out.json_mode:
        out.json(
            {
                "signed_in": who,
                "config_path": str(settings.config_path),
                "expires_at": tokens.expires_at,
                "refreshes": tokens.refresh_token is not None,
            }
        )
    else:
        when = ""
        if tokens.expires_at is not None:
            import time

            when = time.strftime(" until %Y-%m-%d %H:%M", time.localtime(tokens.expires_at))
        renew = "; it is renewed automatically" if tokens.refresh_token else "; run `ytr login` again then"
        out.line(f"signed in as {who}{when}{renew} (saved in {settings.config_path})")
    for name in overridden:
        out.note(f"note: {name} is set and takes precedence over the saved sign-in")
    return EXIT_OK


def run_logout(args: argparse.Namespace) -> int:
    from ytr.auth import TOKEN_KEYS
    from ytr.config import read_config, resolve, write_config

    out = Output(json_mode=bool(getattr(args, "json", False)))
    try:
        path = resolve().config_path
        had = any(key in read_config(path) for key in TOKEN_KEYS)
        if had:
            write_config(path, {}, remove=TOKEN_KEYS)
    except CliError as exc:
        out.error(exc)
        return exc.exit_code
    except OSError as exc:
        out.error(CliError("CONFIG_WRITE_FAILED", f"cannot write the config file: {exc}", EXIT_ERROR))
        return EXIT_ERROR
    return out.result(
        {"signed_out": had, "config_path": str(path)},
        "signed out: the saved tokens are gone" if had else "not signed in",
    )


# ---------------------------------------------------------------------- sessions


def cmd_sessions_create(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    session = client.create_session(args.title)
    return out.result(session, f"created session {session['id']} ({session['title']})")


def cmd_sessions_list(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.render import session_line, table

    page = client.list_sessions(args.limit, args.cursor)
    if out.json_mode:
        out.json(page)
        return EXIT_OK
    items = page.get("items") or []
    if not items:
        out.line(
            "no sessions"
            + (" on this page" if args.cursor else " yet: create one with `ytr sessions create`")
        )
    else:
        table(out, ("SESSION", "CREATED", "TITLE"), [session_line(s) for s in items])
    if page.get("has_more") and page.get("next_cursor"):
        out.line()
        out.line(f"more: ytr sessions list --cursor {page['next_cursor']}")
    return EXIT_OK


def cmd_sessions_show(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.render import render_session

    session = client.get_session(args.session_id)
    return out.result(session, lambda: render_session(out, session))


def cmd_sessions_delete(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    client.delete_session(args.session_id)
    return out.result({"deleted": args.session_id}, f"deleted session {args.session_id}")


# ---------------------------------------------------------------------- videos and jobs


def _video_id(text: str) -> str:
    """A bare id as is; the id inside a watch, short, Shorts, embed or live link. (Adding a video
    sends the URL itself: the server's parser is the authority on what it accepts.)"""
    text = text.strip()
    if _VIDEO_ID.fullmatch(text):
        return text
    found = _VIDEO_ID_IN_URL.search(text)
    if found is None:
        raise CliError("INVALID_VIDEO_URL", f"no YouTube video id in {text[:100]!r}", EXIT_USAGE)
    return found.group(1)


_VIDEO_ID = re.compile(r"[A-Za-z0-9_-]{11}")
_VIDEO_ID_IN_URL = re.compile(
    r"(?:[?&]v=|youtu\.be/|/(?:shorts|embed|live|v|e)/)([A-Za-z0-9_-]{11})(?![A-Za-z0-9_-])"
)


def cmd_videos_add(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.render import IngestProgress, render_video

    status, body = client.add_video(args.session_id, args.url, args.language)
    video, job_id = body.get("video") or {}, body.get("job_id")
    video_id = str(video.get("id"))
    if status == 200 or not job_id:
        full = client.get_video(video_id)
        return out.result(
            {"job_id": job_id, "job": body.get("job"), "video": full}, lambda: render_video(out, full)
        )
    if args.no_follow:
        return out.result(body, f"queued {video_id} (job {job_id}); follow with: ytr jobs show {job_id}")

    progress = IngestProgress(out, video_id, enabled=not out.json_mode)
    job: dict[str, Any] = body.get("job") or {}
    try:
        for event in client.events(f"/v1/jobs/{job_id}/events", terminal=("complete", "error")):
            data = event.json()
            if not isinstance(data, dict):
                continue
            job = data
            progress.update(data)
            if event.event == "error":
                progress.finish()
                code = str(data.get("code") or data.get("error_code") or "INGEST_FAILED")
                message = str(data.get("message") or data.get("error_message") or "the ingest failed")
                raise CliError(code, f"{video_id}: {message}", EXIT_ERROR)  # the ingest failed for good
            if event.event == "complete":
                break
    except KeyboardInterrupt:
        progress.finish()
        out.note(f"stopped following; the video keeps ingesting: ytr jobs show {job_id}")
        return EXIT_CANCELLED
    progress.finish()
    full = client.get_video(video_id)
    if out.json_mode:
        out.json({"job_id": job_id, "job": job, "video": full})
    else:
        out.line()
        render_video(out, full)
    return EXIT_OK


def cmd_videos_list(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.render import video_rows

    videos = client.list_videos(args.session_id)
    if out.json_mode:
        out.json(videos)
    elif not videos:
        out.line("no videos yet: add one with `ytr videos add SESSION_ID URL`")
    else:
        video_rows(out, videos)
    return EXIT_OK


def cmd_videos_remove(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    video_id = _video_id(args.video_id)
    client.remove_video(args.session_id, video_id)
    return out.result(
        {"removed": video_id, "session_id": args.session_id},
        f"removed {video_id} from session {args.session_id}",
    )


def cmd_videos_show(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.render import render_video

    video = client.get_video(_video_id(args.video_id), transcript=args.transcript)
    return out.result(video, lambda: render_video(out, video, transcript=args.transcript))


def cmd_jobs_show(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.render import render_job

    job = client.get_job(args.job_id)
    return out.result(job, lambda: render_job(out, job))


# ---------------------------------------------------------------------- chat and history


def cmd_chat(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    if args.interactive:
        if args.question:
            raise CliError(
                "USAGE", "--interactive reads questions from the prompt; drop the question", EXIT_USAGE
            )
        if args.transport not in (None, "ws"):
            raise CliError(
                "USAGE", "the interactive chat runs over the WebSocket (--transport ws)", EXIT_USAGE
            )
        return cmd_shell(args, client, out)
    question = args.question
    if question is None or question == "-":
        if question is None and sys.stdin.isatty():
            raise CliError(
                "USAGE", "give a question, '-' to read it from stdin, or --interactive", EXIT_USAGE
            )
        question = sys.stdin.read()
    if not question.strip():
        raise CliError("USAGE", "the question is empty", EXIT_USAGE)

    from ytr.chat import ReplyFollower, run_chat
    from ytr.render import StreamedText

    text = StreamedText(out, show=not out.json_mode)
    follower = ReplyFollower(args.transport or "sse", text, out)
    result = run_chat(args.transport or "sse", client, args.session_id, question, args.video_ids, follower)
    if out.json_mode:
        out.json(result.as_json())
        problem = result.error_line()
        if problem is not None:
            out.note(problem.line())
        return result.exit_code
    text.end_line()
    if result.status == "cancelled":
        out.line("[cancelled]")
    problem = result.error_line()
    if problem is not None:
        out.error(problem)
    return result.exit_code


def cmd_shell(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.chat import shell

    return shell(client, args.session_id, args.video_ids, out, sys.stdin)


def cmd_history(args: argparse.Namespace, client: ApiClient, out: Output) -> int:
    from ytr.render import render_messages

    if args.all:
        items: list[dict[str, Any]] = []
        cursor = args.cursor
        while True:
            page = client.list_messages(args.session_id, args.limit or 100, cursor)
            items.extend(page.get("items") or [])
            cursor = page.get("next_cursor")
            if not page.get("has_more") or not cursor:
                break
        page = {"items": items, "next_cursor": None, "has_more": False}
    else:
        page = client.list_messages(args.session_id, args.limit, args.cursor)
    if out.json_mode:
        out.json(page)  # the API's order: newest first
        return EXIT_OK
    items = page.get("items") or []
    if not items:
        out.line(
            "no messages"
            + (" on this page" if args.cursor else " yet: ask with `ytr chat SESSION_ID QUESTION`")
        )
    else:
        render_messages(out, list(reversed(items)))
    if page.get("has_more") and page.get("next_cursor"):
        out.line()
        out.line(f"older messages: ytr history {args.session_id} --cursor {page['next_cursor']}")
    return EXIT_OK
