"""CRUD Lambda entry point: API Gateway HTTP API (payload v2) -> Mangum -> FastAPI.

Kept light on purpose: importing this module must not import boto3 or anthropic (cold start).
Observability sits on the handler only: JSON logs with API Gateway's request id as the
correlation id, the cold start metric (the request metrics are written by the middleware through
the Container's EMF adapter) and X-Ray tracing when the X-Ray SDK is present (see
``ytresearch.observability.lambdas``). Responses are not recorded in traces: they may hold
transcripts.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.logging import correlation_paths
from mangum import Mangum

from functions.api.app import create_app
from ytresearch.observability.lambdas import lambda_logger, lambda_metrics, lambda_tracer

logger = lambda_logger()
metrics = lambda_metrics()
tracer = lambda_tracer()
app = create_app()
_asgi = Mangum(app, lifespan="off")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
@metrics.log_metrics(capture_cold_start_metric=True)
@tracer.capture_lambda_handler(capture_response=False)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _asgi(event, context)
