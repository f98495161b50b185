"""The Cognito access-token verifier (``ytresearch.web.jwt``) on its own: every claim check, every
forged-token trick, and the key set cache (TTL, refetch on an unknown kid, rate limit, outages).

The key set is served by an ``httpx.MockTransport`` and time is a fake clock: no network."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from tests.fakes.cognito import CLIENT_ID, SCOPE, SigningKey, TokenMinter
from ytresearch.web.jwt import (
    CognitoTokenVerifier,
    JwksCache,
    KeySetUnavailableError,
    TokenError,
    TokenExpiredError,
)

ISSUER = "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Unit"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class KeyServer:
    """The issuer's JWKS endpoint: counts requests, can fail or serve anything."""

    def __init__(self, minter: TokenMinter) -> None:
        self.minter = minter
        self.requests = 0
        self.status = 200
        self.document: Any = None
        self.fail_connect = False

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        assert request.url == f"{ISSUER}/.well-known/jwks.json"
        if self.fail_connect:
            raise httpx.ConnectError("connection refused", request=request)
        body = self.document if self.document is not None else self.minter.jwks()
        return httpx.Response(self.status, json=body)


@pytest.fixture(scope="module")
def minter() -> TokenMinter:
    return TokenMinter(ISSUER)


@pytest.fixture
def keyserver(minter: TokenMinter) -> KeyServer:
    minter.keys = minter.keys[:2]  # undo rotations made by other tests
    return KeyServer(minter)


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def verifier(keyserver: KeyServer, clock: Clock) -> CognitoTokenVerifier:
    keys = JwksCache(
        f"{ISSUER}/.well-known/jwks.json",
        cache_seconds=3600,
        refetch_min_seconds=30,
        clock=clock,
        http=httpx.Client(transport=httpx.MockTransport(keyserver.handle)),
    )
    return CognitoTokenVerifier(issuer=ISSUER, client_id=CLIENT_ID, scope=SCOPE, keys=keys, leeway_seconds=30)


def rejected(verifier: CognitoTokenVerifier, token: str) -> TokenError:
    with pytest.raises(TokenError) as caught:
        verifier.verify(token)
    return caught.value


# ------------------------------------------------------------------ what a valid token gives


def test_a_valid_access_token_gives_its_subject_username_and_scopes(
    verifier: CognitoTokenVerifier, minter: TokenMinter
) -> None:
    token = minter.token(sub="2f1e-sub", username="alice@example.com")

    access = verifier.verify(token)

    assert access.subject == "2f1e-sub"
    assert access.username == "alice@example.com"
    assert SCOPE in access.scopes and access.client_id == CLIENT_ID


def test_a_token_signed_with_the_second_published_key_is_accepted(
    verifier: CognitoTokenVerifier, minter: TokenMinter
) -> None:
    assert verifier.verify(minter.token(key=minter.keys[1])).subject


def test_expiry_has_a_small_leeway_for_clock_skew(
    verifier: CognitoTokenVerifier, minter: TokenMinter
) -> None:
    just_expired = minter.token(exp=int(time.time()) - 5)

    assert verifier.verify(just_expired).subject


# ------------------------------------------------------------------ claim checks


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        ({"iss": "https://cognito-idp.us-east-1.amazonaws.com/us-east-1_Other"}, "another issuer"),
        ({"iss": ISSUER + "/"}, "another issuer"),
        ({"token_use": "id"}, "not an access token"),
        ({"client_id": "some-other-client"}, "another app client"),
        ({"scope": "aws.cognito.signin.user.admin openid"}, f"lacks the {SCOPE} scope"),
        ({"scope": None}, f"lacks the {SCOPE} scope"),
        ({"scope": f"{SCOPE}x"}, f"lacks the {SCOPE} scope"),  # a prefix is not the scope
        ({"token_use": None}, "no token_use claim"),
        ({"client_id": None}, "no client_id claim"),
        ({"sub": None}, "no sub claim"),
        ({"exp": None}, "no exp claim"),
        ({"nbf": int(time.time()) + 3600}, "not valid"),
    ],
)
def test_claims_that_do_not_match_are_refused(
    verifier: CognitoTokenVerifier, minter: TokenMinter, claims: dict[str, Any], reason: str
) -> None:
    error = rejected(verifier, minter.token(**claims))

    assert error.code == "INVALID_TOKEN"
    assert reason in error.reason


def test_an_expired_token_is_refused_as_expired(verifier: CognitoTokenVerifier, minter: TokenMinter) -> None:
    error = rejected(verifier, minter.token(exp=int(time.time()) - 120, iat=int(time.time()) - 4000))

    assert isinstance(error, TokenExpiredError) and error.code == "TOKEN_EXPIRED"


# ------------------------------------------------------------------ forged tokens


def test_alg_none_is_refused_without_fetching_keys(
    verifier: CognitoTokenVerifier, minter: TokenMinter, keyserver: KeyServer
) -> None:
    error = rejected(verifier, minter.unsigned_token())

    assert "algorithm" in error.reason
    assert keyserver.requests == 0


def test_hs256_signed_with_the_public_key_is_refused(
    verifier: CognitoTokenVerifier, minter: TokenMinter
) -> None:
    assert "algorithm" in rejected(verifier, minter.hmac_with_public_key_token()).reason


@pytest.mark.parametrize("algorithm", ["RS512", "PS256"])
def test_other_rsa_algorithms_are_refused(
    verifier: CognitoTokenVerifier, minter: TokenMinter, algorithm: str
) -> None:
    assert "algorithm" in rejected(verifier, minter.token(algorithm=algorithm)).reason


def test_a_tampered_payload_fails_the_signature(verifier: CognitoTokenVerifier, minter: TokenMinter) -> None:
    token = minter.tampered(minter.token(sub="mallory"), sub="alice")

    assert "signature" in rejected(verifier, token).reason


def test_a_token_signed_by_a_key_nobody_published_is_refused(
    verifier: CognitoTokenVerifier, minter: TokenMinter
) -> None:
    stranger = SigningKey("key-1")  # claims a published kid, but is another key

    assert "signature" in rejected(verifier, minter.token(key=stranger)).reason


def test_an_unknown_kid_is_refused(verifier: CognitoTokenVerifier, minter: TokenMinter) -> None:
    assert "unknown key" in rejected(verifier, minter.token(key=SigningKey("never-published"))).reason


@pytest.mark.parametrize("token", ["", "not-a-jwt", "a.b.c", "x" * 9000])
def test_garbage_is_refused_as_malformed(verifier: CognitoTokenVerifier, token: str) -> None:
    error = rejected(verifier, token)

    assert error.code == "INVALID_TOKEN" and "malformed" in error.reason


def test_a_missing_kid_is_refused(verifier: CognitoTokenVerifier, minter: TokenMinter) -> None:
    import jwt

    token = jwt.encode(minter.claims(), minter.keys[0].private, algorithm="RS256")  # no kid header

    assert "signing key" in rejected(verifier, token).reason


# ------------------------------------------------------------------ the key set cache


def test_the_key_set_is_fetched_once_and_cached_until_its_ttl(
    verifier: CognitoTokenVerifier, minter: TokenMinter, keyserver: KeyServer, clock: Clock
) -> None:
    for _ in range(5):
        verifier.verify(minter.token())
    assert keyserver.requests == 1

    clock.now += 3601
    verifier.verify(minter.token())

    assert keyserver.requests == 2


def test_an_unknown_kid_refetches_once_then_is_rate_limited(
    verifier: CognitoTokenVerifier, minter: TokenMinter, keyserver: KeyServer, clock: Clock
) -> None:
    verifier.verify(minter.token())
    clock.now += 60

    for _ in range(5):
        rejected(verifier, minter.token(key=SigningKey(f"made-up-{_}")))

    assert keyserver.requests == 2  # the first load, then one refetch for all five made-up kids


def test_rotated_keys_are_picked_up_by_the_refetch(
    verifier: CognitoTokenVerifier, minter: TokenMinter, keyserver: KeyServer, clock: Clock
) -> None:
    verifier.verify(minter.token())
    rotated = SigningKey("key-3")
    minter.keys.append(rotated)
    clock.now += 31

    assert verifier.verify(minter.token(key=rotated)).subject
    assert keyserver.requests == 2


def test_a_failed_refresh_keeps_the_old_keys(
    verifier: CognitoTokenVerifier, minter: TokenMinter, keyserver: KeyServer, clock: Clock
) -> None:
    verifier.verify(minter.token())
    keyserver.fail_connect = True
    clock.now += 3601

    assert verifier.verify(minter.token()).subject
    assert verifier.verify(minter.token()).subject
    assert keyserver.requests == 2  # no retry on every request while the issuer is down


@pytest.mark.parametrize("failure", ["connect", "status", "not-a-key-set"])
def test_no_key_set_at_all_is_a_dependency_outage(
    verifier: CognitoTokenVerifier, minter: TokenMinter, keyserver: KeyServer, failure: str
) -> None:
    if failure == "connect":
        keyserver.fail_connect = True
    elif failure == "status":
        keyserver.status = 500
    else:
        keyserver.document = {"keys": "nope"}

    with pytest.raises(KeySetUnavailableError):
        verifier.verify(minter.token())


def test_keys_not_meant_for_rs256_signatures_are_ignored(
    verifier: CognitoTokenVerifier, minter: TokenMinter, keyserver: KeyServer
) -> None:
    good = minter.keys[0].jwk()
    keyserver.document = {
        "keys": [
            {**good, "alg": "RS512"},
            {**good, "use": "enc", "kid": "enc"},
            {"kty": "oct", "kid": "sym", "k": "c2VjcmV0"},
            {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
        ]
    }

    assert "unknown key" in rejected(verifier, minter.token()).reason
