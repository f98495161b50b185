"""The default Claude model is one the locked anthropic SDK still offers: upgrading the SDK past a
model's end of life fails here, in CI, instead of in production as a not-found error."""

from __future__ import annotations

import typing

from ytresearch.config import DEFAULT_MODEL, Settings
from ytresearch.llm.anthropic_model import model_end_of_life, sdk_deprecated_models


def sdk_model_names() -> set[str]:
    """The model ids in the SDK's ``Model`` type (a ``Literal`` of known ids, or any ``str``)."""
    from anthropic.types import Model

    names: set[str] = set()
    for arg in typing.get_args(Model):
        if typing.get_origin(arg) is typing.Literal:
            names.update(typing.get_args(arg))
    return names


def test_the_settings_default_to_the_one_named_default_model() -> None:
    assert Settings.model_fields["model"].default == DEFAULT_MODEL


def test_the_default_model_is_one_the_sdk_lists() -> None:
    known = sdk_model_names()

    assert known, "anthropic.types.Model no longer lists model ids: update sdk_model_names()"
    assert DEFAULT_MODEL in known, f"the locked anthropic SDK does not list {DEFAULT_MODEL}"


def test_the_default_model_is_not_deprecated_by_the_sdk() -> None:
    table = sdk_deprecated_models()

    assert table is not None, "the SDK's deprecation table moved: update sdk_deprecated_models()"
    assert model_end_of_life(DEFAULT_MODEL) is None, (
        f"the locked anthropic SDK deprecates {DEFAULT_MODEL} (end of life {table[DEFAULT_MODEL]}): "
        "change ytresearch.config.DEFAULT_MODEL to a current model"
    )
