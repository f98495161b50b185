"""Pure parts of the metadata adapter (the HTTP paths are in tests/integration)."""

from __future__ import annotations

import httpx
import pytest

from ytresearch.ports import VideoMetadata
from ytresearch.youtube import OEmbedMetadataSource
from ytresearch.youtube.metadata import parse_iso8601_duration


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("PT1H2M3S", 3723),
        ("PT4M13S", 253),
        ("PT45S", 45),
        ("PT10M", 600),
        ("PT2H", 7200),
        ("P1DT2H", 93_600),
        ("P1W", 604_800),
        ("PT1.6S", 2),
        (" PT3S ", 3),
    ],
)
def test_iso8601_durations_are_parsed(text: str, seconds: int) -> None:
    assert parse_iso8601_duration(text) == seconds


@pytest.mark.parametrize("text", ["P0D", "PT0S", "", "P", "PT", "P1DT", "1H2M", "PT1H2X", "soon"])
def test_zero_or_unparsable_durations_are_unknown(text: str) -> None:
    assert parse_iso8601_duration(text) is None


def test_an_invalid_id_is_not_looked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    clients: list[object] = []
    monkeypatch.setattr(httpx, "Client", lambda *a, **k: clients.append(k))
    source = OEmbedMetadataSource(0.5)

    assert source.fetch("../../etc") == VideoMetadata()
    assert clients == []


def test_the_key_is_not_in_the_repr() -> None:
    source = OEmbedMetadataSource(1.0, data_api_key="AIzaSECRET")

    assert "AIzaSECRET" not in repr(vars(source))
