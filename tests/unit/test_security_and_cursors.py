import uuid
from datetime import UTC, datetime

import pytest

from ytresearch.errors import InvalidInputError
from ytresearch.pagination import Cursor
from ytresearch.security import generate_api_key, hash_api_key, key_display_prefix


def test_generated_keys_are_long_random_and_prefixed() -> None:
    keys = {generate_api_key() for _ in range(100)}
    assert len(keys) == 100
    assert all(k.startswith("ytr_") and len(k) >= 40 for k in keys)


def test_key_hash_is_stable_hex_and_never_the_key() -> None:
    key = generate_api_key()
    digest = hash_api_key(key)
    assert digest == hash_api_key(key)
    assert len(digest) == 64 and key not in digest
    assert hash_api_key(key + "x") != digest


def test_display_prefix_is_short() -> None:
    assert key_display_prefix("ytr_abcdefghijk") == "ytr_abcdef"


def test_cursor_round_trips() -> None:
    c = Cursor(datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=UTC), uuid.uuid4())
    assert Cursor.decode(c.encode()) == c


@pytest.mark.parametrize("token", ["", "not-base64!", "eyJ4IjoxfQ", "e30", "////"])
def test_bad_cursors_are_a_clear_400(token: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        Cursor.decode(token)
    assert err.value.code == "INVALID_CURSOR"


def test_key_cache_remembers_only_for_its_ttl(monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from ytresearch.services.users import AuthUser, KeyCache

    now = [1000.0]
    monkeypatch.setattr(time, "monotonic", lambda: now[0])
    cache = KeyCache(ttl=30)
    user = AuthUser(uuid.uuid4(), "a@example.com")
    cache.put("digest", user)
    assert cache.get("digest") == user and cache.get("other") is None
    now[0] += 31
    assert cache.get("digest") is None
