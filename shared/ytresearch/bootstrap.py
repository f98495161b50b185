"""The composition root: builds every adapter from settings, lazily, once per process.

Lambdas cache one Container; the streaming service builds one in its lifespan; tests hand in
fakes or real local servers. Heavy adapters (anthropic, boto3, youtube-transcript-api) are only
imported when first used, which keeps the CRUD Lambda's cold start small.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from sqlalchemy import Engine, text

from ytresearch.config import Settings, get_settings
from ytresearch.db.engine import make_engine, make_session_factory
from ytresearch.observability.metrics import Metrics
from ytresearch.ports import ChatModel, JobQueue, MetadataSource, TranscriptSource, VideoDiscovery
from ytresearch.repository import Store
from ytresearch.services.users import KeyCache

if TYPE_CHECKING:
    from ytresearch.services.agent.calls import AgentDeps
    from ytresearch.web.jwt import CognitoTokenVerifier


class Container:
    def __init__(self, settings: Settings | None = None, **overrides: Any) -> None:
        self.settings = settings or get_settings()
        # Tests and the local runner may hand in any adapter by name (engine, queue, chat_model...).
        for name, value in overrides.items():
            if value is not None:
                self.__dict__[name] = value

    @cached_property
    def engine(self) -> Engine:
        return make_engine(self.settings)

    @cached_property
    def store(self) -> Store:
        return Store(make_session_factory(self.engine))

    @cached_property
    def key_cache(self) -> KeyCache | None:
        ttl = self.settings.auth_cache_seconds
        return KeyCache(ttl) if ttl > 0 else None

    @cached_property
    def queue(self) -> JobQueue:
        if self.settings.queue_backend == "sqs":
            from ytresearch.queues import SqsJobQueue

            assert self.settings.ingest_queue_url
            return SqsJobQueue(self.settings.ingest_queue_url)
        raise RuntimeError("the embedded queue must be handed in by the local runner")

    @cached_property
    def metrics(self) -> Metrics:
        """EMF metrics in the logs (CloudWatch extracts them), or none when Powertools' switches
        disable metrics."""
        from ytresearch.observability.emf import build_metrics

        return build_metrics()

    @cached_property
    def chat_model(self) -> ChatModel:
        from ytresearch.llm import build_chat_model
        from ytresearch.observability.chat_metrics import MeteredChatModel

        # Measured here, once, so every caller (chat transports, sync chat, summaries) is.
        return MeteredChatModel(build_chat_model(self.settings), self.metrics)

    @cached_property
    def transcripts(self) -> TranscriptSource:
        from ytresearch import youtube

        if self.settings.transcript_source == "samples":
            return youtube.SampleTranscriptSource(self.samples_dir)
        from ytresearch.secrets import with_proxy_secret
        from ytresearch.youtube.retry import RetryingTranscriptSource

        source = youtube.YouTubeTranscriptSource.from_settings(with_proxy_secret(self.settings))
        return RetryingTranscriptSource(source, attempts=self.settings.youtube_fetch_attempts)

    @cached_property
    def metadata(self) -> MetadataSource:
        from ytresearch import youtube

        if self.settings.transcript_source == "samples":
            return youtube.SampleMetadataSource(self.samples_dir)
        if not self.settings.metadata_enabled:
            return youtube.NullMetadataSource()
        key = self.settings.youtube_data_api_key
        return youtube.OEmbedMetadataSource(
            http_timeout=self.settings.http_timeout_seconds,
            data_api_key=key.get_secret_value() if key else None,
        )

    @cached_property
    def discovery(self) -> VideoDiscovery:
        """Finding videos on YouTube (the Data API), or in the bundled samples' catalog offline."""
        from ytresearch.youtube.discovery import build_discovery

        return build_discovery(self.settings, self.samples_dir)

    @cached_property
    def agent(self) -> AgentDeps | None:
        """What the research agent's tools use, or None in a process with no ingest queue to add
        videos with (the queue is SQS when configured, or handed in by the local run)."""
        if self.settings.queue_backend != "sqs" and "queue" not in self.__dict__:
            return None
        from ytresearch.services.agent.calls import AgentDeps

        return AgentDeps(
            store=self.store,
            settings=self.settings,
            queue=self.queue,
            discovery=self.discovery,
            metrics=self.metrics,
        )

    @cached_property
    def token_verifier(self) -> CognitoTokenVerifier | None:
        """The Cognito access-token verifier (``ytresearch.web.jwt``), or None when sign-in
        tokens are not configured. PyJWT is imported only here, on the first bearer token."""
        settings = self.settings
        if not settings.token_auth_enabled:
            return None
        from ytresearch.web.jwt import CognitoTokenVerifier

        assert settings.cognito_issuer and settings.cognito_client_id
        return CognitoTokenVerifier(
            issuer=settings.cognito_issuer,
            client_id=settings.cognito_client_id,
            scope=settings.cognito_scope,
            leeway_seconds=settings.jwt_leeway_seconds,
            cache_seconds=settings.jwks_cache_seconds,
            refetch_min_seconds=settings.jwks_refetch_min_seconds,
            timeout=settings.http_timeout_seconds,
        )

    @property
    def samples_dir(self) -> Any:
        from ytresearch.youtube import default_samples_dir

        return self.settings.samples_dir or default_samples_dir()

    def database_ok(self) -> bool:
        try:
            with self.engine.connect() as conn:
                conn.execute(text("SELECT 1"))
            return True
        except Exception:
            return False
