"""ASGI entry point of the container: `uvicorn streaming_service.main:app`."""

from streaming_service.app import create_app

app = create_app()
