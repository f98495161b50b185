"""A local stand-in for a Cognito user pool: its JWKS document and its InitiateAuth API.

``FakeCognito`` runs a threaded HTTP server on 127.0.0.1 (a free port):

* ``GET /<pool id>/.well-known/jwks.json``: the public halves of locally generated RSA keys
  (``cryptography``), so the issuer URL ``http://127.0.0.1:<port>/<pool id>`` works exactly like
  ``https://cognito-idp.<region>.amazonaws.com/<pool id>``;
* ``POST /`` with ``X-Amz-Target: AWSCognitoIdentityProviderService.InitiateAuth`` (flows
  ``USER_PASSWORD_AUTH`` and ``REFRESH_TOKEN_AUTH``) and ``...RespondToAuthChallenge``
  (``NEW_PASSWORD_REQUIRED`` for a user made with ``admin-create-user``, who signs in with a
  temporary password, and ``SOFTWARE_TOKEN_MFA``), answering ``application/x-amz-json-1.1`` like
  the real endpoint, errors included (``{"__type": "NotAuthorizedException", "message": ...}``
  with 400; ``InvalidPasswordException`` for a new password below the pool's policy).

``fake.token(...)`` signs access tokens shaped like Cognito's (and any deliberately broken
variant a test needs); ``fake.requests`` and ``fake.jwks_fetches`` record what clients did.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

POOL_ID = "us-east-1_TestPool1"
CLIENT_ID = "3n4b5urk1ft4fl3mg5e62d9ado"
SCOPE = "ytresearch/api"
TARGET_PREFIX = "AWSCognitoIdentityProviderService."


@dataclass
class SigningKey:
    kid: str
    private: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    def jwk(self) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.private.public_key()))
        return {**data, "kid": self.kid, "alg": "RS256", "use": "sig"}

    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )


@dataclass
class FakeUser:
    username: str
    password: str
    sub: str = field(default_factory=lambda: str(uuid.uuid4()))
    mfa_code: str | None = None  # set: sign-in asks for a SOFTWARE_TOKEN_MFA code
    # True: FORCE_CHANGE_PASSWORD (admin-create-user): ``password`` is temporary and sign-in
    # asks for a new one (NEW_PASSWORD_REQUIRED). The Cognito user name is the sub, the email an alias.
    temporary_password: bool = False


PASSWORD_MIN_LENGTH = 12  # the deployed pool's policy (infra/components/auth.py)


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class TokenMinter:
    """Signs tokens shaped like Cognito access tokens for ``issuer``, and broken variants."""

    def __init__(
        self,
        issuer: str = "https://cognito-idp.us-east-1.amazonaws.com/" + POOL_ID,
        *,
        client_id: str = CLIENT_ID,
        access_ttl: int = 3600,
    ) -> None:
        self._issuer = issuer
        self.client_id = client_id
        self.access_ttl = access_ttl
        self.keys = [SigningKey("key-1"), SigningKey("key-2")]

    @property
    def issuer(self) -> str:
        return self._issuer

    def jwks(self) -> dict[str, Any]:
        return {"keys": [k.jwk() for k in self.keys]}

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        sub = overrides.get("sub") or str(uuid.uuid4())
        claims: dict[str, Any] = {
            "sub": sub,
            "iss": self.issuer,
            "client_id": self.client_id,
            "origin_jti": str(uuid.uuid4()),
            "event_id": str(uuid.uuid4()),
            "token_use": "access",
            "scope": f"aws.cognito.signin.user.admin {SCOPE}",
            "auth_time": now,
            "exp": now + self.access_ttl,
            "iat": now,
            "jti": str(uuid.uuid4()),
            "username": sub,
        }
        claims.update(overrides)
        return {k: v for k, v in claims.items() if v is not None}  # None: leave the claim out

    def token(
        self,
        *,
        key: SigningKey | None = None,
        kid: str | None = None,
        algorithm: str = "RS256",
        **claims: Any,
    ) -> str:
        """An access token signed like Cognito's; ``claims`` override (None removes a claim)."""
        key = key or self.keys[0]
        headers = {"kid": kid or key.kid}
        return jwt.encode(self.claims(**claims), key.private, algorithm=algorithm, headers=headers)

    def unsigned_token(self, **claims: Any) -> str:
        """``alg: none``: a token with no signature at all."""
        header = b64url(json.dumps({"alg": "none", "kid": self.keys[0].kid, "typ": "JWT"}).encode())
        payload = b64url(json.dumps(self.claims(**claims)).encode())
        return f"{header}.{payload}."

    def hmac_with_public_key_token(self, **claims: Any) -> str:
        """HS256 keyed with the published public key: the classic algorithm-confusion attack."""
        header = {"alg": "HS256", "kid": self.keys[0].kid, "typ": "JWT"}
        signing_input = (
            b64url(json.dumps(header).encode()) + "." + b64url(json.dumps(self.claims(**claims)).encode())
        )
        mac = hmac.new(self.keys[0].public_pem(), signing_input.encode(), hashlib.sha256).digest()
        return f"{signing_input}.{b64url(mac)}"

    @staticmethod
    def tampered(token: str, **changes: Any) -> str:
        """The same signature over a changed payload."""
        header, payload, signature = token.split(".")
        data = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        data.update(changes)
        return f"{header}.{b64url(json.dumps(data).encode())}.{signature}"


class FakeCognito(TokenMinter):
    def __init__(self, *, client_id: str = CLIENT_ID, pool_id: str = POOL_ID, access_ttl: int = 3600):
        super().__init__("", client_id=client_id, access_ttl=access_ttl)
        self.pool_id = pool_id
        self.users: dict[str, FakeUser] = {}
        self.refresh_tokens: dict[str, str] = {}  # refresh token -> username
        self.sessions: dict[str, tuple[str, str]] = {}  # challenge session -> (username, challenge)
        self.requests: list[dict[str, Any]] = []
        self.jwks_fetches = 0
        self.jwks_status = 200
        self._lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    # ------------------------------------------------------------------ lifecycle
    def __enter__(self) -> FakeCognito:
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

    @property
    def issuer(self) -> str:
        return f"{self.endpoint}/{self.pool_id}"

    # ------------------------------------------------------------------ users
    def add_user(self, username: str, password: str, **kw: Any) -> FakeUser:
        user = FakeUser(username, password, **kw)
        self.users[username] = user
        return user

    # ------------------------------------------------------------------ the API
    def _challenge(self, user: FakeUser, name: str) -> dict[str, Any]:
        session = uuid.uuid4().hex
        self.sessions[session] = (user.username, name)
        parameters = {"USER_ID_FOR_SRP": user.sub}
        if name == "NEW_PASSWORD_REQUIRED":
            parameters["requiredAttributes"] = "[]"
            parameters["userAttributes"] = json.dumps({"email_verified": "true", "email": user.username})
        return {"ChallengeName": name, "Session": session, "ChallengeParameters": parameters}

    def _after_password(self, user: FakeUser) -> dict[str, Any]:
        if user.mfa_code is not None:
            return self._challenge(user, "SOFTWARE_TOKEN_MFA")
        return self._issue(user)

    def _issue(self, user: FakeUser, *, with_refresh: bool = True) -> dict[str, Any]:
        result: dict[str, Any] = {
            "AccessToken": self.token(sub=user.sub, username=user.sub),
            "ExpiresIn": self.access_ttl,
            "TokenType": "Bearer",
            "IdToken": self.token(
                sub=user.sub,
                token_use="id",
                aud=self.client_id,
                email=user.username,
                client_id=None,
                scope=None,
            ),
        }
        if with_refresh:
            refresh = "refresh-" + uuid.uuid4().hex
            self.refresh_tokens[refresh] = user.username
            result["RefreshToken"] = refresh
        return {"AuthenticationResult": result, "ChallengeParameters": {}}

    def _call(self, target: str, body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        if body.get("ClientId") != self.client_id:
            return 400, {"__type": "ResourceNotFoundException", "message": "User pool client does not exist."}
        denied = {"__type": "NotAuthorizedException", "message": "Incorrect username or password."}
        if target == "InitiateAuth":
            flow, params = body.get("AuthFlow"), body.get("AuthParameters") or {}
            if flow == "USER_PASSWORD_AUTH":
                user = self.users.get(params.get("USERNAME", ""))
                if user is None or user.password != params.get("PASSWORD"):
                    return 400, denied
                if user.temporary_password:
                    return 200, self._challenge(user, "NEW_PASSWORD_REQUIRED")
                return 200, self._after_password(user)
            if flow == "REFRESH_TOKEN_AUTH":
                username = self.refresh_tokens.get(params.get("REFRESH_TOKEN", ""))
                if username is None:
                    return 400, {"__type": "NotAuthorizedException", "message": "Invalid Refresh Token"}
                return 200, self._issue(self.users[username], with_refresh=False)
            return 400, {"__type": "InvalidParameterException", "message": f"Unsupported flow {flow}"}
        if target == "RespondToAuthChallenge":
            name = body.get("ChallengeName")
            pending = self.sessions.pop(body.get("Session", ""), None)
            responses = body.get("ChallengeResponses") or {}
            username, expected = pending if pending else (None, None)
            user = self.users.get(username or "")
            if user is None or name != expected:
                return 400, {"__type": "NotAuthorizedException", "message": "Invalid session for the user."}
            if name == "NEW_PASSWORD_REQUIRED":
                if responses.get("USERNAME") != user.sub:  # USER_ID_FOR_SRP, not the email alias
                    return 400, {
                        "__type": "NotAuthorizedException",
                        "message": "Invalid session for the user.",
                    }
                new = str(responses.get("NEW_PASSWORD") or "")
                if len(new) < PASSWORD_MIN_LENGTH or new.lower() == new or not any(c.isdigit() for c in new):
                    self.sessions[body["Session"]] = pending  # the session stays usable
                    return 400, {
                        "__type": "InvalidPasswordException",
                        "message": "Password does not conform to policy: Password not long enough",
                    }
                user.password, user.temporary_password = new, False
                return 200, self._after_password(user)
            if responses.get("SOFTWARE_TOKEN_MFA_CODE") != user.mfa_code:
                return 400, {"__type": "CodeMismatchException", "message": "Invalid code received for user"}
            return 200, self._issue(user)
        return 400, {"__type": "UnknownOperationException", "message": target}

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # quiet
                pass

            def _send(self, status: int, body: dict[str, Any], content_type: str) -> None:
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def do_GET(self) -> None:
                if self.path == f"/{fake.pool_id}/.well-known/jwks.json":
                    with fake._lock:
                        fake.jwks_fetches += 1
                    keys = fake.jwks()
                    self._send(fake.jwks_status, keys if fake.jwks_status == 200 else {}, "application/json")
                else:
                    self._send(404, {"message": "not found"}, "application/json")

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                target = self.headers.get("X-Amz-Target") or ""
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = None
                with fake._lock:
                    fake.requests.append(
                        {
                            "path": self.path,
                            "target": target,
                            "content_type": self.headers.get("Content-Type"),
                            "body": body,
                        }
                    )
                if self.path != "/" or not target.startswith(TARGET_PREFIX) or not isinstance(body, dict):
                    self._send(400, {"__type": "SerializationException"}, "application/x-amz-json-1.1")
                    return
                with fake._lock:
                    status, answer = fake._call(target.removeprefix(TARGET_PREFIX), body)
                self._send(status, answer, "application/x-amz-json-1.1")

        return Handler
