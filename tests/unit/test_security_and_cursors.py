import base64
import json
import uuid
from datetime import UTC, datetime, timedelta

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


def forged_cursor(timestamp: str) -> str:
    raw = json.dumps({"t": timestamp, "i": str(uuid.uuid4())}).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize(
    "timestamp",
    [
        "0001-01-01T00:00:00+14:00",  # before datetime.min once normalised to UTC
        "9999-12-31T23:59:59-14:00",  # after datetime.max once normalised to UTC
        "2026-01-02T03:04:05",  # naive: no instant to compare with
        "1969-12-31T23:59:59+00:00",  # older than any row can be
        "9001-01-01T00:00:00+00:00",
    ],
)
def test_forged_cursor_timestamps_are_invalid_cursors(timestamp: str) -> None:
    with pytest.raises(InvalidInputError) as err:
        Cursor.decode(forged_cursor(timestamp))
    assert err.value.code == "INVALID_CURSOR"


def test_cursor_with_an_offset_decodes_to_the_same_instant_in_utc() -> None:
    decoded = Cursor.decode(forged_cursor("2026-01-02T05:04:05+02:00"))
    assert decoded.created_at == datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert decoded.created_at.utcoffset() == timedelta(0)
