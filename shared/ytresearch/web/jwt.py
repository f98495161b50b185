"""Verifying Cognito access tokens: a small adapter over PyJWT and httpx that knows nothing of
users or HTTP frameworks.

A token is accepted only when all of these hold:

- the header names ``alg: RS256`` (``none``, HS256 and everything else are refused before any key
  is looked at, so a public key can never be used as an HMAC secret) and a ``kid`` found in the
  issuer's key set (``{issuer}/.well-known/jwks.json``);
- the RS256 signature verifies with that key;
- ``iss`` is the configured issuer, ``token_use`` is ``access`` (ID tokens are refused),
  ``client_id`` is the configured app client, ``exp`` is in the future (with a small leeway for
  clock skew) and the space-separated ``scope`` contains the configured scope.

The key set is cached for ``cache_seconds``. A ``kid`` that is not in the cache (Cognito rotated
its keys) triggers one fetch, at most every ``refetch_min_seconds``, so tokens with made-up key
ids cannot make us hammer the issuer. When a refresh fails the previous keys stay in use.

Nothing here ever logs a token; rejections are logged with their reason only.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

log = logging.getLogger("ytresearch.auth")

ALGORITHM = "RS256"
MAX_TOKEN_CHARS = 8192  # Cognito access tokens are ~1 KB; anything this big is not one
MAX_KEYS = 20  # Cognito publishes two; a huge set is not a Cognito key set
MAX_SUBJECT_CHARS = 255


class TokenError(Exception):
    """The token is not acceptable. ``code`` is INVALID_TOKEN or TOKEN_EXPIRED; ``reason`` is a
    short phrase safe to show the caller (it never contains the token)."""

    code = "INVALID_TOKEN"

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class TokenExpiredError(TokenError):
    code = "TOKEN_EXPIRED"


class KeySetUnavailableError(Exception):
    """The issuer's key set could not be fetched and none is cached: no token can be checked."""


@dataclass(frozen=True)
class AccessToken:
    """The verified claims we use."""

    subject: str
    username: str | None
    client_id: str
    scopes: frozenset[str]
    expires_at: int


class JwksCache:
    """The issuer's public keys by ``kid``, fetched with httpx and cached (thread-safe)."""

    def __init__(
        self,
        url: str,
        *,
        cache_seconds: float = 3600.0,
        refetch_min_seconds: float = 30.0,
        timeout: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        http: httpx.Client | None = None,
    ) -> None:
        self.url = url
        self.cache_seconds = cache_seconds
        self.refetch_min_seconds = refetch_min_seconds
        self.timeout = timeout
        self.clock = clock
        self.http = http
        self.fetches = 0  # for tests and metrics: how often the key set was requested
        self._keys: dict[str, Any] | None = None
        self._fresh_until = 0.0
        self._last_attempt: float | None = None
        self._lock = threading.Lock()

    def key(self, kid: str) -> Any:
        """The public key for ``kid``. Raises TokenError for an unknown kid and
        KeySetUnavailableError when there is no key set at all."""
        with self._lock:
            now = self.clock()
            if self._keys is None or now >= self._fresh_until:
                self._refresh(now)
            assert self._keys is not None
            key = self._keys.get(kid)
            if key is None and self._may_refetch(now):
                self._refresh(now)  # the issuer may have rotated its keys since we cached them
                key = self._keys.get(kid)
        if key is None:
            raise TokenError("the token is signed with an unknown key")
        return key

    def _may_refetch(self, now: float) -> bool:
        return self._last_attempt is None or now - self._last_attempt >= self.refetch_min_seconds

    def _refresh(self, now: float) -> None:
        if self._keys is not None and not self._may_refetch(now):
            return
        self._last_attempt = now
        try:
            keys = self._fetch()
        except (httpx.HTTPError, ValueError) as exc:
            if self._keys is None:
                log.warning("cannot fetch the token signing keys from %s: %s", self.url, exc)
                raise KeySetUnavailableError(str(exc)) from None
            # Keep the keys we have; try again after the rate limit rather than on every request.
            log.warning(
                "cannot refresh the token signing keys from %s (keeping the old ones): %s", self.url, exc
            )
            self._fresh_until = now + self.refetch_min_seconds
            return
        self._keys = keys
        self._fresh_until = now + self.cache_seconds

    def _fetch(self) -> dict[str, Any]:
        self.fetches += 1
        if self.http is not None:
            response = self.http.get(self.url, timeout=self.timeout)
        else:
            response = httpx.get(self.url, timeout=self.timeout)
        if response.status_code != 200:
            raise ValueError(f"{self.url} answered {response.status_code}")
        document = response.json()
        entries = document.get("keys") if isinstance(document, dict) else None
        if not isinstance(entries, list) or len(entries) > MAX_KEYS:
            raise ValueError(f"{self.url} is not a JSON Web Key Set")
        keys: dict[str, Any] = {}
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            kid = entry.get("kid")
            if (
                not isinstance(kid, str)
                or entry.get("kty") != "RSA"
                or entry.get("alg", ALGORITHM) != ALGORITHM
                or entry.get("use", "sig") != "sig"
            ):
                continue  # not a key we would ever verify RS256 signatures with
            try:
                keys[kid] = jwt.PyJWK(entry, algorithm=ALGORITHM).key
            except jwt.PyJWTError:
                log.warning("ignoring a malformed key %r in %s", kid, self.url)
        return keys


class CognitoTokenVerifier:
    """Checks Cognito access tokens for one issuer, app client and scope."""

    def __init__(
        self,
        *,
        issuer: str,
        client_id: str,
        scope: str,
        keys: JwksCache | None = None,
        leeway_seconds: float = 30.0,
        cache_seconds: float = 3600.0,
        refetch_min_seconds: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        self.issuer = issuer.rstrip("/")
        self.client_id = client_id
        self.scope = scope
        self.leeway = leeway_seconds
        self.keys = keys or JwksCache(
            f"{self.issuer}/.well-known/jwks.json",
            cache_seconds=cache_seconds,
            refetch_min_seconds=refetch_min_seconds,
            timeout=timeout,
        )

    def verify(self, token: str) -> AccessToken:
        """The token's claims if it passes every check; TokenError (or TokenExpiredError)
        otherwise, and KeySetUnavailableError when the issuer's keys cannot be had."""
        try:
            return self._verify(token)
        except TokenError as exc:
            log.info("bearer token refused: %s", exc.reason)
            raise

    def _verify(self, token: str) -> AccessToken:
        if not token or len(token) > MAX_TOKEN_CHARS:
            raise TokenError("the token is malformed")
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError:
            raise TokenError("the token is malformed") from None
        if header.get("alg") != ALGORITHM:
            raise TokenError("the token's signing algorithm is not accepted")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise TokenError("the token names no signing key")
        # Checked before any key lookup, so foreign tokens never cause a key set fetch.
        if unverified.get("iss") != self.issuer:
            raise TokenError("the token is from another issuer")
        key = self.keys.key(kid)
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=[ALGORITHM],
                issuer=self.issuer,
                leeway=self.leeway,
                # Cognito access tokens carry client_id, not aud; both are checked below.
                options={
                    "require": ["exp", "iat", "iss", "sub", "token_use", "client_id"],
                    "verify_aud": False,
                },
            )
        except jwt.ExpiredSignatureError:
            raise TokenExpiredError("the token has expired") from None
        except jwt.InvalidSignatureError:
            raise TokenError("the token's signature does not verify") from None
        except jwt.MissingRequiredClaimError as exc:
            raise TokenError(f"the token has no {exc.claim} claim") from None
        except jwt.InvalidIssuerError:
            raise TokenError("the token is from another issuer") from None
        except jwt.PyJWTError:
            raise TokenError("the token is not valid") from None
        if claims.get("token_use") != "access":
            raise TokenError("this is not an access token (send the access token, not the ID token)")
        if claims.get("client_id") != self.client_id:
            raise TokenError("the token was issued to another app client")
        scope = claims.get("scope")
        scopes = frozenset(scope.split()) if isinstance(scope, str) else frozenset()
        if self.scope not in scopes:
            raise TokenError(f"the token lacks the {self.scope} scope")
        subject = claims.get("sub")
        if not isinstance(subject, str) or not subject or len(subject) > MAX_SUBJECT_CHARS:
            raise TokenError("the token names no valid subject")
        username = claims.get("username")
        return AccessToken(
            subject=subject,
            username=username if isinstance(username, str) and username else None,
            client_id=self.client_id,
            scopes=scopes,
            expires_at=int(claims["exp"]),
        )
