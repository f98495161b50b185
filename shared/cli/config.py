"""Where the client finds its deployment: flags, then environment, then the config file, then
(for the local default address only) the key `make run` generated in ``.ytr/dev_api_key``."""

from __future__ import annotations

import json
import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ytresearch.cli.errors import EXIT_USAGE, CliError

DEFAULT_URL = "http://127.0.0.1:8000"
LOCAL_DEFAULTS = frozenset({DEFAULT_URL, "http://localhost:8000"})
DEV_KEY_FILE = Path(".ytr/dev_api_key")
CONFIG_KEYS = ("api_url", "stream_url", "api_key")


@dataclass(frozen=True)
class ClientSettings:
    api_url: str
    stream_url: str
    api_key: str | None
    api_key_source: str  # for `ytr configure` with no options: where the key came from
    config_path: Path


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
    stream = normalise_url(pick(stream_url, "YTR_STREAM_URL", "stream_url") or DEFAULT_URL, "the stream URL")
    key, source = None, "none"
    for value, where in (
        (api_key, "--api-key"),
        (env.get("YTR_API_KEY"), "YTR_API_KEY"),
        (file_values.get("api_key"), str(path)),
    ):
        if value and value.strip():
            key, source = value.strip(), where
            break
    if key is None and api in LOCAL_DEFAULTS:
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
    return ClientSettings(api, stream, key, source, path)


def _toml_string(value: str) -> str:
    # A JSON string without ASCII escaping is a valid TOML basic string.
    return json.dumps(value, ensure_ascii=False)


def write_config(path: Path, updates: Mapping[str, str]) -> dict[str, str]:
    """Merge ``updates`` into the config file (created 0600, its folder 0700); returns the values."""
    values = read_config(path)
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
