"""API keys: generated with high entropy, shown once, stored only as a SHA-256 digest.

A fast digest is the right tool here (unlike passwords): keys are 256-bit random values, so there
is nothing to brute-force, and lookups must be cheap on every request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

KEY_PREFIX = "ytr_"


def generate_api_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def key_display_prefix(key: str) -> str:
    """The first characters of a key, kept so a person can tell their keys apart."""
    return key[: len(KEY_PREFIX) + 6]


def digests_match(a: str, b: str) -> bool:
    return hmac.compare_digest(a, b)
