"""The cost model's vocabulary: a line item, an estimate, the template with its references, and
the helpers every pricer writes its lines with."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.toml")
SECONDS_PER_HOUR = 3600

Resource = Mapping[str, Any]
Prices = Mapping[str, Any]


class UnpricedError(ValueError):
    """A resource (or a setting of one) that may cost money at idle and that the table cannot price."""


@dataclass(frozen=True)
class LineItem:
    item: str
    price: str  # the unit price, as the table shows it
    quantity: float
    monthly: float


@dataclass(frozen=True)
class Estimate:
    """Line items merged by item and price, most expensive first."""

    items: tuple[LineItem, ...]

    @property
    def total(self) -> float:
        return round(sum(round(item.monthly, 2) for item in self.items), 2)


class Template:
    """A synthesized template's resources, with the references between them resolved."""

    def __init__(self, template: Mapping[str, Any]) -> None:
        self.resources: Mapping[str, Resource] = template.get("Resources", {})

    def target(self, reference: Any) -> tuple[str, Resource] | None:
        """The resource a ``Ref`` or ``Fn::GetAtt`` points at, if it is in this template."""
        if isinstance(reference, Mapping):
            if "Ref" in reference:
                logical_id = reference["Ref"]
            elif "Fn::GetAtt" in reference:
                logical_id = reference["Fn::GetAtt"][0]
            else:
                return None
            if isinstance(logical_id, str) and logical_id in self.resources:
                return logical_id, self.resources[logical_id]
        return None

    def of_type(self, resource_type: str) -> dict[str, Resource]:
        return {k: v for k, v in self.resources.items() if v["Type"] == resource_type}


def hours(prices: Prices) -> float:
    return float(prices["hours_per_month"])


def money(value: float) -> str:
    """A unit price as the table writes it: every significant digit, at least cents."""
    whole, _, fraction = f"{value:.10f}".rstrip("0").partition(".")
    return f"${whole}.{fraction.ljust(2, '0')}"


def hourly(item: str, rate: float, prices: Prices, quantity: float = 1, note: str = "") -> LineItem:
    return LineItem(item, f"{money(rate)}/hour{note}", quantity, quantity * rate * hours(prices))


def monthly(item: str, rate: float, quantity: float = 1, unit: str = "month", note: str = "") -> LineItem:
    return LineItem(item, f"{money(rate)}/{unit}{note}", quantity, quantity * rate)


def lookup(table: Mapping[str, Any], key: str, what: str, logical_id: str) -> Any:
    if key not in table:
        raise UnpricedError(f"{logical_id}: no price for {what} {key!r} in {PRICES_FILE.name}")
    return table[key]


def public_ipv4(item: str, prices: Prices, quantity: float = 1) -> LineItem:
    return hourly(f"Public IPv4: {item}", prices["ec2"]["public_ipv4_hour"], prices, quantity)
