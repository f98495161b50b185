"""Signing in with Cognito: `ytr login` / `ytr logout` and refreshing the saved access token.

The client talks to Cognito's user pool API directly over HTTPS (no AWS SDK, no AWS credentials:
these calls are public, keyed by the app client id): ``POST https://cognito-idp.<region>.amazonaws.com/``
with ``X-Amz-Target: AWSCognitoIdentityProviderService.InitiateAuth`` and an
``application/x-amz-json-1.1`` body. ``USER_PASSWORD_AUTH`` signs in (a new password is asked
for when the user still has the temporary one from ``admin-create-user``, a TOTP code when the user
turned MFA on), ``REFRESH_TOKEN_AUTH`` renews the access token when it is about to expire. Tokens
are kept in the config file (0600); passwords never are.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from ytr.config import ClientSettings, write_config
from ytr.errors import (
    EXIT_AUTH,
    EXIT_RATE_LIMITED,
    EXIT_UNAVAILABLE,
    EXIT_USAGE,
    CliError,
)

TARGET = "AWSCognitoIdentityProviderService."
CONTENT_TYPE = "application/x-amz-json-1.1"
REFRESH_MARGIN_SECONDS = 60  # refresh a token this long before it expires (clock skew, slow calls)
TOKEN_KEYS = ("access_token", "refresh_token", "token_expires_at")
_REGION = re.compile(r"^[a-z]{2}(-[a-z]+)+-\d$")


@dataclass(frozen=True)
class Tokens:
    access_token: str
    refresh_token: str | None
    expires_at: int | None

    def as_config(self) -> dict[str, str]:
        values = {"access_token": self.access_token}
        if self.refresh_token:
            values["refresh_token"] = self.refresh_token
        if self.expires_at is not None:
            values["token_expires_at"] = str(self.expires_at)
        return values


def token_claims(token: str) -> dict[str, Any]:
    """The payload of a JWT, unverified (the server verifies; we only read ``exp`` and
    ``token_use`` to schedule refreshes and catch an ID token pasted by mistake)."""
    parts = token.split(".")
    if len(parts) != 3:
        raise CliError(
            "INVALID_TOKEN", "that is not a JWT access token (three dot-separated parts)", EXIT_USAGE
        )
    try:
        payload = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(payload))
    except (binascii.Error, ValueError):
        raise CliError(
            "INVALID_TOKEN", "that is not a JWT access token (unreadable payload)", EXIT_USAGE
        ) from None
    if not isinstance(claims, dict):
        raise CliError("INVALID_TOKEN", "that is not a JWT access token", EXIT_USAGE)
    return claims


def cognito_endpoint(region: str | None, endpoint: str | None) -> str:
    if endpoint:
        return endpoint
    if not region or not _REGION.match(region):
        raise CliError(
            "MISSING_COGNITO_REGION",
            "give the user pool's region with --region (or YTR_COGNITO_REGION), e.g. us-east-1",
            EXIT_USAGE,
        )
    return f"https://cognito-idp.{region}.amazonaws.com/"


class CognitoClient:
    """The three user pool calls the CLI needs, as plain HTTPS POSTs (httpx)."""

    def __init__(self, endpoint: str, client_id: str, *, timeout: float = 15.0, http: Any = None) -> None:
        import httpx

        self.endpoint = endpoint
        self.client_id = client_id
        self.http = http or httpx.Client(timeout=httpx.Timeout(timeout, connect=10.0))

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> CognitoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def call(self, operation: str, body: dict[str, Any]) -> dict[str, Any]:
        import httpx

        from ytr.client import transport_error

        try:
            response = self.http.post(
                self.endpoint,
                content=json.dumps({"ClientId": self.client_id, **body}),
                headers={"Content-Type": CONTENT_TYPE, "X-Amz-Target": TARGET + operation},
            )
        except httpx.TransportError as exc:
            raise transport_error(exc, self.endpoint) from None
        try:
            data = response.json()
        except ValueError:
            data = None
        if response.status_code != 200 or not isinstance(data, dict):
            raise _cognito_error(response.status_code, data)
        return data

    def password_sign_in(
        self,
        username: str,
        password: str,
        mfa_code: Callable[[], str],
        new_password: Callable[[], str] | None = None,
    ) -> Tokens:
        """Sign in; ``new_password`` is asked for when Cognito requires one (a user created with
        ``admin-create-user`` signs in first with a temporary password), ``mfa_code`` for MFA."""
        answer = self.call(
            "InitiateAuth",
            {
                "AuthFlow": "USER_PASSWORD_AUTH",
                "AuthParameters": {"USERNAME": username, "PASSWORD": password},
            },
        )
        for _ in range(3):  # a challenge may follow another (a new password, then MFA)
            challenge = answer.get("ChallengeName")
            if not challenge:
                return _tokens(answer)
            if challenge == "SOFTWARE_TOKEN_MFA":
                responses = {"USERNAME": username, "SOFTWARE_TOKEN_MFA_CODE": mfa_code()}
            elif challenge == "NEW_PASSWORD_REQUIRED" and new_password is not None:
                responses = _new_password_responses(username, answer, new_password)
            else:
                raise _unsupported_challenge(str(challenge))
            answer = self.call(
                "RespondToAuthChallenge",
                {
                    "ChallengeName": challenge,
                    "Session": answer.get("Session"),
                    "ChallengeResponses": responses,
                },
            )
        raise CliError("LOGIN_FAILED", "sign-in did not finish (too many challenges)", EXIT_AUTH)

    def refresh(self, refresh_token: str) -> Tokens:
        try:
            answer = self.call(
                "InitiateAuth",
                {"AuthFlow": "REFRESH_TOKEN_AUTH", "AuthParameters": {"REFRESH_TOKEN": refresh_token}},
            )
        except CliError as exc:
            if exc.exit_code == EXIT_AUTH:
                raise CliError(
                    "SESSION_EXPIRED",
                    "your sign-in has expired or was revoked: run `ytr login` again",
                    EXIT_AUTH,
                ) from None
            raise
        tokens = _tokens(answer)
        # Without refresh-token rotation Cognito sends no new refresh token: keep the old one.
        return Tokens(tokens.access_token, tokens.refresh_token or refresh_token, tokens.expires_at)


def _tokens(answer: dict[str, Any]) -> Tokens:
    result = answer.get("AuthenticationResult")
    if not isinstance(result, dict) or not isinstance(result.get("AccessToken"), str):
        raise CliError("LOGIN_FAILED", "Cognito answered without tokens", EXIT_UNAVAILABLE)
    access = result["AccessToken"]
    expires_at = None
    with_exp = token_claims(access).get("exp")
    if isinstance(with_exp, int | float):
        expires_at = int(with_exp)
    elif isinstance(result.get("ExpiresIn"), int):
        expires_at = int(time.time()) + int(result["ExpiresIn"])
    refresh = result.get("RefreshToken")
    return Tokens(access, refresh if isinstance(refresh, str) else None, expires_at)


def _new_password_responses(
    username: str, answer: dict[str, Any], new_password: Callable[[], str]
) -> dict[str, str]:
    parameters = answer.get("ChallengeParameters") or {}
    try:
        required = json.loads(parameters.get("requiredAttributes") or "[]")
    except ValueError:
        required = []
    if required:
        # Attributes the pool requires and the admin did not set: the hosted UI asks for them.
        names = ", ".join(str(name).removeprefix("userAttributes.") for name in required)
        raise CliError(
            "LOGIN_CHALLENGE",
            f"Cognito asks for a new password and for {names}: sign in once in the hosted UI",
            EXIT_AUTH,
        )
    # The user's Cognito user name (the sub when people sign in by email), which the challenge
    # answer must name.
    user_id = parameters.get("USER_ID_FOR_SRP") or username
    return {"USERNAME": str(user_id), "NEW_PASSWORD": new_password()}


def _unsupported_challenge(challenge: str) -> CliError:
    hints = {
        "NEW_PASSWORD_REQUIRED": "set a new password first (sign in once in the hosted UI, or ask an "
        "admin to run `aws cognito-idp admin-set-user-password --permanent`)",
        "MFA_SETUP": "set up an authenticator app first (in the hosted UI)",
    }
    detail = hints.get(challenge, "this sign-in step is not supported by ytr; use the hosted UI")
    return CliError("LOGIN_CHALLENGE", f"Cognito asks for {challenge}: {detail}", EXIT_AUTH)


def _cognito_error(status: int, data: Any) -> CliError:
    kind, message = "UnknownError", f"Cognito answered {status}"
    if isinstance(data, dict):
        kind = str(data.get("__type") or kind).rsplit("#", 1)[-1]
        message = str(data.get("message") or data.get("Message") or message)
    if kind in ("NotAuthorizedException", "UserNotFoundException", "CodeMismatchException"):
        return CliError("LOGIN_FAILED", message, EXIT_AUTH)
    if kind in ("PasswordResetRequiredException", "UserNotConfirmedException", "ExpiredCodeException"):
        return CliError("LOGIN_FAILED", message, EXIT_AUTH)
    if kind in ("TooManyRequestsException", "LimitExceededException", "TooManyFailedAttemptsException"):
        return CliError("RATE_LIMITED", message, EXIT_RATE_LIMITED)
    if kind == "InvalidPasswordException":  # a new password below the pool's policy
        return CliError(
            "INVALID_NEW_PASSWORD",
            f"{message}; run `ytr login` again with the temporary password",
            EXIT_USAGE,
        )
    if kind in ("ResourceNotFoundException", "InvalidParameterException"):
        return CliError("INVALID_COGNITO_SETTINGS", f"{message} (check the client id and region)", EXIT_USAGE)
    return CliError("COGNITO_ERROR", f"{kind}: {message}", EXIT_UNAVAILABLE if status >= 500 else EXIT_AUTH)


def needs_refresh(expires_at: int | None, now: float | None = None) -> bool:
    if expires_at is None:
        return False
    return (now if now is not None else time.time()) >= expires_at - REFRESH_MARGIN_SECONDS


def fresh_settings(settings: ClientSettings, *, now: float | None = None) -> ClientSettings:
    """``settings`` with a usable access token: the saved token is refreshed (and saved again)
    when it is about to expire. Tokens from the environment are used as given."""
    if settings.access_token is None or settings.token_source != str(settings.config_path):
        return settings
    if not needs_refresh(settings.token_expires_at, now):
        return settings
    if not settings.refresh_token or not settings.cognito_client_id:
        raise CliError(
            "TOKEN_EXPIRED", "the saved access token has expired: run `ytr login` again", EXIT_AUTH
        )
    endpoint = cognito_endpoint(settings.cognito_region, settings.cognito_endpoint)
    with CognitoClient(endpoint, settings.cognito_client_id) as cognito:
        tokens = cognito.refresh(settings.refresh_token)
    write_config(settings.config_path, tokens.as_config())
    return replace(
        settings,
        access_token=tokens.access_token,
        refresh_token=tokens.refresh_token,
        token_expires_at=tokens.expires_at,
    )
