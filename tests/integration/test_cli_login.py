"""`ytr login` / `ytr logout` as a user runs them (a real subprocess): sign-in against a local
fake of Cognito's InitiateAuth endpoint, tokens kept in a private config file and sent as
``Authorization: Bearer`` to the real app on loopback, refreshed when they are about to expire."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from local_run.app import create_local_app
from tests.fakes.cognito import CLIENT_ID, FakeCognito
from tests.support.cli import YTR
from tests.support.queue import RecordingQueue
from tests.support.server import serve
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytr.config import read_config
from ytresearch.bootstrap import Container

PASSWORD = "Correct-Horse-9-Battery"


@pytest.fixture(scope="module")
def cognito() -> Iterator[FakeCognito]:
    with FakeCognito() as fake:
        yield fake


@dataclass
class Cli:
    base_url: str
    container: Container
    cognito: FakeCognito
    workdir: Path

    @property
    def config(self) -> Path:
        return self.workdir / "cfg" / "config.toml"

    def ytr(self, *args: str, stdin: str | None = None, **env: str) -> subprocess.CompletedProcess[str]:
        base = {k: v for k, v in os.environ.items() if not k.startswith("YTR_")}
        base.update(
            {
                "YTR_API_URL": self.base_url,
                "YTR_STREAM_URL": self.base_url,
                "YTR_CONFIG": str(self.config),  # never the developer's own
            }
        )
        base.update(env)
        return subprocess.run(
            [YTR, *args],
            input=stdin if stdin is not None else "",
            capture_output=True,
            text=True,
            env=base,
            cwd=self.workdir,
            timeout=120,
        )

    def login(self, username: str, *extra: str, password: str = PASSWORD) -> subprocess.CompletedProcess[str]:
        return self.ytr(
            "login",
            "--username",
            username,
            "--password-stdin",
            "--client-id",
            CLIENT_ID,
            "--cognito-endpoint",
            self.cognito.endpoint + "/",
            *extra,
            stdin=password + "\n",
        )

    def owner_of_sessions(self) -> set[str | None]:
        """The external ids of the users who own sessions."""
        from ytresearch.db.models import ResearchSession, User

        with self.container.store.transaction() as repo:
            rows = repo.session.query(User.external_id).join(
                ResearchSession, ResearchSession.user_id == User.id
            )
            return {row[0] for row in rows}


@pytest.fixture
def cli(database_url: str, cognito: FakeCognito, tmp_path: Path) -> Iterator[Cli]:
    settings = test_settings(
        database_url,
        cognito_issuer=cognito.issuer,
        cognito_client_id=CLIENT_ID,
        offline_token_delay_seconds=0,
    )
    container = Container(settings, queue=RecordingQueue())
    cognito.access_ttl = 3600
    cognito.requests.clear()
    try:
        with serve(create_local_app(container)) as server:
            yield Cli(server.base_url, container, cognito, tmp_path)
    finally:
        container.engine.dispose()


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    return lines[0]


def new_user(cognito: FakeCognito, **kw: Any) -> tuple[str, str]:
    username = f"user-{uuid.uuid4().hex[:8]}@example.com"
    return username, cognito.add_user(username, PASSWORD, **kw).sub


# ---------------------------------------------------------------------- password sign-in


def test_login_signs_in_with_initiate_auth_and_commands_use_the_token(cli: Cli) -> None:
    username, sub = new_user(cli.cognito)

    result = cli.login(username)

    assert result.returncode == 0, result.stderr
    assert f"signed in as {username}" in result.stdout
    (call,) = cli.cognito.requests
    assert call["target"] == "AWSCognitoIdentityProviderService.InitiateAuth"
    assert call["content_type"] == "application/x-amz-json-1.1"
    assert call["body"] == {
        "ClientId": CLIENT_ID,
        "AuthFlow": "USER_PASSWORD_AUTH",
        "AuthParameters": {"USERNAME": username, "PASSWORD": PASSWORD},
    }
    # The tokens are saved privately; the password is not
    assert stat.S_IMODE(cli.config.stat().st_mode) == 0o600
    saved = read_config(cli.config)
    assert saved["access_token"].count(".") == 2 and saved["refresh_token"].startswith("refresh-")
    assert saved["cognito_client_id"] == CLIENT_ID
    assert PASSWORD not in cli.config.read_text()
    # And the next command is authenticated by the token (no API key anywhere)
    created = cli.ytr("--json", "sessions", "create", "--title", "signed in")
    assert created.returncode == 0, created.stderr
    assert cli.owner_of_sessions() == {sub}


def test_a_wrong_password_is_exit_3_and_saves_nothing(cli: Cli) -> None:
    username, _ = new_user(cli.cognito)

    result = cli.login(username, password="wrong-password")

    assert result.returncode == 3
    assert one_line_error(result) == "error: Incorrect username or password. (LOGIN_FAILED)"
    assert not cli.config.exists()


def test_mfa_users_give_their_code(cli: Cli) -> None:
    username, sub = new_user(cli.cognito, mfa_code="123456")

    wrong = cli.login(username, "--mfa-code", "000000")
    right = cli.login(username, "--mfa-code", "123456")

    assert wrong.returncode == 3 and "LOGIN_FAILED" in one_line_error(wrong)
    assert right.returncode == 0, right.stderr
    assert [r["target"].rsplit(".", 1)[1] for r in cli.cognito.requests] == [
        "InitiateAuth",
        "RespondToAuthChallenge",
        "InitiateAuth",
        "RespondToAuthChallenge",
    ]
    assert cli.cognito.requests[-1]["body"]["ChallengeResponses"] == {
        "USERNAME": username,
        "SOFTWARE_TOKEN_MFA_CODE": "123456",
    }
    assert cli.ytr("sessions", "create").returncode == 0
    assert cli.owner_of_sessions() == {sub}


def test_login_without_a_client_id_is_a_usage_error(cli: Cli) -> None:
    result = cli.ytr("login", "--username", "x@example.com", "--password-stdin", stdin="pw\n")

    assert result.returncode == 2 and "--client-id" in one_line_error(result)


def test_login_without_a_terminal_needs_password_stdin(cli: Cli) -> None:
    result = cli.ytr("login", "-u", "x@example.com", "--client-id", CLIENT_ID, "--region", "us-east-1")

    assert result.returncode == 2 and "--password-stdin" in one_line_error(result)
    assert cli.cognito.requests == []


# ---------------------------------------------------------------------- refresh


def test_an_expiring_token_is_refreshed_and_saved(cli: Cli) -> None:
    # Given a sign-in whose access token lives 30 s (inside the 60 s refresh margin)
    cli.cognito.access_ttl = 30
    username, sub = new_user(cli.cognito)
    assert cli.login(username).returncode == 0
    first = read_config(cli.config)

    # When a command runs
    result = cli.ytr("sessions", "create")

    # Then the token was renewed with REFRESH_TOKEN_AUTH first, saved, and used
    assert result.returncode == 0, result.stderr
    refresh = cli.cognito.requests[-1]
    assert refresh["body"]["AuthFlow"] == "REFRESH_TOKEN_AUTH"
    assert refresh["body"]["AuthParameters"] == {"REFRESH_TOKEN": first["refresh_token"]}
    second = read_config(cli.config)
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] == first["refresh_token"]  # kept: Cognito sent none
    assert cli.owner_of_sessions() == {sub}


def test_a_fresh_token_is_not_refreshed(cli: Cli) -> None:
    username, _ = new_user(cli.cognito)
    assert cli.login(username).returncode == 0

    assert cli.ytr("sessions", "list").returncode == 0
    assert len(cli.cognito.requests) == 1  # the sign-in only


def test_a_revoked_refresh_token_asks_to_sign_in_again(cli: Cli) -> None:
    cli.cognito.access_ttl = 30
    username, _ = new_user(cli.cognito)
    assert cli.login(username).returncode == 0
    cli.cognito.refresh_tokens.clear()  # revoked (or expired) on the pool's side

    result = cli.ytr("sessions", "list")

    assert result.returncode == 3
    assert "run `ytr login` again (SESSION_EXPIRED)" in one_line_error(result)


# ---------------------------------------------------------------------- --token, logout, precedence


def test_login_with_a_token_saves_it_as_is(cli: Cli) -> None:
    sub = str(uuid.uuid4())
    token = cli.cognito.token(sub=sub)

    result = cli.ytr("login", "--token", token)

    assert result.returncode == 0, result.stderr
    assert "run `ytr login` again then" in result.stdout  # no refresh token
    assert read_config(cli.config)["access_token"] == token
    assert cli.ytr("sessions", "create").returncode == 0
    assert cli.owner_of_sessions() == {sub}
    assert cli.cognito.requests == []  # nothing was asked of Cognito


def test_login_with_a_token_from_stdin(cli: Cli) -> None:
    token = cli.cognito.token()

    assert cli.ytr("login", "--token", "-", stdin=token + "\n").returncode == 0
    assert read_config(cli.config)["access_token"] == token


@pytest.mark.parametrize("kind", ["id token", "not a jwt"])
def test_login_refuses_what_is_not_an_access_token(cli: Cli, kind: str) -> None:
    token = cli.cognito.token(token_use="id") if kind == "id token" else "ytr_an-api-key"

    result = cli.ytr("login", "--token", token)

    assert result.returncode == 2 and "INVALID_TOKEN" in one_line_error(result)
    assert not cli.config.exists()


def test_an_expired_saved_token_without_refresh_asks_to_sign_in_again(cli: Cli) -> None:
    expired = cli.cognito.token(exp=int(time.time()) - 10)
    assert cli.ytr("login", "--token", expired).returncode == 0

    result = cli.ytr("sessions", "list")

    assert result.returncode == 3 and "(TOKEN_EXPIRED)" in one_line_error(result)


def test_a_token_the_server_refuses_is_exit_3(cli: Cli) -> None:
    assert cli.ytr("login", "--token", cli.cognito.token(client_id="another-client")).returncode == 0

    result = cli.ytr("sessions", "list")

    assert result.returncode == 3
    assert one_line_error(result) == (
        "error: access token is not valid: the token was issued to another app client (INVALID_TOKEN)"
    )


def test_logout_forgets_the_tokens_but_keeps_the_rest(cli: Cli) -> None:
    username, _ = new_user(cli.cognito)
    assert cli.login(username).returncode == 0

    result = cli.ytr("logout")

    assert result.returncode == 0 and "signed out" in result.stdout
    saved = read_config(cli.config)
    assert "access_token" not in saved and "refresh_token" not in saved
    assert saved["cognito_client_id"] == CLIENT_ID  # the next `ytr login` needs no --client-id
    after = cli.ytr("sessions", "list")
    assert after.returncode == 3 and "no API key and not signed in" in one_line_error(after)
    assert cli.ytr("logout").stdout.strip() == "not signed in"


def test_an_api_key_in_the_environment_beats_the_saved_token(cli: Cli) -> None:
    _, sub = new_user(cli.cognito)
    _, key = make_user(cli.container)
    with_key = cli.ytr("login", "--token", cli.cognito.token(sub=sub), YTR_API_KEY=key)
    assert with_key.returncode == 0 and "YTR_API_KEY is set and takes precedence" in with_key.stderr

    assert cli.ytr("sessions", "create", YTR_API_KEY=key).returncode == 0  # as the key's user
    assert cli.ytr("sessions", "create").returncode == 0  # as the signed-in user

    assert cli.owner_of_sessions() == {None, sub}


def test_configure_shows_where_the_token_comes_from(cli: Cli) -> None:
    assert cli.ytr("login", "--token", cli.cognito.token()).returncode == 0

    shown = json.loads(cli.ytr("configure", "--json").stdout)

    assert shown["token_source"] == str(cli.config) and shown["access_token"].count("…") == 1


# ---------------------------------------------------------------------- chat over every transport


@pytest.mark.parametrize("transport", ["sse", "ws", "poll", "sync"])
def test_chat_works_signed_in_on_every_transport(cli: Cli, transport: str) -> None:
    username, _ = new_user(cli.cognito)
    assert cli.login(username).returncode == 0
    sid = json.loads(cli.ytr("--json", "sessions", "create").stdout)["id"]

    result = cli.ytr("--json", "chat", sid, "What is this about?", "--transport", transport)

    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "complete"


# ---------------------------------------------------------------------- first sign-in: new password

NEW_PASSWORD = "Brand-New-Passw0rd-42"


def test_first_sign_in_sets_the_new_password_cognito_asks_for(cli: Cli) -> None:
    # Given a user an admin created (admin-create-user): a temporary password, FORCE_CHANGE_PASSWORD
    username, sub = new_user(cli.cognito, temporary_password=True)

    # When they sign in, piping the temporary and the new password
    result = cli.login(username, password=f"{PASSWORD}\n{NEW_PASSWORD}")

    # Then the challenge is answered with RespondToAuthChallenge and they are signed in
    assert result.returncode == 0, result.stderr
    assert "asks for a new password" in result.stderr
    _, respond = cli.cognito.requests
    assert respond["target"] == "AWSCognitoIdentityProviderService.RespondToAuthChallenge"
    assert respond["body"]["ChallengeName"] == "NEW_PASSWORD_REQUIRED"
    assert respond["body"]["Session"]
    # USERNAME is the user's Cognito user name from the challenge (USER_ID_FOR_SRP), not the email
    assert respond["body"]["ChallengeResponses"] == {"USERNAME": sub, "NEW_PASSWORD": NEW_PASSWORD}
    assert NEW_PASSWORD not in cli.config.read_text()
    assert cli.ytr("sessions", "create").returncode == 0
    assert cli.owner_of_sessions() == {sub}
    # And the new password is the password from now on, with no challenge
    cli.cognito.requests.clear()
    assert cli.login(username, password=NEW_PASSWORD).returncode == 0
    assert [r["target"].rsplit(".", 1)[1] for r in cli.cognito.requests] == ["InitiateAuth"]


def test_a_new_password_below_the_policy_is_refused_and_nothing_is_saved(cli: Cli) -> None:
    username, _ = new_user(cli.cognito, temporary_password=True)

    result = cli.login(username, password=f"{PASSWORD}\nshort")

    assert result.returncode == 2
    line = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert line == [
        "error: Password does not conform to policy: Password not long enough; run `ytr login` "
        "again with the temporary password (INVALID_NEW_PASSWORD)"
    ]
    assert not cli.config.exists()
    assert cli.cognito.users[username].temporary_password  # still the temporary one


def test_a_piped_sign_in_without_the_new_password_line_says_what_to_pipe(cli: Cli) -> None:
    username, _ = new_user(cli.cognito, temporary_password=True)

    result = cli.login(username)

    assert result.returncode == 2 and "on the line after the temporary one" in result.stderr
    assert not cli.config.exists()


def test_new_password_then_mfa(cli: Cli) -> None:
    username, _ = new_user(cli.cognito, temporary_password=True, mfa_code="654321")

    result = cli.login(username, "--mfa-code", "654321", password=f"{PASSWORD}\n{NEW_PASSWORD}")

    assert result.returncode == 0, result.stderr
    challenges = [r["body"].get("ChallengeName") for r in cli.cognito.requests]
    assert challenges == [None, "NEW_PASSWORD_REQUIRED", "SOFTWARE_TOKEN_MFA"]


def run_in_terminal(cli: Cli, args: list[str], answers: list[tuple[str, str]]) -> tuple[int, str]:
    """Run `ytr` with a pseudo-terminal as stdin/stdout/stderr, typing each answer after its
    prompt appears; returns the exit code and everything the terminal showed."""
    import pty
    import select

    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if not k.startswith("YTR_")}
    env.update({"YTR_API_URL": cli.base_url, "YTR_CONFIG": str(cli.config), "TERM": "dumb"})
    process = subprocess.Popen(
        [YTR, *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=env,
        cwd=cli.workdir,
        start_new_session=True,
    )
    os.close(slave)
    shown = b""

    def read_until(text: str | None) -> None:
        nonlocal shown
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and (text is None or text.encode() not in shown):
            ready, _, _ = select.select([master], [], [], 0.5)
            if ready:
                try:
                    chunk = os.read(master, 4096)
                except OSError:  # the child closed the terminal
                    return
                if not chunk:
                    return
                shown += chunk
            elif text is None and process.poll() is not None:
                return

    try:
        for prompt, answer in answers:
            read_until(prompt)
            assert prompt.encode() in shown, shown.decode(errors="replace")
            shown = shown.replace(prompt.encode(), b"<" + prompt.strip().encode() + b">", 1)
            os.write(master, answer.encode() + b"\n")
        read_until(None)
        code = process.wait(60)
    finally:
        os.close(master)
        if process.poll() is None:
            process.kill()
    return code, shown.decode(errors="replace")


def test_in_a_terminal_the_new_password_is_typed_twice_without_echo(cli: Cli) -> None:
    username, sub = new_user(cli.cognito, temporary_password=True)
    args = [
        "login",
        "-u",
        username,
        "--client-id",
        CLIENT_ID,
        "--cognito-endpoint",
        cli.cognito.endpoint + "/",
    ]

    code, shown = run_in_terminal(
        cli,
        args,
        [
            ("Password: ", PASSWORD),
            ("New password: ", NEW_PASSWORD),
            ("New password again: ", "a typo"),  # differs: asked again
            ("New password: ", NEW_PASSWORD),
            ("New password again: ", NEW_PASSWORD),
        ],
    )

    assert code == 0, shown
    assert "the two passwords differ; try again" in shown
    assert f"signed in as {username}" in shown
    # Nothing typed was echoed
    assert PASSWORD not in shown and NEW_PASSWORD not in shown and "a typo" not in shown
    assert cli.cognito.requests[-1]["body"]["ChallengeResponses"]["NEW_PASSWORD"] == NEW_PASSWORD
    assert cli.ytr("sessions", "create").returncode == 0
    assert cli.owner_of_sessions() == {sub}
