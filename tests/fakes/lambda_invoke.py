"""A local stand-in for the AWS Lambda Invoke API, for clients that call `lambda.invoke` through
boto3 (point them here with ``AWS_ENDPOINT_URL_LAMBDA``).

``FakeLambda`` serves ``POST /2015-03-31/functions/<name or ARN>/invocations`` on 127.0.0.1 the way
Lambda does for a synchronous invoke: the event is the request body, the function's return value
is the JSON response body (200, ``X-Amz-Executed-Version``), an exception in the function is 200
with ``X-Amz-Function-Error: Unhandled`` and Lambda's error document, and an unknown function is
404 ``ResourceNotFoundException``. Functions are plain Python callables ``(event, context)``, run
in this process (moto's Lambda mock would need Docker to run code). ``requests`` records what
arrived, headers included.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

ACCOUNT = "123456789012"
PREFIX = "/2015-03-31/functions/"
SUFFIX = "/invocations"


class Context:
    def __init__(self, name: str, region: str) -> None:
        self.function_name = name
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:{region}:{ACCOUNT}:function:{name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = "0b8f2c1a-1c2d-4e5f-8a9b-0c1d2e3f4a5b"
        self.log_group_name = f"/aws/lambda/{name}"
        self.log_stream_name = "2026/12/06/[$LATEST]fake"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


class FakeLambda:
    def __init__(self, region: str = "us-east-1") -> None:
        self.region = region
        self.functions: dict[str, Callable[[Any, Any], Any]] = {}
        self.requests: list[dict[str, Any]] = []
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeLambda:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)

    @property
    def endpoint(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host!s}:{port}"

    def arn(self, name: str) -> str:
        return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{name}"

    def _resolve(self, name: str) -> str:
        return name.rsplit(":function:", 1)[-1].split(":", 1)[0]

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, status: int, body: Any, headers: dict[str, str]) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                path = self.path.split("?", 1)[0]
                name = unquote(path.removeprefix(PREFIX).removesuffix(SUFFIX))
                fake.requests.append({"function": name, "headers": dict(self.headers), "body": raw})
                function = fake.functions.get(fake._resolve(name))
                if not path.startswith(PREFIX) or not path.endswith(SUFFIX) or function is None:
                    message = f"Function not found: {fake.arn(fake._resolve(name))}"
                    self._send(
                        404,
                        {"Type": "User", "Message": message},
                        {"x-amzn-ErrorType": "ResourceNotFoundException"},
                    )
                    return
                try:
                    result = function(json.loads(raw or b"null"), Context(fake._resolve(name), fake.region))
                except Exception as exc:  # Lambda reports it in the body, status 200
                    self._send(
                        200,
                        {"errorMessage": str(exc), "errorType": type(exc).__name__, "stackTrace": []},
                        {"X-Amz-Function-Error": "Unhandled", "X-Amz-Executed-Version": "$LATEST"},
                    )
                    return
                self._send(200, result, {"X-Amz-Executed-Version": "$LATEST"})

        return Handler
