"""Admin actions on users and API keys, as one request/answer pair of plain JSON values: the admin
Lambda function and `ytr-admin` (direct to the database) run the same code, so both answer alike."""

from __future__ import annotations

from typing import Any

from ytresearch.errors import InvalidInputError
from ytresearch.repository import Store
from ytresearch.services.users import (
    KeyCache,
    create_api_key,
    create_user,
    list_keys,
    normalize_email,
    revoke_key,
)

ACTIONS = ("create-user", "create-key", "list-keys", "revoke-key")


def _text(request: dict[str, Any], name: str, *, required: bool) -> str | None:
    value = request.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InvalidInputError(f"give {name!r} as a non-empty string", code="INVALID_ADMIN_REQUEST")
    return value


def run_admin_action(store: Store, request: Any, *, cache: KeyCache | None = None) -> dict[str, Any]:
    """Run ``{"action": ..., "email": ..., "key_id" | "prefix": ...}``; returns the JSON answer
    (a new key appears in it once) and raises AppError for anything refused."""
    if not isinstance(request, dict):
        raise InvalidInputError(
            "the request must be a JSON object with an action", code="INVALID_ADMIN_REQUEST"
        )
    action = request.get("action")
    if action not in ACTIONS:
        raise InvalidInputError(
            f"unknown action {action!r}: use one of {', '.join(ACTIONS)}",
            code="UNKNOWN_ACTION",
            details={"actions": list(ACTIONS)},
        )
    email = _text(request, "email", required=True)
    assert email is not None
    if action == "create-user":
        user, key = create_user(store, email)
        return {"user": {"id": str(user.id), "email": user.email}, "api_key": key}
    if action == "create-key":
        key = create_api_key(store, email)
        return {"email": normalize_email(email), "api_key": key}
    if action == "list-keys":
        return {"keys": [info.as_json() for info in list_keys(store, email)]}
    info = revoke_key(
        store,
        email,
        key_id=_text(request, "key_id", required=False),
        prefix=_text(request, "prefix", required=False),
        cache=cache,
    )
    return {"revoked": info.as_json()}
