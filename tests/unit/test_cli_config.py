"""Where the CLI finds URLs and the API key: flags, environment, config file, local dev key."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from ytr.config import DEFAULT_URL, read_config, resolve, write_config
from ytr.errors import CliError
from ytr.main import build_parser, main


@pytest.fixture
def home(tmp_path: Path) -> dict[str, str]:
    return {"YTR_CONFIG": str(tmp_path / "cfg" / "config.toml")}


def test_defaults_are_the_local_address(home: dict[str, str], tmp_path: Path) -> None:
    settings = resolve(env=home, cwd=tmp_path)
    assert settings.api_url == settings.stream_url == DEFAULT_URL and settings.api_key is None


def test_flags_beat_environment_beat_config_file(home: dict[str, str], tmp_path: Path) -> None:
    write_config(Path(home["YTR_CONFIG"]), {"api_url": "https://file.example", "api_key": "from-file"})
    assert resolve(env=home, cwd=tmp_path).api_key == "from-file"
    env = {**home, "YTR_API_URL": "https://env.example/", "YTR_API_KEY": "from-env"}
    from_env = resolve(env=env, cwd=tmp_path)
    assert (from_env.api_url, from_env.api_key) == ("https://env.example", "from-env")
    flagged = resolve(api_url="https://flag.example", api_key="from-flag", env=env, cwd=tmp_path)
    assert (flagged.api_url, flagged.api_key, flagged.stream_url) == (
        "https://flag.example",
        "from-flag",
        "https://flag.example",  # the stream URL follows the API URL unless set
    )


def test_the_dev_key_file_is_used_only_for_the_local_default(home: dict[str, str], tmp_path: Path) -> None:
    (tmp_path / ".ytr").mkdir()
    (tmp_path / ".ytr" / "dev_api_key").write_text("ytr_dev\n")
    local = resolve(env=home, cwd=tmp_path)
    assert local.api_key == "ytr_dev" and local.api_key_source == ".ytr/dev_api_key"
    remote = resolve(env={**home, "YTR_API_URL": "https://api.example"}, cwd=tmp_path)
    assert remote.api_key is None  # never send a local key to another deployment


def test_configure_writes_a_private_file_and_merges(home: dict[str, str]) -> None:
    path = Path(home["YTR_CONFIG"])
    write_config(path, {"api_url": "https://a.example", "api_key": 'k"ey\\é'})
    write_config(path, {"stream_url": "https://s.example"})
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert read_config(path) == {
        "api_url": "https://a.example",
        "stream_url": "https://s.example",
        "api_key": 'k"ey\\é',
    }


def test_a_broken_config_file_is_a_usage_error(home: dict[str, str], tmp_path: Path) -> None:
    path = Path(home["YTR_CONFIG"])
    path.parent.mkdir(parents=True)
    path.write_text("api_url = [not toml")
    with pytest.raises(CliError) as raised:
        resolve(env=home, cwd=tmp_path)
    assert raised.value.exit_code == 2 and str(path) in raised.value.message
    path.write_text("api_url = 5\n")
    with pytest.raises(CliError):
        resolve(env=home, cwd=tmp_path)


def test_a_url_that_is_not_http_is_refused(home: dict[str, str], tmp_path: Path) -> None:
    with pytest.raises(CliError) as raised:
        resolve(api_url="localhost:8000", env=home, cwd=tmp_path)
    assert raised.value.exit_code == 2


def test_global_options_work_before_and_after_the_command() -> None:
    before = build_parser().parse_args(["--json", "--api-key", "k", "sessions", "list"])
    after = build_parser().parse_args(["sessions", "list", "--json", "--api-key", "k"])
    assert (before.json, before.api_key) == (after.json, after.api_key) == (True, "k")


def test_usage_errors_exit_2() -> None:
    with pytest.raises(SystemExit) as raised:
        main(["sessions"])
    assert raised.value.code == 2
    with pytest.raises(SystemExit) as raised:
        main(["history", "sid", "--limit", "0"])
    assert raised.value.code == 2


def test_importing_the_cli_stays_light() -> None:
    import subprocess
    import sys

    code = (
        "import sys, ytr.main; "
        "print(sorted(m for m in ('httpx', 'sqlalchemy', 'websockets') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_stream_url_defaults_to_the_api_url_but_can_differ(home: dict[str, str], tmp_path: Path) -> None:
    local = resolve(env={**home, "YTR_API_URL": "http://127.0.0.1:8100"}, cwd=tmp_path)
    assert local.stream_url == "http://127.0.0.1:8100"
    split = resolve(
        env={**home, "YTR_API_URL": "https://api.example", "YTR_STREAM_URL": "https://stream.example"},
        cwd=tmp_path,
    )
    assert (split.api_url, split.stream_url) == ("https://api.example", "https://stream.example")


@pytest.mark.parametrize(
    ("url", "local"),
    [
        ("http://127.0.0.1:8100", True),
        ("http://localhost:9000", True),
        ("http://[::1]:8000", True),
        ("http://127.0.0.1", True),
        ("https://127.0.0.1:8100", False),  # not what `make run` serves
        ("http://127.0.0.1.example.com:8000", False),
        ("http://10.0.0.5:8000", False),
        ("https://api.example", False),
    ],
)
def test_the_dev_key_goes_to_any_local_port_and_nowhere_else(
    home: dict[str, str], tmp_path: Path, url: str, local: bool
) -> None:
    (tmp_path / ".ytr").mkdir()
    (tmp_path / ".ytr" / "dev_api_key").write_text("ytr_dev\n")

    settings = resolve(env={**home, "YTR_API_URL": url}, cwd=tmp_path)

    assert settings.api_key == ("ytr_dev" if local else None)
