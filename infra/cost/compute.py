"""Pricers for the network, the load balancer, the database and the Fargate service."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from infra.cost.model import (
    LineItem,
    Prices,
    Resource,
    Template,
    UnpricedError,
    hourly,
    lookup,
    money,
    monthly,
    public_ipv4,
)


def price_nat_gateway(
    template: Template, logical_id: str, resource: Resource, prices: Prices
) -> list[LineItem]:
    if resource.get("Properties", {}).get("ConnectivityType") == "private":
        return [hourly("NAT gateway (private)", prices["ec2"]["nat_gateway_hour"], prices)]
    return [hourly("NAT gateway", prices["ec2"]["nat_gateway_hour"], prices, note=" + $0.045/GB processed")]


def price_eip(template: Template, logical_id: str, resource: Resource, prices: Prices) -> list[LineItem]:
    of_nat = any(
        (found := template.target(gateway.get("Properties", {}).get("AllocationId")))
        and found[0] == logical_id
        for gateway in template.of_type("AWS::EC2::NatGateway").values()
    )
    return [public_ipv4("a NAT gateway's Elastic IP" if of_nat else "Elastic IP", prices)]


def price_instance(template: Template, logical_id: str, resource: Resource, prices: Prices) -> list[LineItem]:
    properties = resource.get("Properties", {})
    instance_type = properties.get("InstanceType", "")
    rate = lookup(prices["ec2"]["instance_hour"], instance_type, "EC2 instance type", logical_id)
    role = "NAT instance" if properties.get("SourceDestCheck") is False else "EC2 instance"
    items = [hourly(f"{role} `{instance_type}`", rate, prices)]
    mappings = properties.get("BlockDeviceMappings")
    if not mappings:
        raise UnpricedError(f"{logical_id}: give the instance an explicit root volume so its size is known")
    for mapping in mappings:
        ebs = mapping.get("Ebs", {})
        volume_type = ebs.get("VolumeType", "gp2")
        gib = float(ebs["VolumeSize"])
        gb_rate = lookup(prices["ec2"]["ebs_gb_month"], volume_type, "EBS volume type", logical_id)
        items.append(monthly(f"{role} volume, {gib:g} GB {volume_type}", gb_rate, gib, unit="GB-month"))
    if _haspublic_ipv4(template, properties):
        items.append(public_ipv4(f"the {role}'s address", prices))
    return items


def _haspublic_ipv4(template: Template, properties: Mapping[str, Any]) -> bool:
    interfaces = properties.get("NetworkInterfaces") or []
    primary = next((i for i in interfaces if str(i.get("DeviceIndex")) == "0"), None)
    if primary is not None and "AssociatePublicIpAddress" in primary:
        return bool(primary["AssociatePublicIpAddress"])
    subnet = template.target(primary.get("SubnetId") if primary else properties.get("SubnetId"))
    return bool(subnet and subnet[1].get("Properties", {}).get("MapPublicIpOnLaunch"))


def price_load_balancer(
    template: Template, logical_id: str, resource: Resource, prices: Prices
) -> list[LineItem]:
    properties = resource.get("Properties", {})
    kind = properties.get("Type", "application")
    if kind not in ("application", "network"):
        raise UnpricedError(f"{logical_id}: no price for a {kind} load balancer")
    scheme = properties.get("Scheme", "internet-facing")
    name = "Application Load Balancer" if kind == "application" else "Network Load Balancer"
    note = " + LCUs (idle: none)" if kind == "application" else " + NLCUs (idle: none)"
    items = [hourly(f"{name} ({scheme})", prices["elb"][f"{kind}_hour"], prices, note=note)]
    if scheme == "internet-facing":
        zones = len(properties.get("Subnets") or properties.get("SubnetMappings") or [])
        items.append(public_ipv4(f"the internet-facing load balancer's, one per AZ ({zones})", prices, zones))
    return items


def price_db_instance(
    template: Template, logical_id: str, resource: Resource, prices: Prices
) -> list[LineItem]:
    properties = resource.get("Properties", {})
    if "DBClusterIdentifier" in properties or properties.get("Engine") != "postgres":
        raise UnpricedError(f"{logical_id}: only RDS for PostgreSQL instances are priced")
    instance_class = properties.get("DBInstanceClass", "")
    rate = lookup(prices["rds"]["postgres_instance_hour"], instance_class, "RDS instance class", logical_id)
    copies = 2 if properties.get("MultiAZ") is True else 1
    placement = "Multi-AZ (two instances)" if copies == 2 else "single-AZ"
    storage_type = properties.get("StorageType", "gp2")
    gb = float(properties.get("AllocatedStorage", 0))
    gb_rate = lookup(prices["rds"]["storage_gb_month"], storage_type, "RDS storage type", logical_id)
    return [
        hourly(f"RDS PostgreSQL `{instance_class}`, {placement}", rate, prices, copies),
        monthly(
            f"RDS {storage_type} storage, {gb:g} GB" + (" x 2 (Multi-AZ)" if copies == 2 else ""),
            gb_rate,
            gb * copies,
            unit="GB-month",
            note=" (backups free up to this size)",
        ),
    ]


def price_db_proxy(template: Template, logical_id: str, resource: Resource, prices: Prices) -> list[LineItem]:
    vcpus = 0
    for group in template.of_type("AWS::RDS::DBProxyTargetGroup").values():
        group_properties = group.get("Properties", {})
        proxy = template.target(group_properties.get("DBProxyName"))
        if proxy is None or proxy[0] != logical_id:
            continue
        for reference in group_properties.get("DBInstanceIdentifiers", []):
            found = template.target(reference)
            if found is None:
                raise UnpricedError(f"{logical_id}: its target instance is not in this template")
            instance_class = found[1]["Properties"]["DBInstanceClass"]
            vcpus += int(lookup(prices["rds"]["vcpus"], instance_class, "RDS instance class", logical_id))
    if not vcpus:
        raise UnpricedError(f"{logical_id}: a proxy without a target instance in this template")
    billed = max(vcpus, int(prices["rds"]["proxy_min_vcpus"]))
    return [
        hourly(
            f"RDS Proxy ({billed} vCPUs billed, at least {prices['rds']['proxy_min_vcpus']})",
            prices["rds"]["proxy_vcpu_hour"] * billed,
            prices,
            note=f" ({money(prices['rds']['proxy_vcpu_hour'])}/vCPU-hour)",
        )
    ]


def spot_share(strategy: Sequence[Mapping[str, Any]], tasks: int) -> tuple[float, float]:
    """(on-demand tasks, Spot tasks) of ``tasks`` placed by a Fargate capacity provider strategy:
    each provider's base first, in order, then the rest split by weight."""
    on_demand = spot = 0.0
    remaining = float(tasks)
    for entry in strategy:
        base = min(float(entry.get("Base", 0)), remaining)
        remaining -= base
        if entry["CapacityProvider"] == "FARGATE_SPOT":
            spot += base
        else:
            on_demand += base
    weights = {e["CapacityProvider"]: float(e.get("Weight", 0)) for e in strategy}
    total_weight = sum(weights.values())
    if remaining and not total_weight:
        raise ValueError("a capacity provider strategy with no weight places nothing past its bases")
    if remaining:
        spot += remaining * weights.get("FARGATE_SPOT", 0) / total_weight
        on_demand += remaining * weights.get("FARGATE", 0) / total_weight
    return on_demand, spot


def price_ecs_service(
    template: Template, logical_id: str, resource: Resource, prices: Prices
) -> list[LineItem]:
    properties = resource.get("Properties", {})
    found = template.target(properties.get("TaskDefinition"))
    if found is None:
        raise UnpricedError(f"{logical_id}: its task definition is not in this template")
    task = found[1]["Properties"]
    tasks = int(properties.get("DesiredCount", 1))
    if "CapacityProviderStrategy" in properties:
        providers = {e["CapacityProvider"] for e in properties["CapacityProviderStrategy"]}
        if not providers <= {"FARGATE", "FARGATE_SPOT"}:
            raise UnpricedError(f"{logical_id}: only the Fargate capacity providers are priced")
        on_demand, spot = spot_share(properties["CapacityProviderStrategy"], tasks)
    elif properties.get("LaunchType") == "FARGATE":
        on_demand, spot = float(tasks), 0.0
    else:
        raise UnpricedError(f"{logical_id}: only Fargate services (launch type or strategy) are priced")
    architecture = task.get("RuntimePlatform", {}).get("CpuArchitecture", "X86_64")
    vcpu = int(task["Cpu"]) / 1024
    gb = int(task["Memory"]) / 1024
    items = []
    for kind, count in (("on_demand", on_demand), ("spot", spot)):
        if not count:
            continue
        rates = lookup(prices["fargate"][kind], architecture, "Fargate architecture", logical_id)
        per_task_hour = vcpu * rates["vcpu_hour"] + gb * rates["gb_hour"]
        label = "on-demand" if kind == "on_demand" else "Spot"
        items.append(
            hourly(
                f"Fargate {label} task, {architecture}, {vcpu:g} vCPU + {gb:g} GB x {count:g}",
                per_task_hour,
                prices,
                count,
                note=f" ({money(rates['vcpu_hour'])}/vCPU-hour + {money(rates['gb_hour'])}/GB-hour)",
            )
        )
    return items


def price_ecs_cluster(
    template: Template, logical_id: str, resource: Resource, prices: Prices
) -> list[LineItem]:
    for setting in resource.get("Properties", {}).get("ClusterSettings", []):
        if setting.get("Name") == "containerInsights" and setting.get("Value") in ("enabled", "enhanced"):
            raise UnpricedError(f"{logical_id}: Container Insights bills per metric and GB; not estimated")
    return []
