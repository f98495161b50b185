"""`ytr-admin` creates users and keys against whatever database is configured."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import functions.admin.handler as admin_module
from tests.fakes.lambda_invoke import FakeLambda
from tests.support.cli import YTR
from tests.support.settings import test_settings
from ytresearch.bootstrap import Container
from ytresearch.errors import UnauthorizedError
from ytresearch.services.users import authenticate

YTR_ADMIN = str(Path(sys.executable).parent / "ytr-admin")


def run_admin(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YTR_DATABASE_URL": database_url}
    return subprocess.run([YTR_ADMIN, *args], capture_output=True, text=True, env=env, timeout=60)


def test_the_client_points_to_ytr_admin_and_changes_nothing(database_url: str) -> None:
    """`ytr` carries no server code: `ytr-admin` says where the command went."""
    moved = subprocess.run(
        [YTR, "admin", "create-user", "moved@example.com"],
        capture_output=True,
        text=True,
        env={**os.environ, "YTR_DATABASE_URL": database_url},
        timeout=60,
    )

    assert moved.returncode == 2
    assert "ytr-admin" in moved.stderr and "(USAGE)" in moved.stderr
    assert (
        "(USER_NOT_FOUND)" in run_admin("create-key", "moved@example.com", database_url=database_url).stderr
    )


def test_create_user_prints_a_working_key_and_create_key_adds_another(database_url: str) -> None:
    created = run_admin("create-user", "Carol@Example.com", database_url=database_url)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("ytr_")
    container = Container(test_settings(database_url))
    assert authenticate(container.store, key).email == "carol@example.com"

    second = run_admin("create-key", "carol@example.com", database_url=database_url)
    assert second.returncode == 0
    assert second.stdout.strip() != key
    assert authenticate(container.store, second.stdout.strip()).email == "carol@example.com"
    container.engine.dispose()


def test_admin_errors_are_one_clear_line(database_url: str) -> None:
    run_admin("create-user", "dup@example.com", database_url=database_url)
    dup = run_admin("create-user", "dup@example.com", database_url=database_url)
    assert dup.returncode == 1 and "already exists" in dup.stderr and "Traceback" not in dup.stderr
    missing = run_admin("create-key", "nobody@example.com", database_url=database_url)
    assert missing.returncode == 1 and "no user" in missing.stderr
    bad = run_admin("create-user", "not-an-email", database_url=database_url)
    assert bad.returncode == 1 and "not a valid email" in bad.stderr


def test_list_keys_and_revoke_key_against_the_database(database_url: str) -> None:
    key = run_admin("create-user", "ops@example.com", database_url=database_url).stdout.strip()
    listed = run_admin("--json", "list-keys", "ops@example.com", database_url=database_url)
    (entry,) = json.loads(listed.stdout)["keys"]
    assert entry["prefix"] == key[:10] and entry["revoked_at"] is None

    revoked = run_admin("revoke-key", "ops@example.com", "--key-id", entry["id"], database_url=database_url)

    assert revoked.returncode == 0, revoked.stderr
    assert f"revoked {key[:10]}" in revoked.stdout
    shown = run_admin("list-keys", "ops@example.com", database_url=database_url).stdout
    assert entry["id"] in shown and "revoked 20" in shown
    container = Container(test_settings(database_url))
    with pytest.raises(UnauthorizedError):
        authenticate(container.store, key)
    container.engine.dispose()
    missing = run_admin("revoke-key", "ops@example.com", "--prefix", "ytr_zzzzzz", database_url=database_url)
    assert missing.returncode == 1 and missing.stderr.strip().endswith("(KEY_NOT_FOUND)")


# ---------------------------------------------------------------------- --deployed: the admin function

FUNCTION = "YtResearch-dev-AdminFunction"


@pytest.fixture
def deployed(database_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[FakeLambda, Container]]:
    """The admin function's real handler behind a local Lambda Invoke endpoint, over the test
    database; `ytr` reaches it with real boto3 (``AWS_ENDPOINT_URL_LAMBDA``)."""
    container = Container(test_settings(database_url))
    monkeypatch.setattr(admin_module, "_handle", admin_module.make_handler(lambda: container))
    with FakeLambda() as fake:
        fake.functions[FUNCTION] = admin_module.handler
        yield fake, container
    container.engine.dispose()


def run_deployed(
    fake: FakeLambda, *args: str, region: str | None = "us-east-1"
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "YTR_"))}
    env.update(
        {
            "AWS_ENDPOINT_URL_LAMBDA": fake.endpoint,
            "AWS_ACCESS_KEY_ID": "AKIAEXAMPLEADMIN",
            "AWS_SECRET_ACCESS_KEY": "not-a-real-secret",
            "AWS_CONFIG_FILE": os.devnull,
            "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
            # Proves --deployed never opens a database of its own
            "YTR_DATABASE_URL": "postgresql://nobody:nothing@127.0.0.1:9/none",
        }
    )
    if region:
        env["AWS_REGION"] = region
    return subprocess.run([YTR_ADMIN, *args], capture_output=True, text=True, env=env, timeout=60)


def test_deployed_create_user_invokes_the_admin_function_with_iam_credentials(
    deployed: tuple[FakeLambda, Container],
) -> None:
    fake, container = deployed

    result = run_deployed(fake, "--deployed", FUNCTION, "create-user", "Ops@Example.com")

    assert result.returncode == 0, result.stderr
    key = result.stdout.strip()
    assert authenticate(container.store, key).email == "ops@example.com"
    (request,) = fake.requests
    assert request["function"] == FUNCTION
    assert json.loads(request["body"]) == {"action": "create-user", "email": "Ops@Example.com"}
    # A SigV4-signed Lambda call: IAM decides who may run it
    auth = request["headers"]["Authorization"]
    assert auth.startswith("AWS4-HMAC-SHA256 Credential=AKIAEXAMPLEADMIN/") and "/us-east-1/lambda/" in auth


def test_deployed_list_and_revoke_then_the_key_is_refused(deployed: tuple[FakeLambda, Container]) -> None:
    fake, container = deployed
    key = run_deployed(fake, "--deployed", FUNCTION, "create-user", "ops@example.com").stdout.strip()

    revoked = run_deployed(
        fake, "--deployed", FUNCTION, "revoke-key", "ops@example.com", "--prefix", key[:10]
    )
    listed = run_deployed(fake, "--deployed", FUNCTION, "--json", "list-keys", "ops@example.com")

    assert revoked.returncode == 0, revoked.stderr
    (entry,) = json.loads(listed.stdout)["keys"]
    assert entry["revoked_at"] is not None
    with pytest.raises(UnauthorizedError):
        authenticate(container.store, key)


def test_deployed_by_arn_signs_for_the_arns_region(deployed: tuple[FakeLambda, Container]) -> None:
    fake, _ = deployed
    arn = f"arn:aws:lambda:eu-west-1:123456789012:function:{FUNCTION}"

    result = run_deployed(fake, "--deployed", arn, "create-user", "ops@example.com", region=None)

    assert result.returncode == 0, result.stderr
    assert "/eu-west-1/lambda/" in fake.requests[-1]["headers"]["Authorization"]


def test_deployed_errors_are_one_line_with_the_functions_code(deployed: tuple[FakeLambda, Container]) -> None:
    fake, _ = deployed

    no_user = run_deployed(fake, "--deployed", FUNCTION, "create-key", "nobody@example.com")
    no_function = run_deployed(fake, "--deployed", "NoSuchFunction", "list-keys", "ops@example.com")
    no_region = run_deployed(fake, "--deployed", FUNCTION, "list-keys", "ops@example.com", region=None)
    not_remote = run_deployed(fake, "--deployed", FUNCTION, "migrate")

    assert no_user.returncode == 4
    assert no_user.stderr.strip() == "error: no user with email nobody@example.com (USER_NOT_FOUND)"
    assert no_function.returncode == 4 and no_function.stderr.strip().endswith("(FUNCTION_NOT_FOUND)")
    assert no_region.returncode == 2 and "(MISSING_AWS_REGION)" in no_region.stderr
    assert not_remote.returncode == 2 and "not available with --deployed" in not_remote.stderr
    for result in (no_user, no_function, no_region, not_remote):
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1


def test_deployed_function_crash_is_reported_not_a_traceback(deployed: tuple[FakeLambda, Container]) -> None:
    fake, _ = deployed

    def crashing(event: object, context: object) -> dict[str, str]:
        raise RuntimeError("Task timed out after 30.00 seconds")

    fake.functions["Crashing"] = crashing
    result = run_deployed(fake, "--deployed", "Crashing", "list-keys", "ops@example.com")

    assert result.returncode == 6
    assert result.stderr.strip() == (
        "error: the admin function failed: Task timed out after 30.00 seconds (FUNCTION_ERROR)"
    )


def test_deployed_unknown_function_with_moto(capsys: pytest.CaptureFixture[str]) -> None:
    """The same call against moto's Lambda mock (no function there): a clear not-found."""
    from moto import mock_aws

    from ytresearch.admin_cli import main

    with mock_aws():
        code = main(
            [
                "--deployed",
                "arn:aws:lambda:us-east-1:123456789012:function:Gone",
                "list-keys",
                "a@example.com",
            ]
        )

    assert code == 4
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: Function not found: ") and err.endswith("(FUNCTION_NOT_FOUND)")
