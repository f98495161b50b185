"""Where the client finds its deployment: flags, then environment, then the config file, then
(for a local address only: loopback, any port) the key `make run` generated in ``.ytr/dev_api_key``.
The stream URL defaults to the API URL (`make run` serves both at one address)."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ytr.errors import EXIT_USAGE, CliError

DEFAULT_URL = "http://127.0.0.1:8000"
LOCAL_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})
DEV_KEY_FILE = Path(".ytr/dev_api_key")
CONFIG_KEYS = (
    "api_url",
    "stream_url",
    "api_key",
    # Cognito sign-in (`ytr login`): where to sign in, and the tokens it got
    "cognito_client_id",
    "cognito_region",
    "cognito_endpoint",
    "access_token",
    "refresh_token",
    "token_expires_at",
)


@dataclass(frozen=True)
class ClientSettings:
    api_url: str
    stream_url: str
    api_key: str | None
    api_key_source: str  # for `ytr configure` with no options: where the key came from
    config_path: Path
    access_token: str | None = None  # sent instead of the API key when set
    token_source: str = "none"
    refresh_token: str | None = None
    token_expires_at: int | None = None
    cognito_client_id: str | None = None
    cognito_region: str | None = None
    cognito_endpoint: str | None = None


def config_path(env: Mapping[str, str] | None = None) -> Path:
    env = os.environ if env is None else env
    if env.get("YTR_CONFIG"):
        return Path(env["YTR_CONFIG"]).expanduser()
    base = env.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base).expanduser() / "ytr" / "config.toml"


def read_config(path: Path) -> dict[str, str]:
    """The config file's values (empty when there is no file)."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise CliError("INVALID_CONFIG", f"cannot read {path}: {exc.strerror}", EXIT_USAGE) from exc
    try:
        data: dict[str, Any] = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise CliError("INVALID_CONFIG", f"{path} is not valid TOML: {exc}", EXIT_USAGE) from exc
    values: dict[str, str] = {}
    for key in CONFIG_KEYS:
        value = data.get(key)
        if value is None:
            continue
        if not isinstance(value, str):
            raise CliError("INVALID_CONFIG", f"{path}: {key} must be a string", EXIT_USAGE)
        values[key] = value
    return values


def is_local(url: str) -> bool:
    """A plain-HTTP loopback address, any port (`make run PORT=8100`): where the local key may go."""
    parts = urlsplit(url)
    return parts.scheme == "http" and parts.hostname in LOCAL_HOSTS


def normalise_url(url: str, what: str) -> str:
    url = url.strip().rstrip("/")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise CliError("INVALID_URL", f"{what} must be an http:// or https:// URL, not {url!r}", EXIT_USAGE)
    return url


def resolve(
    *,
    api_url: str | None = None,
    stream_url: str | None = None,
    api_key: str | None = None,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> ClientSettings:
    """Effective settings from the flags given (None: not given), the environment and files."""
    env = os.environ if env is None else env
    path = config_path(env)
    file_values = read_config(path)

    def pick(flag: str | None, env_name: str, key: str) -> str | None:
        for value in (flag, env.get(env_name), file_values.get(key)):
            if value:
                return value
        return None

    api = normalise_url(pick(api_url, "YTR_API_URL", "api_url") or DEFAULT_URL, "the API URL")
    stream = normalise_url(pick(stream_url, "YTR_STREAM_URL", "stream_url") or api, "the stream URL")
    key, source = None, "none"
    token, token_source = None, "none"
    # Most specific source first; within a source a token beats a key.
    for kind, value, where in (
        ("key", api_key, "--api-key"),
        ("token", env.get("YTR_ACCESS_TOKEN"), "YTR_ACCESS_TOKEN"),
        ("key", env.get("YTR_API_KEY"), "YTR_API_KEY"),
        ("token", file_values.get("access_token"), str(path)),
        ("key", file_values.get("api_key"), str(path)),
    ):
        if value and value.strip():
            if kind == "token":
                token, token_source = value.strip(), where
            else:
                key, source = value.strip(), where
            break
    if key is None and token is None and is_local(api):
        # The local quick start: `make run` printed (and saved) this key; no copying needed.
        if env.get("YTR_DEV_API_KEY", "").strip():
            key, source = env["YTR_DEV_API_KEY"].strip(), "YTR_DEV_API_KEY"
        else:
            dev_file = (cwd or Path.cwd()) / DEV_KEY_FILE
            try:
                found = dev_file.read_text().strip()
            except OSError:
                found = ""
            if found:
                key, source = found, str(DEV_KEY_FILE)
    expires = file_values.get("token_expires_at", "")
    return ClientSettings(
        api,
        stream,
        key,
        source,
        path,
        access_token=token,
        token_source=token_source,
        refresh_token=file_values.get("refresh_token") if token_source == str(path) else None,
        token_expires_at=int(expires) if expires.isdigit() and token_source == str(path) else None,
        cognito_client_id=env.get("YTR_COGNITO_CLIENT_ID") or file_values.get("cognito_client_id"),
        cognito_region=env.get("YTR_COGNITO_REGION") or file_values.get("cognito_region"),
        cognito_endpoint=env.get("YTR_COGNITO_ENDPOINT") or file_values.get("cognito_endpoint"),
    )


def _toml_string(value: str) -> str:
    # A JSON string without ASCII escaping is a valid TOML basic string.
    return json.dumps(value, ensure_ascii=False)


def write_config(path: Path, updates: Mapping[str, str], *, remove: Iterable[str] = ()) -> dict[str, str]:
    """Merge ``updates`` into the config file (created 0600, its folder 0700), dropping the keys
    in ``remove``; returns the values."""
    values = read_config(path)
    for key in remove:
        values.pop(key, None)
    values.update({k: v for k, v in updates.items() if v})
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    body = "".join(f"{key} = {_toml_string(values[key])}\n" for key in CONFIG_KEYS if key in values)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, body.encode("utf-8"))
    finally:
        os.close(fd)
    os.replace(tmp, path)
    return values


def mask_key(key: str | None) -> str:
    if not key:
        return "(none)"
    return key[:4] + "…" + key[-4:] if len(key) > 12 else "…" * 3
