"""Small pieces behind revocation and the first sign-in: the key cache's eviction, the ARN's
region for `ytr-admin --deployed`, and a new-password challenge ytr cannot complete."""

from __future__ import annotations

import uuid

import pytest

from ytr.auth import _new_password_responses
from ytr.errors import CliError
from ytresearch.admin_cli import _region_of
from ytresearch.services.users import AuthUser, KeyCache


def test_a_discarded_key_is_gone_from_the_cache_and_others_stay() -> None:
    now = [0.0]
    cache = KeyCache(ttl=5, clock=lambda: now[0])
    alice, bob = AuthUser(uuid.uuid4(), "a@example.com"), AuthUser(uuid.uuid4(), "b@example.com")
    cache.put("alice", alice)
    cache.put("bob", bob)

    cache.discard("alice")
    cache.discard("never-cached")

    assert cache.get("alice") is None and cache.get("bob") == bob
    now[0] += 5.01
    assert cache.get("bob") is None


@pytest.mark.parametrize(
    ("function", "region"),
    [
        ("arn:aws:lambda:eu-west-1:123456789012:function:YtResearch-dev-Admin", "eu-west-1"),
        ("arn:aws:lambda:us-east-2:123456789012:function:YtResearch-dev-Admin:live", "us-east-2"),
        ("YtResearch-dev-Admin", None),
        ("123456789012:function:YtResearch-dev-Admin", None),
    ],
)
def test_the_region_comes_from_a_function_arn(function: str, region: str | None) -> None:
    assert _region_of(function) == region


def test_a_new_password_challenge_that_also_wants_attributes_points_to_the_hosted_ui() -> None:
    answer = {
        "ChallengeName": "NEW_PASSWORD_REQUIRED",
        "ChallengeParameters": {"USER_ID_FOR_SRP": "abc", "requiredAttributes": '["userAttributes.name"]'},
    }

    with pytest.raises(CliError) as err:
        _new_password_responses("you@example.com", answer, lambda: pytest.fail("must not ask"))

    assert (
        err.value.code == "LOGIN_CHALLENGE"
        and "name" in err.value.message
        and "hosted UI" in err.value.message
    )
