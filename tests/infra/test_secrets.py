"""No secret value ever appears in a template: secrets are generated or set out of band and read
by the code at run time through ARNs."""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import pytest

from tests.infra.synth import CONFIGURATIONS, Synth, is_intrinsic

SENSITIVE_KEY = re.compile(r"pass(word|wd)|secretstring|api_?key|token|private_?key", re.I)
# Keys that name secret *settings*, not values.
STRUCTURAL_KEYS = {
    "SecretStringTemplate",
    "GenerateSecretString",
    "GenerateStringKey",
    "PasswordLength",
    # Cognito: lifetimes and switches of passwords and tokens
    "TemporaryPasswordValidityDays",
    "AccessTokenValidity",
    "IdTokenValidity",
    "RefreshTokenValidity",
    "EnableTokenRevocation",
    # EC2 instance metadata: "required" makes the NAT instance use IMDSv2 session tokens
    "HttpTokens",
}
# Settings objects whose member names look sensitive (TokenValidityUnits/AccessToken: "minutes").
STRUCTURAL_PARENTS = ("/TokenValidityUnits/",)
SECRET_VALUE = re.compile(r"sk-ant-|-----BEGIN [A-Z ]*PRIVATE KEY-----|AKIA[0-9A-Z]{16}")
# An environment variable whose name says "secret" must carry a reference (an ARN), not a value.
SECRET_ENV_NAME = re.compile(r"(KEY|PASSWORD|TOKEN|SECRET)(?!_ARN$)", re.I)


@pytest.fixture(params=sorted(CONFIGURATIONS))
def synth(request: pytest.FixtureRequest) -> Synth:
    return request.getfixturevalue(f"{request.param}_synth")


def _literals(node: Any, path: str = "") -> Iterator[tuple[str, str, Any]]:
    """(path, key, value) for every literal value in the template."""
    if isinstance(node, dict):
        for key, value in node.items():
            child = f"{path}/{key}"
            if isinstance(value, str | int | float | bool):
                yield child, key, value
            else:
                yield from _literals(value, child)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from _literals(value, f"{path}[{index}]")


def _environments(synth: Synth) -> Iterator[tuple[str, str, Any]]:
    for logical_id, function in synth.of_type("AWS::Lambda::Function").items():
        variables = function["Properties"].get("Environment", {}).get("Variables", {})
        for name, value in variables.items():
            yield logical_id, name, value
    for logical_id, task in synth.of_type("AWS::ECS::TaskDefinition").items():
        for container in task["Properties"]["ContainerDefinitions"]:
            for entry in container.get("Environment", []):
                yield logical_id, entry["Name"], entry["Value"]


def test_no_sensitive_key_holds_a_literal_value(synth: Synth) -> None:
    offenders = [
        (path, value)
        for path, key, value in _literals(synth.template)
        if SENSITIVE_KEY.search(key)
        and key not in STRUCTURAL_KEYS
        and not any(parent in path for parent in STRUCTURAL_PARENTS)
    ]

    assert offenders == []


def test_no_secret_looking_value_anywhere(synth: Synth) -> None:
    offenders = [
        path
        for path, _, value in _literals(synth.template)
        if isinstance(value, str) and SECRET_VALUE.search(value)
    ]

    assert offenders == []


def test_generated_secret_templates_carry_no_password(synth: Synth) -> None:
    for path, key, value in _literals(synth.template):
        if key == "SecretStringTemplate":
            assert "password" not in str(value).lower(), path


def test_secrets_are_generated_not_given_a_value(synth: Synth) -> None:
    secrets = synth.of_type("AWS::SecretsManager::Secret")

    assert len(secrets) >= 2
    for logical_id, secret in secrets.items():
        assert "SecretString" not in secret["Properties"], logical_id


def test_database_password_is_a_dynamic_reference(synth: Synth) -> None:
    (instance,) = synth.of_type("AWS::RDS::DBInstance").values()
    password = instance["Properties"]["MasterUserPassword"]

    assert is_intrinsic(password)
    assert "{{resolve:secretsmanager:" in str(password)


def test_environment_variables_pass_secret_arns_never_values(synth: Synth) -> None:
    seen = set()
    for owner, name, value in _environments(synth):
        seen.add(name)
        if name.endswith("_SECRET_ARN"):
            assert is_intrinsic(value), f"{owner}: {name} must reference a secret"
        else:
            assert not SECRET_ENV_NAME.search(name), f"{owner}: {name} looks like a secret"

    assert {"YTR_DATABASE_SECRET_ARN", "YTR_ANTHROPIC_SECRET_ARN"} <= seen


def test_no_parameter_asks_for_a_secret(synth: Synth) -> None:
    for name, parameter in synth.template.get("Parameters", {}).items():
        assert not SENSITIVE_KEY.search(name), name
        assert "Default" not in parameter or not SECRET_VALUE.search(str(parameter["Default"]))
