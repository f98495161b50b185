"""A throwaway PostgreSQL server for the test run, started as an unprivileged user.

Uses the server binaries from apt (scripts/ensure-test-deps.sh installs them when missing).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _bin_dir() -> Path:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    if not found:
        raise RuntimeError("PostgreSQL server not installed; run scripts/ensure-test-deps.sh")
    return Path(found[-1]).parent


def _run_as(user: str | None, cmd: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    if user:
        cmd = ["runuser", "-u", user, "--", *cmd]
    return subprocess.run(cmd, check=True, capture_output=True, text=True, **kw)  # type: ignore[call-overload]


class PostgresServer:
    def __init__(self, *, ssl: tuple[Path, Path] | None = None) -> None:
        """``ssl``: a server certificate and its key (PEM); the server then also speaks TLS."""
        self.bin = _bin_dir()
        self.port = free_port()
        self.root = Path(tempfile.mkdtemp(prefix="ytr-pg-"))
        self.data = self.root / "data"
        # PostgreSQL refuses to run as root: use the 'postgres' account apt created.
        self.user = None
        if os.geteuid() == 0:
            self.user = "postgres" if _user_exists("postgres") else "nobody"
            shutil.chown(self.root, self.user)
        self.root.chmod(0o755)
        self.tls_options = ""
        if ssl is not None:
            # PostgreSQL refuses a key that anyone but its owner (the server's user) can read.
            cert, key = self.root / "server.crt", self.root / "server.key"
            shutil.copyfile(ssl[0], cert)
            shutil.copyfile(ssl[1], key)
            key.chmod(0o600)
            if self.user:
                shutil.chown(cert, self.user)
                shutil.chown(key, self.user)
            self.tls_options = f" -c ssl=on -c ssl_cert_file={cert} -c ssl_key_file={key}"

    @property
    def admin_url(self) -> str:
        return f"postgresql+pg8000://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, dbname: str) -> str:
        return f"postgresql+pg8000://postgres@127.0.0.1:{self.port}/{dbname}"

    def start(self) -> PostgresServer:
        _run_as(
            self.user,
            [
                str(self.bin / "initdb"),
                "-D",
                str(self.data),
                "-U",
                "postgres",
                "--auth=trust",
                "-E",
                "UTF8",
                "--no-sync",
            ],
        )
        self.start_again()
        return self

    def stop(self) -> None:
        with contextlib.suppress(subprocess.CalledProcessError):
            _run_as(self.user, [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(self.root, ignore_errors=True)

    def kill(self) -> None:
        """Take the server away (for outage tests): every connection is cut at once. ("fast", not
        "immediate": with synchronous_commit off an immediate stop could lose the last commits.)
        ``start_again`` brings the same data back."""
        _run_as(self.user, [str(self.bin / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop"])

    def start_again(self) -> None:
        """Start the server on its data directory (first start, or after ``kill``)."""
        _run_as(
            self.user,
            [
                str(self.bin / "pg_ctl"),
                "-D",
                str(self.data),
                "-l",
                str(self.root / "log"),
                "-w",
                "-o",
                f"-p {self.port} -h 127.0.0.1 -k {self.root} -c fsync=off -c synchronous_commit=off "
                "-c full_page_writes=off -c max_connections=300" + self.tls_options,
                "start",
            ],
        )

    def create_database(self, name: str) -> str:
        import pg8000.native

        conn = pg8000.native.Connection("postgres", host="127.0.0.1", port=self.port, database="postgres")
        try:
            conn.run(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)


def _user_exists(name: str) -> bool:
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


@contextlib.contextmanager
def running_postgres() -> Iterator[PostgresServer]:
    server = PostgresServer().start()
    try:
        yield server
    finally:
        server.stop()


def wait_for_port(port: int, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listening on port {port}")
