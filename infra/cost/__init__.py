"""What a deployment costs at idle, read from its synthesized CloudFormation template.

``make cost`` (``python -m infra.cost``) synthesizes each profile in-process (no Docker, no AWS
credentials), finds the resources that bill by the hour or the month whether or not anyone uses
them, prices them from ``infra/cost/prices.toml`` and prints one itemised Markdown table per
profile; the README's "What it costs at idle" section is that output, word for word.

Every resource type must be either priced (``PRICERS``) or known to cost nothing at idle
(``FREE_AT_IDLE``, with the reason): a type in neither list, or a costly setting the table cannot
price (an unknown instance class, Container Insights, provisioned concurrency...), raises
:class:`UnpricedError` instead of being left out of the total.
"""

from infra.cost.compute import spot_share
from infra.cost.estimate import FREE_AT_IDLE, LEAN_BUDGET_USD, PRICERS, estimate, load_prices, unknown_types
from infra.cost.model import Estimate, LineItem, UnpricedError
from infra.cost.report import report

__all__ = [
    "FREE_AT_IDLE",
    "LEAN_BUDGET_USD",
    "PRICERS",
    "Estimate",
    "LineItem",
    "UnpricedError",
    "estimate",
    "load_prices",
    "report",
    "spot_share",
    "unknown_types",
]
