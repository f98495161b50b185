"""`ytr admin` creates users and keys against whatever database is configured."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import test_settings
from ytresearch.bootstrap import Container
from ytresearch.services.users import authenticate

YTR = str(Path(sys.executable).parent / "ytr")


def run_ytr(*args: str, database_url: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "YTR_DATABASE_URL": database_url}
    return subprocess.run([YTR, *args], capture_output=True, text=True, env=env, timeout=60)


def test_create_user_prints_a_working_key_and_create_key_adds_another(database_url: str) -> None:
    created = run_ytr("admin", "create-user", "Carol@Example.com", database_url=database_url)
    assert created.returncode == 0, created.stderr
    key = created.stdout.strip()
    assert key.startswith("ytr_")
    container = Container(test_settings(database_url))
    assert authenticate(container.store, key).email == "carol@example.com"

    second = run_ytr("admin", "create-key", "carol@example.com", database_url=database_url)
    assert second.returncode == 0
    assert second.stdout.strip() != key
    assert authenticate(container.store, second.stdout.strip()).email == "carol@example.com"
    container.engine.dispose()


def test_admin_errors_are_one_clear_line(database_url: str) -> None:
    run_ytr("admin", "create-user", "dup@example.com", database_url=database_url)
    dup = run_ytr("admin", "create-user", "dup@example.com", database_url=database_url)
    assert dup.returncode == 1 and "already exists" in dup.stderr and "Traceback" not in dup.stderr
    missing = run_ytr("admin", "create-key", "nobody@example.com", database_url=database_url)
    assert missing.returncode == 1 and "no user" in missing.stderr
    bad = run_ytr("admin", "create-user", "not-an-email", database_url=database_url)
    assert bad.returncode == 1 and "not a valid email" in bad.stderr
