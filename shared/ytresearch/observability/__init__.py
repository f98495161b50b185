"""Observability shared by the Lambdas and the streaming service: JSON logs, metrics, tracing.

- ``metrics``: the ``Metrics`` port that services and transports call, its catalogue of metric
  names, and the in-process adapters (no-op, in-memory). Imports nothing but the standard library,
  so services stay free of Powertools.
- ``emf``: the CloudWatch Embedded Metric Format adapter (Powertools' EMF serializer).
- ``logs``: the one JSON log shape (Powertools' formatter) with request ids and redaction, and
  where lines go (straight to stdout on Lambda, through a writer thread in the streaming service).
- ``lambdas``: the Powertools Logger, Metrics and Tracer used by the Lambda handlers' decorators.
- ``chat_metrics``: a ``ChatModel`` decorator that measures time to first token and token usage.
"""

from ytresearch.observability.context import request_id_var, service_name
from ytresearch.observability.metrics import InMemoryMetrics, MetricPoint, Metrics, NullMetrics

__all__ = [
    "InMemoryMetrics",
    "MetricPoint",
    "Metrics",
    "NullMetrics",
    "request_id_var",
    "service_name",
]
