"""The streaming service: Fargate behind an ALB, tuned for long-lived streams."""

from __future__ import annotations

from typing import Any

from aws_cdk.assertions import Match, Template

from infra.components.streaming import CONTAINER_PORT, DOCKERFILE, HEALTH_PATH
from infra.config import STREAM_PING_SECONDS
from tests.infra.synth import Synth


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


def test_alb_is_public_drops_bad_headers_and_logs_access(default_synth: Synth) -> None:
    alb = next(iter(default_synth.of_type("AWS::ElasticLoadBalancingV2::LoadBalancer").values()))
    attributes = _alb_attributes(default_synth)

    assert alb["Properties"]["Scheme"] == "internet-facing"
    assert attributes["routing.http.drop_invalid_header_fields.enabled"] == "true"
    assert attributes["access_logs.s3.enabled"] == "true"


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


def test_task_is_small_arm64_fargate_in_private_subnets(default_synth: Synth, template: Template) -> None:
    private = [
        {"Ref": default_synth.logical_id(subnet)}
        for subnet in default_synth.stack.network.vpc.private_subnets
    ]

    template.has_resource_properties(
        "AWS::ECS::TaskDefinition",
        {
            "Cpu": "256",
            "Memory": "512",
            "RequiresCompatibilities": ["FARGATE"],
            "RuntimePlatform": {"CpuArchitecture": "ARM64", "OperatingSystemFamily": "LINUX"},
        },
    )
    template.has_resource_properties(
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


def test_http_listener_without_a_certificate(default_synth: Synth) -> None:
    listeners = [
        listener["Properties"]
        for listener in default_synth.of_type("AWS::ElasticLoadBalancingV2::Listener").values()
    ]

    assert [(listener["Port"], listener["Protocol"]) for listener in listeners] == [(80, "HTTP")]
    assert default_synth.template["Outputs"]["StreamingUrl"]["Value"]["Fn::Join"][1][0] == "http://"


def test_https_listener_and_redirect_with_a_certificate(full_synth: Synth) -> None:
    listeners = {
        listener["Properties"]["Port"]: listener["Properties"]
        for listener in full_synth.of_type("AWS::ElasticLoadBalancingV2::Listener").values()
    }

    assert listeners[443]["Protocol"] == "HTTPS"
    assert listeners[443]["Certificates"][0]["CertificateArn"].startswith("arn:aws:acm:")
    assert listeners[80]["DefaultActions"][0]["Type"] == "redirect"
    assert full_synth.template["Outputs"]["StreamingUrl"]["Value"]["Fn::Join"][1][0] == "https://"


def test_image_is_built_from_the_repo_dockerfile_without_docker_at_synth(
    default_synth: Synth,
) -> None:
    images = default_synth.assets_manifest()["dockerImages"]
    (image,) = images.values()
    context = default_synth.outdir / image["source"]["directory"]

    assert image["source"]["dockerFile"] == DOCKERFILE
    assert image["source"]["platform"] == "linux/arm64"
    assert (context / DOCKERFILE).is_file()
    assert (context / "shared").is_dir()
    # .dockerignore keeps the build context small: no venv, node modules, tests or git.
    for excluded in (".venv", "node_modules", "tests", ".git", "cdk.out", "bench"):
        assert not (context / excluded).exists(), f"{excluded} leaked into the image context"


def test_service_waits_for_the_schema_migrations(default_synth: Synth) -> None:
    service_id = default_synth.logical_id(default_synth.stack.streaming.service)
    migrations_id = default_synth.logical_id(default_synth.stack.migrations.resource)

    assert migrations_id in default_synth.resources[service_id]["DependsOn"]
