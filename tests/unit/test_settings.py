import pytest

from ytresearch.config import DEFAULT_MODEL, get_settings, load_settings
from ytresearch.errors import ConfigurationError


def test_defaults_are_the_embedded_local_system(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    s = load_settings()
    assert s.database_url.startswith("sqlite:///")
    assert s.queue_backend == "embedded"
    assert s.model == DEFAULT_MODEL
    assert s.use_offline_model  # no key: the offline model


def test_environment_variables_are_read_with_the_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YTR_MODEL", "claude-haiku-4-5")
    monkeypatch.setenv("YTR_TRANSCRIPT_LANGUAGES", "de, en")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-test")
    s = load_settings()
    assert s.model == "claude-haiku-4-5"
    assert s.transcript_languages == ["de", "en"]
    assert not s.use_offline_model
    assert s.anthropic_api_key is not None and "sk-test" not in repr(s)  # secrets never print


def test_invalid_values_name_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("YTR_MAX_ACTIVE_REQUESTS_PER_USER", "zero")
    with pytest.raises(ConfigurationError) as err:
        load_settings()
    assert "YTR_MAX_ACTIVE_REQUESTS_PER_USER" in err.value.message


def test_empty_language_list_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="TRANSCRIPT_LANGUAGES"):
        load_settings(transcript_languages=" , ")


def test_cloud_environments_refuse_the_dev_key() -> None:
    with pytest.raises(ConfigurationError, match="YTR_DEV_API_KEY"):
        load_settings(environment="prod", dev_api_key="ytr_dev")


def test_sqs_backend_requires_a_queue_url() -> None:
    with pytest.raises(ConfigurationError, match="INGEST_QUEUE_URL"):
        load_settings(environment="prod", queue_backend="sqs")


def test_settings_are_read_once_and_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    get_settings.cache_clear()
    monkeypatch.setenv("YTR_MODEL", "first")
    first = get_settings()
    monkeypatch.setenv("YTR_MODEL", "second")
    assert get_settings() is first and first.model == "first"
    get_settings.cache_clear()
