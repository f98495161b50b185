"""`ytr configure`, `ytr login` and `ytr logout`: the settings and the sign-in saved in the config
file. They run without an `ApiClient` (signing in talks to Cognito, not the deployment)."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable

from ytr.errors import EXIT_CANCELLED, EXIT_ERROR, EXIT_OK, EXIT_USAGE, CliError
from ytr.render import Output


def _config_command(args: argparse.Namespace, body: Callable[[Output], int]) -> int:
    """Run a command that reads or writes the config file: its expected failures become one line
    (or one JSON error) and an exit code."""
    out = Output(json_mode=bool(getattr(args, "json", False)))
    try:
        return body(out)
    except CliError as exc:
        out.error(exc)
        return exc.exit_code
    except KeyboardInterrupt:
        out.note("interrupted")
        return EXIT_CANCELLED
    except OSError as exc:
        out.error(CliError("CONFIG_WRITE_FAILED", f"cannot write the config file: {exc}", EXIT_ERROR))
        return EXIT_ERROR


def run_configure(args: argparse.Namespace) -> int:
    return _config_command(args, lambda out: _configure(args, out))


def _configure(args: argparse.Namespace, out: Output) -> int:
    from ytr.config import mask_key, normalise_url, resolve, write_config

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
    return _config_command(args, lambda out: _login(args, out))


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
    return _config_command(args, lambda out: _logout(out))


def _logout(out: Output) -> int:
    from ytr.auth import TOKEN_KEYS
    from ytr.config import read_config, resolve, write_config

    path = resolve().config_path
    had = any(key in read_config(path) for key in TOKEN_KEYS)
    if had:
        write_config(path, {}, remove=TOKEN_KEYS)
    return out.result(
        {"signed_out": had, "config_path": str(path)},
        "signed out: the saved tokens are gone" if had else "not signed in",
    )
