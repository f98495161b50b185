"""CRUD Lambda entry point: API Gateway HTTP API (payload v2) -> Mangum -> FastAPI.

Kept light on purpose: importing this module must not import boto3 or anthropic (cold start).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths
from mangum import Mangum

from functions.api.app import create_app

logger = Logger()
app = create_app()
_asgi = Mangum(app, lifespan="off")


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP, clear_state=True)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    return _asgi(event, context)
