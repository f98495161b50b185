"""A design under test: its tree (the working tree, or a detached worktree of a git revision), the
database setup run with its own code, and its ``streaming_service.serve`` processes."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.postgres import free_port

REPO = Path(__file__).resolve().parents[2]

# Run inside a design's tree (cwd and PYTHONPATH): its migrations, then users with fresh sessions,
# written with its own code; prints where its packages came from and the users as JSON.
SETUP = r"""
import json, sys
import streaming_service, ytresearch
from sqlalchemy import text
from tests.support.settings import test_settings
from tests.support.users import make_user
from ytresearch.bootstrap import Container

url, migrate, users, per_user = sys.argv[1], sys.argv[2] == "1", int(sys.argv[3]), int(sys.argv[4])
settings = test_settings(url)
if migrate:
    from ytresearch.db.migrations import upgrade_to_head
    upgrade_to_head(settings)
container = Container(settings)
made = []
try:
    for _ in range(users):
        user, key = make_user(container)
        with container.store.transaction() as repo:
            made.append([key, [str(repo.add_session(user.id, f"bench {i}").id) for i in range(per_user)]])
    with container.engine.connect() as conn:
        conn.execute(text("ANALYZE"))  # statistics as autovacuum would have them on a live database
        conn.commit()
finally:
    container.engine.dispose()
print(json.dumps({"ytresearch": ytresearch.__file__, "streaming_service": streaming_service.__file__,
                  "users": made}))
"""


@dataclass
class Design:
    name: str
    tree: Path
    rev: str
    env: dict[str, str] = field(default_factory=dict)

    def python_env(self) -> dict[str, str]:
        """This tree's packages before the venv's editable install (whose finder comes after
        sys.path) and before anything inherited."""
        inherited = os.environ.get("PYTHONPATH", "")
        path = [str(self.tree), str(self.tree / "shared"), *([inherited] if inherited else [])]
        return {**os.environ, "PYTHONPATH": os.pathsep.join(path)}

    def setup(self, url: str, migrate: bool, users: int, per_user: int, logs: Path) -> dict[str, Any]:
        done = subprocess.run(
            [sys.executable, "-c", SETUP, url, "1" if migrate else "0", str(users), str(per_user)],
            cwd=self.tree,
            env=self.python_env(),
            capture_output=True,
            text=True,
        )
        with (logs / f"setup-{self.name}.log").open("a") as log:
            log.write(done.stderr)
        if done.returncode != 0:
            raise RuntimeError(f"{self.name}: setup failed: {done.stderr[-2000:]}")
        out: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
        for package in ("ytresearch", "streaming_service"):
            if not Path(out[package]).resolve().is_relative_to(self.tree.resolve()):
                raise RuntimeError(f"{self.name}: {package} came from {out[package]}, not from {self.tree}")
        return out


class Server:
    """``python -m streaming_service.serve`` in a design's tree, logging to a file."""

    def __init__(self, design: Design, env: dict[str, str], logs: Path, index: int) -> None:
        self.design, self.port = design, free_port()
        self.env = {**design.python_env(), **env}
        self.log_path = logs / f"{design.name}-server{index}-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def start(self) -> None:
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "streaming_service.serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                ],
                cwd=self.design.tree,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    def crashed(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None

    def stop(self) -> None:
        """SIGINT (no drain: every stream has ended by now), then SIGKILL if it hangs."""
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGINT)
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


@contextlib.contextmanager
def worktree(rev: str, logs: Path) -> Any:
    """A detached worktree of ``rev`` (removed afterwards) and the commit it resolved to."""
    root = Path(tempfile.mkdtemp(prefix="ytr-scale-"))
    path = root / "tree"
    with (logs / "worktree.log").open("a") as log:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "add", "--detach", str(path), rev],
            check=True,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        commit = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--short", "HEAD"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout.strip()
        yield path, commit
    finally:
        subprocess.run(
            ["git", "-C", str(REPO), "worktree", "remove", "--force", str(path)],
            capture_output=True,
            check=False,
        )
        with contextlib.suppress(OSError):
            root.rmdir()


def working_tree_rev() -> str:
    def git(*args: str) -> str:
        return subprocess.run(["git", "-C", str(REPO), *args], capture_output=True, text=True).stdout.strip()

    head, dirty = git("rev-parse", "--short", "HEAD"), git("status", "--porcelain", "--untracked-files=no")
    return f"working tree ({head}{' + changes' if dirty else ''})"
