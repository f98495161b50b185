"""Settings: one validated model, read lazily from the environment and cached.

Every variable is prefixed ``YTR_`` except the well-known ``ANTHROPIC_API_KEY``.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    AliasChoices,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from ytresearch.errors import ConfigurationError

DEFAULT_SQLITE_URL = "sqlite:///.ytr/local.db"
# The one place the default Claude model is named: the settings, the CDK app (infra/config.py) and
# the tests read it. tests/unit/test_default_model.py fails once the locked anthropic SDK no longer
# lists it or lists it as deprecated.
DEFAULT_MODEL = "claude-sonnet-5-5"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="YTR_", extra="ignore", frozen=True)

    environment: Literal["local", "test", "dev", "staging", "prod"] = "local"
    service_name: str = "ytresearch"

    # Database: a URL, or (on AWS) a Secrets Manager secret holding host/port/username/password.
    database_url: str = DEFAULT_SQLITE_URL
    database_secret_arn: str | None = None
    database_name: str = "ytresearch"
    database_host: str | None = None  # overrides the secret's host (RDS Proxy endpoint)
    # The event-log listener connects here instead (the instance behind RDS Proxy: a proxy does
    # not keep a LISTEN session's notifications flowing); unset: where the engine connects.
    database_listen_host: str | None = None
    db_pool_size: int = Field(default=10, ge=0, le=100)  # 0 means NullPool (Lambda)
    # PostgreSQL: run statements as named prepared statements cached per connection (one round trip
    # instead of three). Off behind RDS Proxy, where they pin sessions (ytresearch.db.prepared).
    db_prepared_statements: bool = True
    # TLS to PostgreSQL (ytresearch.db.tls): "auto" is verify-full with the RDS secret, else pg8000's
    # own unverified TLS when offered. The CA bundle defaults to the RDS bundle shipped in db/certs.
    db_tls: Literal["auto", "verify-full", "require", "disable"] = "auto"
    db_ca_bundle: Path | None = None

    # Browsers on these origins may call the APIs (empty: same origin only)
    cors_origins: Annotated[list[str], NoDecode] = []

    # Auth
    # Verified API keys remembered per process; also how long a key revoked elsewhere keeps working.
    auth_cache_seconds: float = Field(default=5.0, ge=0)
    dev_api_key: SecretStr | None = None
    # Cognito access tokens (Authorization: Bearer), accepted beside API keys when both the issuer
    # (https://cognito-idp.<region>.amazonaws.com/<pool id>) and the app client id are set.
    cognito_issuer: str | None = None
    cognito_client_id: str | None = None
    cognito_scope: str = Field(default="ytresearch/api", min_length=1)  # required in every token
    # The hosted UI (https://<prefix>.auth.<region>.amazoncognito.com) the browser page signs in
    # through (authorization code with PKCE), with token auth on; unset: the page takes API keys only.
    cognito_hosted_ui_url: str | None = None
    jwks_cache_seconds: float = Field(default=3600.0, gt=0)  # then the key set is fetched again
    jwks_refetch_min_seconds: float = Field(default=30.0, ge=0)  # unknown kid: refetch at most this often
    jwt_leeway_seconds: float = Field(default=30.0, ge=0, le=300)  # clock skew allowed on exp/iat

    # Queue: "sqs" in the cloud, "embedded" for the local run.
    queue_backend: Literal["sqs", "embedded"] = "embedded"
    ingest_queue_url: str | None = None
    ingest_max_receives: int = Field(default=5, ge=1)  # matches the queue's redrive maxReceiveCount

    # Claude
    anthropic_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("ANTHROPIC_API_KEY", "YTR_ANTHROPIC_API_KEY")
    )
    anthropic_secret_arn: str | None = None
    anthropic_base_url: str | None = None
    llm_provider: Literal["auto", "anthropic", "offline"] = "auto"
    offline_token_delay_seconds: float = Field(
        default=0.02, ge=0, le=1
    )  # so the offline answer visibly streams
    model: str = DEFAULT_MODEL
    summary_max_tokens: int = Field(default=1024, ge=64, le=8192)
    chat_max_tokens: int = Field(default=2048, ge=64, le=16384)
    sync_chat_max_tokens: int = Field(default=1024, ge=64, le=4096)
    # A whole reply is in memory when it is saved: the save is retried through a database outage
    # this long (streams), or this long within API Gateway's 30 s (the synchronous REST chat).
    reply_save_timeout_seconds: float = Field(default=60.0, ge=0)
    sync_reply_save_timeout_seconds: float = Field(default=5.0, ge=0, le=20)
    context_budget_tokens: int = Field(default=150_000, ge=2_000)
    # Transcripts whole while they fit this; past it, each video's summary and the windows the
    # transcript index finds for the question (at most retrieval_windows, retrieval_budget_tokens).
    context_full_budget_tokens: int = Field(default=100_000, ge=0)
    retrieval_windows: int = Field(default=24, ge=1, le=200)
    retrieval_budget_tokens: int = Field(default=20_000, ge=500)
    # The research agent: what one reply may do with tools, each bound told by a limit_reached event.
    agent_tools_default: Literal["auto", "confirm", "off"] = "auto"  # a message may choose otherwise
    agent_max_tool_rounds: int = Field(default=8, ge=1, le=50)  # model -> tools -> model, per reply
    agent_max_videos_per_reply: int = Field(default=5, ge=0, le=50)
    agent_max_videos_per_session: int = Field(default=50, ge=0, le=1000)  # added by the agent, ever
    agent_max_reply_tokens: int = Field(default=400_000, ge=1_000)  # input + output over every round
    agent_ingest_wait_seconds: float = Field(default=60.0, ge=0, le=600)  # add_video waits this long
    agent_approval_timeout_seconds: float = Field(default=120.0, gt=0, le=3600)  # then: refused
    agent_playlist_default_limit: int = Field(default=10, ge=1, le=50)
    artifact_max_chars: int = Field(default=60_000, ge=1_000, le=1_000_000)  # one version's Markdown
    artifacts_per_session: int = Field(default=100, ge=1, le=10_000)
    llm_max_retries: int = Field(default=3, ge=0, le=10)
    llm_timeout_seconds: float = Field(default=60.0, gt=0)
    breaker_failure_threshold: int = Field(
        default=5, ge=1
    )  # consecutive model failures that open the circuit
    breaker_reset_seconds: float = Field(default=30.0, gt=0)  # then one probe is let through

    # YouTube
    transcript_source: Literal["youtube", "samples"] = "youtube"
    transcript_languages: Annotated[list[str], NoDecode] = ["en"]
    # transcript_source "samples": a folder of one's own sample files (<video_id>.json, the shape in
    # ytresearch/samples/README.md), read before the bundled samples (its file wins on the same id).
    samples_dir: Path | None = None
    proxy_http_url: SecretStr | None = None
    proxy_https_url: SecretStr | None = None
    webshare_proxy_username: str | None = None
    webshare_proxy_password: SecretStr | None = None
    proxy_secret_arn: str | None = None
    youtube_data_api_key: SecretStr | None = None
    # On AWS: a secret holding the key (raw, or JSON {"YOUTUBE_DATA_API_KEY": ...}), read on first use.
    youtube_data_api_key_secret_arn: str | None = None
    metadata_enabled: bool = True
    http_timeout_seconds: float = Field(default=10.0, gt=0)
    youtube_fetch_attempts: int = Field(default=3, ge=1, le=10)  # within one ingest attempt, jittered backoff

    # Limits
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)
    # A client that stops sending its body this long (between chunks) is answered 408: a body
    # shorter than its Content-Length must not hold a worker and a connection until the ALB gives up.
    body_read_timeout_seconds: float = Field(default=10.0, gt=0, le=300)
    max_message_chars: int = Field(default=8_000, ge=1)
    max_session_title_chars: int = Field(default=200, ge=1)
    max_videos_per_session: int = Field(default=25, ge=1)
    max_active_requests_per_user: int = Field(default=5, ge=1)
    request_ttl_seconds: int = Field(default=300, ge=1)
    chat_posts_per_minute: int = Field(default=30, ge=1)  # chat messages, over every transport
    session_creates_per_minute: int = Field(default=30, ge=1)
    video_adds_per_minute: int = Field(default=30, ge=1)
    max_transcript_chars: int = Field(default=1_000_000, ge=1_000)  # longer transcripts are refused
    page_size_default: int = Field(default=20, ge=1, le=100)

    # Streaming service
    stream_ping_seconds: float = Field(default=15.0, gt=0)  # keeps idle connections alive behind the ALB
    stream_poll_seconds: float = Field(default=0.1, gt=0)  # cross-process followers poll the log this often
    stream_listen: bool = True  # on PostgreSQL, NOTIFY wakes them instead (polling is the fallback)
    session_poll_seconds: float = Field(default=0.5, gt=0)  # session_update followers poll their feed
    # Token deltas after the first are merged into one event per interval (or 64 characters): each
    # event costs a send per reader.
    stream_coalesce_seconds: float = Field(default=0.03, ge=0, le=1.0)
    # A streaming reply's text goes to the event log (and so to its readers) in checkpoints this
    # far apart: one row each, whatever the number of token events in it; the first token, every
    # other event and the end are written at once.
    stream_checkpoint_seconds: float = Field(default=0.5, ge=0, le=5.0)
    stream_send_timeout_seconds: float = Field(
        default=30.0, gt=0
    )  # then a client that stopped reading is dropped
    stream_stale_after_seconds: float = Field(default=10.0, gt=0)  # owner heartbeat older than this: orphaned
    drain_grace_seconds: float = Field(default=60.0, ge=0)  # on SIGTERM, running replies get this long

    @field_validator("transcript_languages", "cors_origins", mode="before")
    @classmethod
    def _split_languages(cls, value: object) -> object:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("transcript_languages")
    @classmethod
    def _languages_not_empty(cls, value: list[str]) -> list[str]:
        if not value:
            raise ValueError("give at least one language code, e.g. 'en' or 'en,de'")
        return value

    @field_validator("samples_dir")
    @classmethod
    def _samples_dir_is_a_folder(cls, value: Path | None) -> Path | None:
        # A mistyped folder would otherwise only show as "no sample transcript" on the first add.
        if value is not None:
            value = value.expanduser()
            if not value.is_dir():
                raise ValueError(f"{value} is not a folder (it should hold <video_id>.json sample files)")
        return value

    @field_validator("cognito_issuer", "cognito_client_id", "cognito_hosted_ui_url", mode="before")
    @classmethod
    def _blank_is_unset(cls, value: object) -> object:
        if isinstance(value, str):
            value = value.strip().rstrip("/") or None
        return value

    @model_validator(mode="after")
    def _token_auth_is_complete(self) -> Settings:
        if (self.cognito_issuer is None) != (self.cognito_client_id is None):
            raise ValueError("set both YTR_COGNITO_ISSUER and YTR_COGNITO_CLIENT_ID, or neither")
        issuer = self.cognito_issuer
        if issuer is not None:
            scheme = issuer.split("://", 1)[0]
            # Plain http only where the key set cannot be tampered with on the way (local tests).
            if scheme != "https" and not (scheme == "http" and self.environment in ("local", "test")):
                raise ValueError("YTR_COGNITO_ISSUER must be an https:// URL")
        hosted_ui = self.cognito_hosted_ui_url
        if hosted_ui is not None:
            scheme, _, rest = hosted_ui.partition("://")
            local = scheme == "http" and self.environment in ("local", "test")
            if (scheme != "https" and not local) or not rest or "/" in rest or "?" in rest or "#" in rest:
                raise ValueError("YTR_COGNITO_HOSTED_UI_URL must be an origin such as https://<domain>")
        return self

    @property
    def token_auth_enabled(self) -> bool:
        return self.cognito_issuer is not None and self.cognito_client_id is not None

    @model_validator(mode="after")
    def _refuse_insecure_cloud_defaults(self) -> Settings:
        if self.environment in ("dev", "staging", "prod"):
            if self.dev_api_key is not None:
                raise ValueError("YTR_DEV_API_KEY is for local runs only")
            if self.queue_backend == "sqs" and not self.ingest_queue_url:
                raise ValueError("YTR_INGEST_QUEUE_URL is required when YTR_QUEUE_BACKEND=sqs")
        return self

    @property
    def use_offline_model(self) -> bool:
        if self.llm_provider == "offline":
            return True
        if self.llm_provider == "anthropic":
            return False
        return self.anthropic_api_key is None and self.anthropic_secret_arn is None


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment (plus overrides), turning validation errors into one
    readable ConfigurationError that names each bad variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            name = "YTR_" + "_".join(str(p) for p in err["loc"]).upper() if err["loc"] else "settings"
            problems.append(f"{name}: {err['msg']}")
        raise ConfigurationError("invalid configuration: " + "; ".join(problems)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read on first use (never at import time)."""
    return load_settings()
