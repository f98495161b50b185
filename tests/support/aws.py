"""AWS in the test process: moto's mock, with test credentials in the environment."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import pytest
from moto import mock_aws


@contextlib.contextmanager
def fake_aws(monkeypatch: pytest.MonkeyPatch, region: str = "eu-west-1") -> Iterator[None]:
    """Every boto3 call inside the block goes to moto, in ``region``, with test credentials."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", region)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield
