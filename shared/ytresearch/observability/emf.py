"""The EMF adapter of the ``Metrics`` port: each ``emit`` becomes one CloudWatch Embedded Metric
Format document (serialized and validated by Powertools) written as one line of the process's
log output. CloudWatch Logs turns the lines into metrics; nothing calls the CloudWatch API.

On Lambda the line goes straight to stdout; in the streaming service it is queued for the log
writer thread (``ytresearch.observability.logs``), so emitting never blocks the event loop.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Mapping, Sequence

from aws_lambda_powertools.metrics.functions import is_metrics_disabled
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

from ytresearch.observability.context import request_id_var, service_name
from ytresearch.observability.logs import redact, write_line
from ytresearch.observability.metrics import MetricPoint, Metrics, NullMetrics

log = logging.getLogger(__name__)

DEFAULT_NAMESPACE = "YtResearch"
_MAX_DIMENSION_CHARS = 250


def metrics_namespace() -> str:
    return os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE


class EmfMetrics(Metrics):
    def __init__(
        self,
        *,
        namespace: str | None = None,
        service: str | None = None,
        write: Callable[[str], None] | None = None,
    ) -> None:
        self.namespace = namespace or metrics_namespace()
        self.service = service or service_name()
        self._write = write or write_line

    def emit(self, points: Sequence[MetricPoint], dimensions: Mapping[str, str] | None = None) -> None:
        if not points:
            return
        try:
            document = self.document(points, dimensions)
        except Exception:  # a metric must never fail the request that records it
            log.warning("metric dropped: %s", ", ".join(p.name for p in points), exc_info=True)
            return
        self._write(json.dumps(document, separators=(",", ":"), default=str))

    def document(
        self, points: Sequence[MetricPoint], dimensions: Mapping[str, str] | None = None
    ) -> dict[str, object]:
        provider = AmazonCloudWatchEMFProvider(namespace=self.namespace, service=self.service)
        for name, value in (dimensions or {}).items():
            provider.add_dimension(name=name, value=_dimension_value(value))
        for point in points:
            provider.add_metric(name=point.name, unit=point.unit, value=point.value)
        request_id = request_id_var.get()
        if request_id:  # searchable in the logs, not a dimension (unbounded values)
            # redact: it is the client's X-Request-ID when the client sent a well-formed one.
            provider.add_metadata(key="request_id", value=redact(request_id))
        return dict(provider.serialize_metric_set())


def _dimension_value(value: object) -> str:
    text = str(value).strip() if value is not None else ""
    return text[:_MAX_DIMENSION_CHARS] or "none"


def build_metrics() -> Metrics:
    """The process's metrics: EMF, or nothing when POWERTOOLS_METRICS_DISABLED (or POWERTOOLS_DEV)
    says so, as Powertools itself honours."""
    if is_metrics_disabled():
        return NullMetrics()
    return EmfMetrics()
