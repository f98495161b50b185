"""Powertools Logger, Metrics and Tracer for the Lambda handlers (used as decorators on the
handler function, nowhere else).

- ``lambda_logger``: a Powertools Logger writing our JSON shape through the process's one handler
  (request ids, redaction), for the handler and for every ``ytresearch``/``functions`` logger.
- ``lambda_metrics``: Powertools Metrics in the ``YtResearch`` namespace, for the cold start
  metric (``ColdStart``, dimensions function_name and service); the application's own metrics go
  through the Container's ``Metrics`` (EMF) adapter as they happen.
- ``lambda_tracer``: a real X-Ray Tracer only when tracing can happen: the ``aws-xray-sdk``
  package is installed and we run inside Lambda with tracing not disabled. Otherwise a Tracer on
  a no-op provider, so the decorator works and nothing imports ``aws_xray_sdk`` (Powertools'
  Tracer imports it even when disabled, and it imports botocore).
"""

from __future__ import annotations

import contextlib
import importlib.util
import numbers
import os
import traceback
from collections.abc import AsyncGenerator, Generator, Sequence
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider
from aws_lambda_powertools.tracing.base import BaseProvider, BaseSegment

from ytresearch.observability.context import service_name
from ytresearch.observability.emf import metrics_namespace
from ytresearch.observability.logs import install_lambda_logging, log_formatter, log_handler

# Patched for X-Ray subsegments when tracing is real: AWS APIs (SQS, Secrets Manager), the
# Anthropic SDK's and YouTube's HTTP client, and the database driver.
TRACED_MODULES = ("botocore", "httpx", "pg8000")


def lambda_logger() -> Logger:
    logger = Logger(service=service_name(), logger_handler=log_handler(), logger_formatter=log_formatter())
    install_lambda_logging()
    return logger


class HandlerMetricsProvider(AmazonCloudWatchEMFProvider):
    """The handler's own metrics carry only the cold start metric (written on its own): the rest
    are written as they happen by the Container's EMF adapter. So an empty set at the end of an
    invocation is normal, not worth Powertools' "no application metrics" warning on stderr."""

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        if self.metric_set or raise_on_empty_metrics:
            super().flush_metrics(raise_on_empty_metrics=raise_on_empty_metrics)


def lambda_metrics() -> Metrics:
    namespace, service = metrics_namespace(), service_name()
    return Metrics(
        namespace=namespace,
        service=service,
        provider=HandlerMetricsProvider(namespace=namespace, service=service),
    )


def tracing_enabled() -> bool:
    disabled = os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower()
    if disabled in ("1", "true", "yes", "on"):
        return False
    if not os.environ.get("LAMBDA_TASK_ROOT") or os.environ.get("AWS_SAM_LOCAL"):
        return False  # Powertools' own rule: no X-Ray daemon outside Lambda
    return importlib.util.find_spec("aws_xray_sdk") is not None


def lambda_tracer() -> Tracer:
    if tracing_enabled():
        return Tracer(service=service_name(), patch_modules=TRACED_MODULES)
    return Tracer(service=service_name(), provider=NoOpTracingProvider(), disabled=False, auto_patch=False)


class NoOpSegment(BaseSegment):
    def close(self, end_time: int | None = None) -> None:
        return None

    def add_subsegment(self, subsegment: Any) -> None:
        return None

    def remove_subsegment(self, subsegment: Any) -> None:
        return None

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def add_exception(
        self, exception: BaseException, stack: list[traceback.StackSummary], remote: bool = False
    ) -> None:
        return None


class NoOpTracingProvider(BaseProvider):
    """Tracing that records nothing (no X-Ray SDK, or not in Lambda)."""

    @contextlib.contextmanager
    def in_subsegment(self, name: str | None = None, **kwargs: Any) -> Generator[BaseSegment]:
        yield NoOpSegment()

    @contextlib.asynccontextmanager
    async def in_subsegment_async(
        self, name: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[BaseSegment]:
        yield NoOpSegment()

    def put_annotation(self, key: str, value: str | numbers.Number | bool) -> None:
        return None

    def put_metadata(self, key: str, value: Any, namespace: str = "default") -> None:
        return None

    def patch(self, modules: Sequence[str]) -> None:
        return None

    def patch_all(self) -> None:
        return None
