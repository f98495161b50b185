"""`make cost` (infra/cost.py): every resource type in a template is priced or known to be free at
idle, the lean profile idles within its budget, itemised, and the README's cost section is the
script's output word for word."""

from __future__ import annotations

from typing import Any

import pytest

from infra.cost import (
    FREE_AT_IDLE,
    LEAN_BUDGET_USD,
    PRICERS,
    Estimate,
    UnpricedError,
    estimate,
    load_prices,
    report,
    spot_share,
    unknown_types,
)
from tests.infra.synth import CONFIGURATIONS, REPO_ROOT, Synth

README_SECTION = "### What it costs at idle"


def _template(**resources: dict[str, Any]) -> dict[str, Any]:
    return {"Resources": resources}


def _by_item(result: Estimate) -> dict[str, Any]:
    return {line.item: line for line in result.items}


@pytest.mark.parametrize("which", sorted(CONFIGURATIONS))
def test_every_resource_type_is_priced_or_known_to_be_free_at_idle(
    which: str, request: pytest.FixtureRequest
) -> None:
    synth: Synth = request.getfixturevalue(f"{which}_synth")

    assert unknown_types(synth.template) == set()


def test_no_type_is_both_priced_and_free() -> None:
    assert not set(PRICERS) & set(FREE_AT_IDLE)
    assert all(len(reason) > 5 for reason in FREE_AT_IDLE.values())


def test_a_costly_type_the_script_does_not_price_fails_the_estimate() -> None:
    template = _template(Gateway={"Type": "AWS::EC2::TransitGateway", "Properties": {}})

    assert unknown_types(template) == {"AWS::EC2::TransitGateway"}
    with pytest.raises(UnpricedError, match="AWS::EC2::TransitGateway"):
        estimate(template)


def test_the_price_table_names_its_region_and_date() -> None:
    prices = load_prices()

    assert prices["region"] == "us-east-1"
    assert prices["as_of"] and prices["source"]
    assert prices["hours_per_month"] == 730


def test_lean_idles_within_its_budget_itemised(default_synth: Synth) -> None:
    result = estimate(default_synth.template)
    items = " | ".join(line.item for line in result.items)

    assert result.total <= LEAN_BUDGET_USD
    for needle in (
        "NAT instance `t4g.nano`",
        "NAT instance volume",
        "Public IPv4: the NAT instance's address",
        "Application Load Balancer (internal)",
        "Fargate Spot task, ARM64",
        "RDS PostgreSQL `db.t4g.micro`, single-AZ",
        "RDS gp3 storage, 20 GB",
        "Secrets Manager secrets",
        "CloudWatch alarm metrics",
    ):
        assert needle in items
    for absent in ("NAT gateway", "internet-facing", "dashboard", "SnapStart", "on-demand task", "Proxy"):
        assert absent not in items


def test_standard_prices_what_lean_leaves_out(standard_synth: Synth, default_synth: Synth) -> None:
    result = estimate(standard_synth.template)
    items = _by_item(result)
    hours = load_prices()["hours_per_month"]

    assert items["NAT gateway"].monthly == pytest.approx(0.045 * hours)
    assert items["Public IPv4: a NAT gateway's Elastic IP"].quantity == 1
    assert items["Public IPv4: the internet-facing load balancer's, one per AZ (2)"].quantity == 2
    assert items["CloudWatch dashboard"].monthly == pytest.approx(3.0)
    assert any(item.startswith("Lambda SnapStart cache") for item in items)
    assert any(item.startswith("Fargate on-demand task") for item in items)
    assert result.total > estimate(default_synth.template).total + 40


def test_prod_with_container_insights_is_refused_rather_than_guessed(full_synth: Synth) -> None:
    with pytest.raises(UnpricedError, match="Container Insights"):
        estimate(full_synth.template)


@pytest.mark.parametrize(
    ("strategy", "tasks", "expected"),
    [
        (
            [{"CapacityProvider": "FARGATE_SPOT", "Weight": 1}, {"CapacityProvider": "FARGATE", "Weight": 0}],
            3,
            (0, 3),
        ),
        (
            [
                {"CapacityProvider": "FARGATE", "Base": 1, "Weight": 1},
                {"CapacityProvider": "FARGATE_SPOT", "Weight": 3},
            ],
            5,
            (2, 3),
        ),
        (
            [
                {"CapacityProvider": "FARGATE", "Base": 2, "Weight": 0},
                {"CapacityProvider": "FARGATE_SPOT", "Weight": 1},
            ],
            1,
            (1, 0),
        ),
    ],
)
def test_tasks_split_between_on_demand_and_spot_like_ecs_places_them(
    strategy: list[dict[str, Any]], tasks: int, expected: tuple[float, float]
) -> None:
    assert spot_share(strategy, tasks) == expected


def test_an_internet_facing_load_balancer_pays_one_address_per_zone() -> None:
    template = _template(
        Alb={
            "Type": "AWS::ElasticLoadBalancingV2::LoadBalancer",
            "Properties": {"Type": "application", "Subnets": [{"Ref": "A"}, {"Ref": "B"}, {"Ref": "C"}]},
        }
    )

    (address,) = [line for line in estimate(template).items if line.item.startswith("Public IPv4")]
    assert address.quantity == 3
    assert address.monthly == pytest.approx(3 * 0.005 * 730)


def test_multi_az_doubles_the_database_and_its_storage() -> None:
    instance = {"Engine": "postgres", "DBInstanceClass": "db.t4g.micro", "StorageType": "gp3"}
    single = estimate(
        _template(Db={"Type": "AWS::RDS::DBInstance", "Properties": {**instance, "AllocatedStorage": 20}})
    )
    multi = estimate(
        _template(
            Db={
                "Type": "AWS::RDS::DBInstance",
                "Properties": {**instance, "AllocatedStorage": 20, "MultiAZ": True},
            }
        )
    )

    assert multi.total == pytest.approx(2 * single.total)


def test_alarms_are_priced_per_metric_they_evaluate() -> None:
    stat = {"MetricStat": {"Metric": {"MetricName": "x"}, "Period": 300, "Stat": "Sum"}}
    template = _template(
        Plain={"Type": "AWS::CloudWatch::Alarm", "Properties": {"MetricName": "Errors", "Period": 300}},
        Math={
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": {"Metrics": [{"Id": "e", "Expression": "a + b"}, stat, stat]},
        },
    )

    (line,) = estimate(template).items
    assert line.quantity == 3
    assert line.monthly == pytest.approx(0.30)


def test_interface_endpoints_cost_per_zone_and_gateway_endpoints_nothing() -> None:
    template = _template(
        Interface={
            "Type": "AWS::EC2::VPCEndpoint",
            "Properties": {"VpcEndpointType": "Interface", "SubnetIds": [{"Ref": "A"}, {"Ref": "B"}]},
        },
        Gateway={"Type": "AWS::EC2::VPCEndpoint", "Properties": {"VpcEndpointType": "Gateway"}},
    )

    (line,) = estimate(template).items
    assert line.quantity == 2
    assert line.monthly == pytest.approx(2 * 0.01 * 730)


@pytest.mark.parametrize(
    ("resource", "message"),
    [
        ({"Type": "AWS::EC2::Instance", "Properties": {"InstanceType": "x9.huge"}}, "x9.huge"),
        (
            {
                "Type": "AWS::RDS::DBInstance",
                "Properties": {"Engine": "postgres", "DBInstanceClass": "db.r9.huge"},
            },
            "db.r9.huge",
        ),
        (
            {"Type": "AWS::Lambda::Alias", "Properties": {"ProvisionedConcurrencyConfig": {"X": 1}}},
            "provisioned",
        ),
    ],
)
def test_a_costly_setting_without_a_price_fails_the_estimate(resource: dict[str, Any], message: str) -> None:
    with pytest.raises(UnpricedError, match=message):
        estimate(_template(Resource=resource))


def test_the_readme_cost_section_is_the_script_output() -> None:
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split(f"\n{README_SECTION}\n\n", 1)[1].split("\n### ", 1)[0]

    assert section.rstrip() == report().rstrip(), "run `make cost` and put its output in the README"
