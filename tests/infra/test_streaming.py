"""The streaming service: Fargate behind an ALB, tuned for long-lived streams. The lean profile (the
dev default, ``default_synth``) runs it on Fargate Spot behind an internal load balancer that
CloudFront reaches through a VPC origin; the standard profile (``standard_synth``, and prod in
``full_synth``) on on-demand Fargate behind a public one that admits only CloudFront."""

from __future__ import annotations

import fnmatch
import re
from pathlib import Path
from typing import Any

import pytest
from aws_cdk.assertions import Match, Template

from infra.components.edge import ORIGIN_HEADER, REST_PATHS, STREAMING_PATHS
from infra.components.streaming import CONTAINER_PORT, DOCKERFILE, HEALTH_PATH
from infra.config import (
    DRAIN_GRACE_SECONDS,
    FARGATE_SPOT_NOTICE_SECONDS,
    STREAM_PING_SECONDS,
    UVICORN_CLOSE_SECONDS,
)
from tests.infra.synth import TEST_DOMAIN_NAME, Synth, synthesize

CACHING_DISABLED = "4135ea2d-6df8-44a3-9df3-4b5a84be39ad"  # the managed cache policy
ALL_VIEWER_EXCEPT_HOST_HEADER = "b689b0a8-53d0-40ab-baf2-68738e2966ac"  # the managed request policy


def _container(synth: Synth) -> dict[str, Any]:
    task = next(iter(synth.of_type("AWS::ECS::TaskDefinition").values()))["Properties"]
    (container,) = task["ContainerDefinitions"]
    return container


def _alb_attributes(synth: Synth) -> dict[str, str]:
    alb = next(iter(synth.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer").values()))
    return {a["Key"]: a["Value"] for a in alb["Properties"]["LoadBalancerAttributes"]}


def test_alb_idle_timeout_outlasts_stream_pings(default_synth: Synth) -> None:
    idle = int(_alb_attributes(default_synth)["idle_timeout.timeout_seconds"])

    assert idle >= 120
    assert idle >= 8 * STREAM_PING_SECONDS


def _subnet_refs(synth: Synth, subnets: Any) -> list[dict[str, str]]:
    return [{"Ref": synth.logical_id(subnet)} for subnet in subnets]


def test_standard_alb_is_public_drops_bad_headers_and_logs_access(standard_synth: Synth) -> None:
    alb = next(iter(standard_synth.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer").values()))
    attributes = _alb_attributes(standard_synth)

    assert alb["Properties"]["Scheme"] == "internet-facing"
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"


def test_lean_alb_is_internal_in_private_subnets_drops_bad_headers_and_logs_access(
    default_synth: Synth,
) -> None:
    (alb,) = default_synth.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    attributes = _alb_attributes(default_synth)
    private = _subnet_refs(default_synth, default_synth.stack.network.vpc.private_subnets)

    assert alb["Properties"]["Scheme"] == "internal"  # no public address at all
    assert alb["Properties"]["Subnets"] == private
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"


def test_prod_alb_is_public(full_synth: Synth) -> None:
    (alb,) = full_synth.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer").values()

    assert alb["Properties"]["Scheme"] == "internet-facing"


def test_target_group_checks_health_and_drains_streams(default_synth: Synth) -> None:
    group = next(iter(default_synth.of_type("AWS::ElasticLoadBalancingV2::TargetGroup").values()))
    props = group["Properties"]
    attributes = {a["Key"]: a["Value"] for a in props["TargetGroupAttributes"]}

    assert props["HealthCheckPath"] == HEALTH_PATH
    assert props["Port"] == CONTAINER_PORT
    assert props["TargetType"] == "ip"
    assert int(attributes["deregistration_delay.timeout_seconds"]) >= 60
    assert attributes["stickiness.enabled"] == "false"  # requests are durable; any task serves


def test_container_has_a_health_check_and_a_stop_timeout_for_draining(
    default_synth: Synth,
) -> None:
    container = _container(default_synth)

    command = container["HealthCheck"]["Command"]
    assert command[0] == "CMD"
    assert f"http://127.0.0.1:{CONTAINER_PORT}{HEALTH_PATH}" in " ".join(command)
    assert container["StopTimeout"] == 120
    assert container["PortMappings"][0]["ContainerPort"] == CONTAINER_PORT
    assert container["LogConfiguration"]["LogDriver"] == "awslogs"


def test_container_gets_configuration_not_secret_values(default_synth: Synth) -> None:
    environment = {e["Name"]: e["Value"] for e in _container(default_synth)["Environment"]}

    assert environment["YTR_QUEUE_BACKEND"] == "sqs"
    assert environment["YTR_TRANSCRIPT_SOURCE"] == "youtube"
    assert environment["YTR_ENVIRONMENT"] == "dev"
    assert int(environment["YTR_DB_POOL_SIZE"]) > 0
    for name in ("YTR_DATABASE_SECRET_ARN", "YTR_ANTHROPIC_SECRET_ARN", "YTR_INGEST_QUEUE_URL"):
        assert isinstance(environment[name], dict), f"{name} should reference a resource"
    assert "Secrets" not in _container(default_synth)


def test_standard_task_is_small_arm64_on_demand_fargate_in_private_subnets(
    standard_synth: Synth, standard_template: Template
) -> None:
    private = [
        {"Ref": standard_synth.logical_id(subnet)}
        for subnet in standard_synth.stack.network.vpc.private_subnets
    ]

    standard_template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "Cpu": "256",
            "Memory": "512",
            "RequiresCompatibilities": ["FARGATE"],
            "RuntimePlatform": {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"},
        },
    )
    standard_template.has_resource_properties(
        "AWS::ECS::Service",
        {
            "LaunchType": "FARGATE",
            "NetworkConfiguration": {
                "AwsvpcConfiguration": {"AssignPublicIp": "DISABLED", "Subnets": private}
            },
            "DeploymentConfiguration": Match.object_like(
                {"DeploymentCircuitBreaker": {"Enable": True, "Rollback": True}}
            ),
        },
    )


def test_lean_task_is_small_arm64_fargate_spot_with_no_on_demand_base(
    default_synth: Synth, template: Template
) -> None:
    private = _subnet_refs(default_synth, default_synth.stack.network.vpc.private_subnets)
    (service,) = default_synth.of_type("AWS::ECS::Service").values()
    (association,) = default_synth.of_type("AWS::ECS::ClusterCapacityProviderAssociations").values()

    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "Cpu": "256",
            "Memory": "512",
            "RequiresCompatibilities": ["FARGATE"],
            "RuntimePlatform": {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"},
        },
    )
    props = service["Properties"]
    assert "LaunchType" not in props  # a capacity provider strategy places the tasks
    assert props["CapacityProviderStrategy"] == [
        {"CapacityProvider": "FARGATE_SPOT", "Base": 0, "Weight": 1},
        {"CapacityProvider": "FARGATE", "Base": 0, "Weight": 0},  # on-demand: no base, no share
    ]
    assert set(association["Properties"]["CapacityProviders"]) == {"FARGATE", "FARGATE_SPOT"}
    network = props["NetworkConfiguration"]["AwsvpcConfiguration"]
    assert (network["AssignPublicIp"], network["Subnets"]) == ("DISABLED", private)
    assert props["DeploymentConfiguration"]["DeploymentCircuitBreaker"] == {"Enable": True, "Rollback": True}


def test_prod_tasks_run_on_demand(full_synth: Synth) -> None:
    (service,) = full_synth.of_type("AWS::ECS::Service").values()

    assert service["Properties"]["LaunchType"] == "FARGATE"
    assert "CapacityProviderStrategy" not in service["Properties"]


def test_a_spot_interruption_is_drained_within_its_two_minute_notice(default_synth: Synth) -> None:
    # A Spot interruption is a SIGTERM two minutes before the task stops; the drain that SIGTERM
    # starts (tests/integration/test_stream_durability.py, the SIGTERM test) must end by then.
    container = _container(default_synth)
    environment = {e["Name"]: e["Value"] for e in container["Environment"]}
    (service,) = default_synth.of_type("AWS::ECS::Service").values()

    assert service["Properties"]["CapacityProviderStrategy"][0]["CapacityProvider"] == "FARGATE_SPOT"
    assert int(environment["YTR_DRAIN_GRACE_SECONDS"]) == DRAIN_GRACE_SECONDS
    assert container["StopTimeout"] > DRAIN_GRACE_SECONDS + UVICORN_CLOSE_SECONDS
    assert container["StopTimeout"] <= FARGATE_SPOT_NOTICE_SECONDS


def test_service_scales_on_active_streams_per_task(default_synth: Synth, template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {
                    "CustomizedMetricSpecification": {
                        "MetricName": "ActiveStreams",
                        "Namespace": "YtResearch",
                        "Dimensions": [{"Name": "service", "Value": "ytresearch"}],
                        "Statistic": "Average",
                    },
                    "TargetValue": default_synth.stack.config.fargate_streams_per_task,
                }
            ),
        },
    )


def test_service_scales_on_cpu(template: Template) -> None:
    template.has_resource_properties(
        "AWS::ApplicationAutoScaling::ScalingPolicy",
        {
            "PolicyType": "TargetTrackingScaling",
            "TargetTrackingScalingPolicyConfiguration": Match.object_like(
                {"PredefinedMetricSpecification": {"PredefinedMetricType": "ECSServiceAverageCPUUtilization"}}
            ),
        },
    )


def test_only_the_load_balancer_reaches_the_tasks(default_synth: Synth) -> None:
    tasks = default_synth.logical_id(default_synth.stack.streaming.security_group)
    ingress = [
        rule["Properties"]
        for rule in default_synth.of_type("AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["GroupId"] == {"Fn::GetAtt": [tasks, "GroupId"]}
    ]
    alb_group = default_synth.stack.streaming.load_balancer.connections.security_groups[0]

    assert [r["SourceSecurityGroupId"]["Fn::GetAtt"][0] for r in ingress] == [
        default_synth.logical_id(alb_group)
    ]
    assert ingress[0]["FromPort"] == ingress[0]["ToPort"] == CONTAINER_PORT


def _listeners(synth: Synth) -> dict[int, dict[str, Any]]:
    return {
        listener["Properties"]["Port"]: listener["Properties"]
        for listener in synth.of_type("AWS::ElasticLoadBalancingV2::Listener").values()
    }


def _distribution(synth: Synth) -> dict[str, Any]:
    (distribution,) = synth.of_type("AWS::CloudFront::Distribution").values()
    config: dict[str, Any] = distribution["Properties"]["DistributionConfig"]
    return config


def _balancer_origin(config: dict[str, Any]) -> dict[str, Any]:
    """The load balancer's origin: the default behaviour's (the REST API is the other one)."""
    (origin,) = [o for o in config["Origins"] if o["Id"] == config["DefaultCacheBehavior"]["TargetOriginId"]]
    return origin


def _streaming_url(synth: Synth) -> Any:
    return synth.template["Outputs"]["StreamingUrl"]["Value"]


@pytest.mark.parametrize("which", ["default", "standard", "full"])
def test_the_public_streaming_url_is_https_on_cloudfront(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(f"{which}_synth")
    assert synth.stack.edge is not None  # CloudFront is on by default
    distribution = synth.logical_id(synth.stack.edge.distribution)

    assert _streaming_url(synth) == {
        "Fn::Join": ["", ["https://", {"Fn::GetAtt": [distribution, "DomainName"]}]]
    }


def _passes_streams_through(behavior: dict[str, Any]) -> None:
    assert behavior["CachePolicyId"] == CACHING_DISABLED
    assert behavior["OriginRequestPolicyId"] == ALL_VIEWER_EXCEPT_HOST_HEADER
    assert len(behavior["AllowedMethods"]) == 7  # every viewer method
    assert behavior["Compress"] is False  # compression would buffer SSE
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"


def test_cloudfront_passes_streams_through(standard_synth: Synth) -> None:
    config = _distribution(standard_synth)
    origin = _balancer_origin(config)
    custom = origin["CustomOriginConfig"]

    _passes_streams_through(config["DefaultCacheBehavior"])
    # The origin must wait out the gaps between pings and keep connections below the ALB's idle timeout
    assert custom["OriginReadTimeout"] >= 2 * STREAM_PING_SECONDS
    assert custom["OriginReadTimeout"] <= 60  # more needs a quota increase
    idle = int(_alb_attributes(standard_synth)["idle_timeout.timeout_seconds"])
    assert custom["OriginKeepaliveTimeout"] < idle
    assert custom["OriginProtocolPolicy"] == "http-only"
    assert [h["HeaderName"] for h in origin["OriginCustomHeaders"]] == [ORIGIN_HEADER]


def test_lean_cloudfront_reaches_the_internal_alb_through_a_vpc_origin(default_synth: Synth) -> None:
    config = _distribution(default_synth)
    origin = _balancer_origin(config)
    vpc = origin["VpcOriginConfig"]
    (vpc_origin_id,) = default_synth.of_type("AWS::CloudFront::VpcOrigin")
    endpoint = default_synth.resources[vpc_origin_id]["Properties"]["VpcOriginEndpointConfig"]
    alb = default_synth.logical_id(default_synth.stack.streaming.load_balancer)

    _passes_streams_through(config["DefaultCacheBehavior"])
    assert "CustomOriginConfig" not in origin
    assert vpc["VpcOriginId"] == {"Fn::GetAtt": [vpc_origin_id, "Id"]}
    assert endpoint["Arn"] == {"Ref": alb}
    assert endpoint["OriginProtocolPolicy"] == "http-only" and endpoint["HTTPPort"] == 80
    # The same stream-friendly timeouts as the public origin
    assert 2 * STREAM_PING_SECONDS <= vpc["OriginReadTimeout"] <= 60
    idle = int(_alb_attributes(default_synth)["idle_timeout.timeout_seconds"])
    assert vpc["OriginKeepaliveTimeout"] < idle


def test_with_a_domain_cloudfront_reaches_the_origin_over_https(full_synth: Synth) -> None:
    origin = _balancer_origin(_distribution(full_synth))

    assert origin["DomainName"] == TEST_DOMAIN_NAME
    assert origin["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    assert origin["CustomOriginConfig"]["OriginSSLProtocols"] == ["TLSv1.2"]


def test_standard_dev_listener_forwards_only_requests_with_the_origin_secret(
    standard_synth: Synth,
) -> None:
    listeners = _listeners(standard_synth)
    (rule,) = standard_synth.of_type("AWS::ElasticLoadBalancingV2::ListenerRule").values()
    (condition,) = rule["Properties"]["Conditions"]
    assert standard_synth.stack.edge is not None  # CloudFront is on by default
    assert standard_synth.stack.edge.origin_secret is not None
    secret = standard_synth.logical_id(standard_synth.stack.edge.origin_secret)
    origin = _balancer_origin(_distribution(standard_synth))

    assert list(listeners) == [80]  # the only listener: CloudFront's origin leg
    (default_action,) = listeners[80]["DefaultActions"]
    assert default_action["Type"] == "fixed-response"
    assert default_action["FixedResponseConfig"]["StatusCode"] == "403"
    assert rule["Properties"]["Actions"][0]["Type"] == "forward"
    assert condition["HttpHeaderConfig"]["HttpHeaderName"] == ORIGIN_HEADER
    (value,) = condition["HttpHeaderConfig"]["Values"]
    assert secret in str(value) and "resolve:secretsmanager" in str(value)  # never a literal
    assert origin["OriginCustomHeaders"][0]["HeaderValue"] == value


def test_lean_listener_forwards_and_needs_no_origin_secret(default_synth: Synth) -> None:
    # Only this account's distributions can use a VPC origin, and the load balancer has no public
    # address: a shared secret header would guard nothing more (and cost a secret a month).
    listeners = _listeners(default_synth)
    assert default_synth.stack.edge is not None

    assert list(listeners) == [80]
    (default_action,) = listeners[80]["DefaultActions"]
    assert default_action["Type"] == "forward"
    assert not default_synth.of_type("AWS::ElasticLoadBalancingV2::ListenerRule")
    assert default_synth.stack.edge.origin_secret is None
    origin = _balancer_origin(_distribution(default_synth))
    assert "OriginCustomHeaders" not in origin


def test_prod_has_no_plain_http_listener_at_all(full_synth: Synth) -> None:
    listeners = _listeners(full_synth)

    assert list(listeners) == [443]
    assert listeners[443]["Protocol"] == "HTTPS"
    assert listeners[443]["Certificates"][0]["CertificateArn"].startswith("arn:aws:acm:")
    assert listeners[443]["DefaultActions"][0]["Type"] == "fixed-response"


@pytest.mark.parametrize("which", ["default", "standard", "full"])
def test_the_load_balancer_admits_only_cloudfront(which: str, request: pytest.FixtureRequest) -> None:
    synth: Synth = request.getfixturevalue(f"{which}_synth")
    group = synth.logical_id(synth.stack.streaming.load_balancer.connections.security_groups[0])
    rules = list(synth.resources[group]["Properties"].get("SecurityGroupIngress", []))
    rules += [
        rule["Properties"]
        for rule in synth.of_type("AWS::EC2::SecurityGroupIngress").values()
        if rule["Properties"]["GroupId"] == {"Fn::GetAtt": [group, "GroupId"]}
    ]
    port = synth.stack.streaming.listener_port

    assert len(rules) == 1
    assert "SourcePrefixListId" in rules[0] and "CidrIp" not in rules[0]
    assert rules[0]["FromPort"] == rules[0]["ToPort"] == port


def test_the_prefix_list_is_looked_up_at_deploy_time(default_synth: Synth) -> None:
    (lookup,) = default_synth.of_type("Custom::AWS").values()

    assert "describeManagedPrefixLists" in str(lookup["Properties"]["Create"])
    assert "com.amazonaws.global.cloudfront.origin-facing" in str(lookup["Properties"]["Create"])


def test_without_cloudfront_dev_serves_plain_http_directly(tmp_path: Path) -> None:
    synth = synthesize({"cloudfront": "false", "nag": "false"}, tmp_path / "direct")

    assert not synth.of_type("AWS::CloudFront::Distribution")
    (alb,) = synth.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer").values()
    assert alb["Properties"]["Scheme"] == "internet-facing"  # lean too: it is the endpoint
    (listener,) = _listeners(synth).values()
    assert listener["DefaultActions"][0]["Type"] == "forward"
    assert _streaming_url(synth)["Fn::Join"][1][0] == "http://"


def test_image_is_built_from_the_repo_dockerfile_without_docker_at_synth(
    default_synth: Synth,
) -> None:
    images = default_synth.assets_manifest()["dockerImages"]
    (image,) = images.values()
    context = default_synth.outdir / image["source"]["directory"]

    assert image["source"]["dockerFile"] == DOCKERFILE
    assert image["source"]["platform"] == "linux/arm64"
    assert (context / DOCKERFILE).is_file()
    assert (context / "shared" / "ytresearch").is_dir()
    # .dockerignore keeps the build context small: no venv, node modules, tests or git; and the
    # image carries only the domain package and the service (no client, no Lambda entry points).
    for excluded in (".venv", "node_modules", "tests", ".git", "cdk.out", "bench", "client", "functions"):
        assert not (context / excluded).exists(), f"{excluded} leaked into the image context"


def test_service_waits_for_the_schema_migrations(default_synth: Synth) -> None:
    service_id = default_synth.logical_id(default_synth.stack.streaming.service)
    migrations_id = default_synth.logical_id(default_synth.stack.migrations.resource)

    assert migrations_id in default_synth.resources[service_id]["DependsOn"]


@pytest.mark.parametrize("which", ["default", "standard", "full"])
def test_the_page_s_rest_calls_reach_the_api_and_its_streams_the_load_balancer(
    which: str, request: pytest.FixtureRequest
) -> None:
    """The page calls every route on its own origin: CloudFront sends the REST routes to the key
    API (its function checks Cognito tokens and API keys alike) and keeps the streaming routes,
    which share /v1/, and everything else on the load balancer."""
    synth: Synth = request.getfixturevalue(f"{which}_synth")
    config = _distribution(synth)
    balancer = config["DefaultCacheBehavior"]["TargetOriginId"]
    behaviors = config["CacheBehaviors"]

    assert [b["PathPattern"] for b in behaviors] == [*STREAMING_PATHS, REST_PATHS]
    assert {b["TargetOriginId"] for b in behaviors[:-1]} == {balancer}
    (api,) = [o for o in config["Origins"] if o["Id"] == behaviors[-1]["TargetOriginId"]]
    key_api = synth.logical_id(synth.stack.key_api.api)
    assert api["DomainName"] == {
        "Fn::Select": [2, {"Fn::Split": ["/", {"Fn::GetAtt": [key_api, "ApiEndpoint"]}]}]
    }
    assert api["CustomOriginConfig"]["OriginProtocolPolicy"] == "https-only"
    for behavior in behaviors:
        _passes_streams_through(behavior)


def test_every_route_of_both_applications_takes_its_own_cloudfront_behaviour() -> None:
    from functions.api.app import create_app as create_api
    from streaming_service import ws
    from streaming_service.app import create_app as create_streaming
    from tests.support.settings import test_settings
    from ytresearch.bootstrap import Container

    container = Container(test_settings("sqlite://"))
    streaming = [*create_streaming(container).openapi()["paths"], *(r.path for r in ws.router.routes)]
    rest = list(create_api(container).openapi()["paths"])

    def behaviour(route: str) -> str:
        path = re.sub(r"\{[^}]+\}", "x1", route)  # a concrete path, as a browser asks for it
        return next((p for p in (*STREAMING_PATHS, REST_PATHS) if fnmatch.fnmatchcase(path, p)), "default")

    for route in streaming:
        if route in rest:  # /health: both answer it
            continue
        expected = "streaming" if route.startswith("/v1/") else "default"
        got = behaviour(route)
        assert got in STREAMING_PATHS if expected == "streaming" else got == "default", (route, got)
    for route in rest:
        if route.startswith("/v1/"):
            assert behaviour(route) == REST_PATHS, route
    assert "/v1/sessions/{session_id}/ws" in streaming and "/v1/sessions" in rest  # both read
