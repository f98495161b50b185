"""The request middleware's observability: one log line per request with its request id, and the
Requests (by route template and status class) and Errors (by code) metrics."""

from __future__ import annotations

import logging
from types import SimpleNamespace

import pytest
from fastapi import FastAPI, WebSocket
from fastapi.testclient import TestClient

from ytresearch.errors import NotFoundError
from ytresearch.observability.metrics import InMemoryMetrics
from ytresearch.web.errors import install_error_handlers
from ytresearch.web.middleware import BodySizeLimitMiddleware, RequestContextMiddleware


@pytest.fixture
def metrics() -> InMemoryMetrics:
    return InMemoryMetrics()


@pytest.fixture
def client(metrics: InMemoryMetrics) -> TestClient:
    app = FastAPI()
    app.state.container = SimpleNamespace(metrics=metrics)
    install_error_handlers(app)

    @app.get("/v1/items/{item_id}")
    def get_item(item_id: int) -> dict[str, int]:
        if item_id == 0:
            raise NotFoundError("no such item", code="ITEM_NOT_FOUND")
        return {"id": item_id}

    @app.post("/v1/items")
    def create_item(body: dict[str, str]) -> dict[str, str]:
        return body

    @app.get("/boom")
    def boom() -> None:
        raise RuntimeError("unexpected")

    @app.get("/health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.websocket("/v1/ws/{room}")
    async def ws(websocket: WebSocket, room: str) -> None:
        await websocket.accept()
        await websocket.send_json({"room": room})
        await websocket.close()

    app.add_middleware(BodySizeLimitMiddleware, max_bytes=1024)
    app.add_middleware(RequestContextMiddleware)
    return TestClient(app)


def dimensions(metrics: InMemoryMetrics, name: str) -> list[dict[str, str]]:
    return [r.dimensions for r in metrics.recorded if r.point.name == name]


def test_requests_are_counted_by_route_template_and_status_class(
    client: TestClient, metrics: InMemoryMetrics
) -> None:
    assert client.get("/v1/items/7").status_code == 200
    assert client.get("/v1/items/8").status_code == 200
    assert client.get("/v1/items/0").status_code == 404
    assert client.get("/nowhere/at/all").status_code == 404
    assert dimensions(metrics, "Requests") == [
        {"route": "/v1/items/{item_id}", "status_class": "2xx"},
        {"route": "/v1/items/{item_id}", "status_class": "2xx"},
        {"route": "/v1/items/{item_id}", "status_class": "4xx"},
        {"route": "unmatched", "status_class": "4xx"},
    ]


def test_errors_are_counted_by_the_code_in_the_error_body(
    client: TestClient, metrics: InMemoryMetrics
) -> None:
    client.get("/v1/items/0")
    client.get("/v1/items/not-a-number")
    client.post("/v1/items", content=b"x" * 2048, headers={"content-type": "application/json"})
    client.get("/boom")
    assert [d["code"] for d in dimensions(metrics, "Errors")] == [
        "ITEM_NOT_FOUND",
        "INVALID_ID",
        "PAYLOAD_TOO_LARGE",
        "INTERNAL_ERROR",
    ]
    assert dimensions(metrics, "Requests")[-1] == {"route": "/boom", "status_class": "5xx"}


def test_successful_requests_record_no_error(client: TestClient, metrics: InMemoryMetrics) -> None:
    client.post("/v1/items", json={"a": "b"})
    assert dimensions(metrics, "Errors") == []


def test_each_request_logs_one_line_with_its_request_id(
    client: TestClient, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="ytresearch.web")
    response = client.get("/v1/items/0", headers={"X-Request-ID": "client-id-1"})
    (record,) = [r for r in caplog.records if r.name == "ytresearch.web"]
    assert response.headers["x-request-id"] == "client-id-1"
    assert record.levelno == logging.INFO
    assert record.__dict__["route"] == "/v1/items/{item_id}" and record.__dict__["status"] == 404
    assert record.__dict__["error_code"] == "ITEM_NOT_FOUND" and record.__dict__["duration_ms"] >= 0
    assert record.getMessage() == "GET /v1/items/{item_id} -> 404"


def test_health_probes_log_at_debug(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="ytresearch.web")
    client.get("/health")
    (record,) = [r for r in caplog.records if r.name == "ytresearch.web"]
    assert record.levelno == logging.DEBUG


def test_websockets_are_counted_when_accepted(client: TestClient, metrics: InMemoryMetrics) -> None:
    with client.websocket_connect("/v1/ws/lobby") as ws:
        assert ws.receive_json() == {"room": "lobby"}
    assert dimensions(metrics, "Requests") == [{"route": "/v1/ws/{room}", "status_class": "1xx"}]


def test_an_app_without_a_container_is_served_without_metrics() -> None:
    app = FastAPI()

    @app.get("/")
    def root() -> dict[str, str]:
        return {}

    app.add_middleware(RequestContextMiddleware)
    assert TestClient(app).get("/").status_code == 200
