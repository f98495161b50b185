"""The streaming service: FastAPI/uvicorn on ECS Fargate behind an Application Load Balancer.

Long-lived streams shape the settings: the ALB idle timeout outlasts the 15 s pings many times over,
a draining task keeps serving its open streams for the deregistration delay, and a stopping task
gets ``stop_timeout`` between SIGTERM and SIGKILL, more than uvicorn's graceful shutdown window.

Behind CloudFront (``behind_cloudfront``, see edge.py) the listener's port is closed to everyone
and edge.py opens it to CloudFront's origin-facing servers. An ``internal`` load balancer (the lean
profile) sits in the private subnets with no public address, reached only through a CloudFront VPC
origin, so its listener forwards. An internet-facing one (standard) answers 403 unless edge.py's
secret-header rule forwards. Without CloudFront the load balancer is the public endpoint: HTTPS
with a certificate (and a redirect from port 80), plain HTTP on port 80 without one (the config
allows that only in dev).

With ``spot`` (lean) the tasks run on Fargate Spot with no on-demand base. An interruption is a
SIGTERM two minutes before the task stops, which the service drains like any stop (serve.py): the
stop timeout (at most those two minutes) already bounds the drain.

The service scales on two target-tracking policies, whichever asks for more tasks: CPU, and the
open chat streams per task (the ``ActiveStreams`` gauge every task writes to the logs in EMF,
``YtResearch`` namespace, ``service`` dimension; its average over the tasks' samples is the mean
per task). Streams are mostly idle I/O, so a task can be full of them long before its CPU is.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from aws_cdk import Duration, RemovalPolicy, Size
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge, skip_checkov

CONTAINER_PORT = 8000
HEALTH_PATH = "/health/live"  # 503 only while draining: a database outage must not cycle tasks
DOCKERFILE = "streaming_service/Dockerfile"
METRICS_NAMESPACE = "YtResearch"  # shared/ytresearch/observability/metrics.py
ACTIVE_STREAMS_METRIC = "ActiveStreams"
# python:3.13-slim has no curl; the interpreter is always there. Loopback only.
HEALTH_COMMAND = (
    "import sys, urllib.request; "
    f"sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:{CONTAINER_PORT}{HEALTH_PATH}', "
    "timeout=4).status == 200 else 1)"
)


class StreamingService(Construct):
    """Exposes ``cluster``, ``task_definition``, ``container``, ``service``, ``scaling``,
    ``security_group``, ``load_balancer``, ``target_group``, ``listener`` (on ``listener_port``),
    ``log_group`` and ``url`` (the load balancer's own URL; behind CloudFront, not public)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        vpc: ec2.IVpc,
        compute_subnets: ec2.SubnetSelection,
        public_subnets: ec2.SubnetSelection,
        build_context: Path,
        environment: Mapping[str, str],
        cpu: int,
        memory_mib: int,
        architecture: str,
        desired_count: int,
        max_count: int,
        cpu_target_percent: int,
        streams_per_task: int,
        service_name: str,
        idle_timeout: Duration,
        deregistration_delay: Duration,
        stop_timeout: Duration,
        certificate_arn: str | None,
        behind_cloudfront: bool,
        internal: bool,
        spot: bool,
        container_insights: bool,
        access_log_bucket: s3.IBucket,
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        arm = architecture == "ARM64"
        if internal and not behind_cloudfront:
            raise ValueError("an internal load balancer is reachable only through CloudFront")
        self.cluster = ecs.Cluster(
            self,
            "Cluster",
            vpc=vpc,
            enable_fargate_capacity_providers=spot,
            container_insights_v2=(
                ecs.ContainerInsights.ENABLED if container_insights else ecs.ContainerInsights.DISABLED
            ),
        )
        if not container_insights:
            acknowledge(
                self.cluster,
                "AwsSolutions-ECS4",
                "Container Insights is off by default because its per-task custom metrics cost "
                "more than the one small task; the service, ALB and alarms keep the standard "
                "ECS/ALB metrics. Enable with -c container_insights=true.",
                checkov="CKV_AWS_65",
            )

        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=log_removal_policy
        )
        self.task_definition = ecs.FargateTaskDefinition(
            self,
            "Task",
            cpu=cpu,
            memory_limit_mib=memory_mib,
            runtime_platform=ecs.RuntimePlatform(
                cpu_architecture=ecs.CpuArchitecture.ARM64 if arm else ecs.CpuArchitecture.X86_64,
                operating_system_family=ecs.OperatingSystemFamily.LINUX,
            ),
        )
        self.image = ecs.ContainerImage.from_asset(
            str(build_context),
            file=DOCKERFILE,
            platform=ecr_assets.Platform.LINUX_ARM64 if arm else ecr_assets.Platform.LINUX_AMD64,
        )
        self.container = self.task_definition.add_container(
            "App",
            image=self.image,
            essential=True,
            environment=dict(environment),
            port_mappings=[ecs.PortMapping(container_port=CONTAINER_PORT, name="http")],
            stop_timeout=stop_timeout,
            health_check=ecs.HealthCheck(
                command=["CMD", "python", "-c", HEALTH_COMMAND],
                interval=Duration.seconds(30),
                timeout=Duration.seconds(5),
                retries=3,
                start_period=Duration.seconds(30),
            ),
            logging=ecs.LogDrivers.aws_logs(
                stream_prefix="streaming",
                log_group=self.log_group,
                mode=ecs.AwsLogDriverMode.NON_BLOCKING,
                max_buffer_size=Size.mebibytes(25),
            ),
        )
        execution_role = self.task_definition.obtain_execution_role()
        acknowledge(
            execution_role,
            "AwsSolutions-IAM5[Resource::*]",
            "The execution role's only wildcard is ecr:GetAuthorizationToken, which has no "
            "resource-level permissions; image pulls are scoped to the asset repository.",
        )
        acknowledge(
            self.task_definition,
            "AwsSolutions-ECS2",
            "The container's environment holds only non-secret configuration (names, ARNs, the "
            "queue URL, the model id); the application fetches secret values from Secrets "
            "Manager by ARN at run time.",
        )

        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description="Streaming tasks: ingress only from the load balancer",
            allow_all_outbound=True,
        )
        self.service = ecs.FargateService(
            self,
            "Service",
            cluster=self.cluster,
            task_definition=self.task_definition,
            desired_count=desired_count,
            vpc_subnets=compute_subnets,
            security_groups=[self.security_group],
            assign_public_ip=False,
            min_healthy_percent=100,
            max_healthy_percent=200,
            circuit_breaker=ecs.DeploymentCircuitBreaker(enable=True, rollback=True),
            health_check_grace_period=Duration.seconds(60),
            enable_execute_command=False,
            # Spot only: no on-demand base, and on-demand never takes a share. Without Spot
            # capacity a task waits for it (the StreamingTasksBelowDesired alarm says so).
            capacity_provider_strategies=(
                [
                    ecs.CapacityProviderStrategy(capacity_provider="FARGATE_SPOT", weight=1, base=0),
                    ecs.CapacityProviderStrategy(capacity_provider="FARGATE", weight=0, base=0),
                ]
                if spot
                else None
            ),
        )
        self.scaling = self.service.auto_scale_task_count(min_capacity=desired_count, max_capacity=max_count)
        self.scaling.scale_on_cpu_utilization(
            "CpuScaling",
            target_utilization_percent=cpu_target_percent,
            scale_in_cooldown=Duration.minutes(5),
            scale_out_cooldown=Duration.minutes(1),
        )
        self.active_streams = cloudwatch.Metric(
            namespace=METRICS_NAMESPACE,
            metric_name=ACTIVE_STREAMS_METRIC,
            dimensions_map={"service": service_name},
            statistic="Average",
            period=Duration.minutes(1),
        )
        self.scaling.scale_to_track_custom_metric(
            "StreamScaling",
            metric=self.active_streams,
            target_value=streams_per_task,
            # Draining a task ends its streams (clients reconnect elsewhere): scale in slowly.
            scale_in_cooldown=Duration.minutes(10),
            scale_out_cooldown=Duration.minutes(1),
        )

        alb_security_group = ec2.SecurityGroup(
            self,
            "LoadBalancerSecurityGroup",
            vpc=vpc,
            description=(
                "Streaming load balancer (internal): CloudFront VPC origin only in, tasks out"
                if internal
                else "Streaming load balancer: CloudFront only in, tasks out"
                if behind_cloudfront
                else "Streaming load balancer: public HTTP(S) in, tasks out"
            ),
            allow_all_outbound=False,
        )
        self.load_balancer = elbv2.ApplicationLoadBalancer(
            self,
            "LoadBalancer",
            vpc=vpc,
            vpc_subnets=compute_subnets if internal else public_subnets,
            internet_facing=not internal,
            security_group=alb_security_group,
            idle_timeout=idle_timeout,
            drop_invalid_header_fields=True,
            http2_enabled=True,
        )
        self.load_balancer.log_access_logs(access_log_bucket, prefix="alb")
        self.target_group = elbv2.ApplicationTargetGroup(
            self,
            "Targets",
            vpc=vpc,
            port=CONTAINER_PORT,
            protocol=elbv2.ApplicationProtocol.HTTP,
            target_type=elbv2.TargetType.IP,
            deregistration_delay=deregistration_delay,
            health_check=elbv2.HealthCheck(
                path=HEALTH_PATH,
                healthy_http_codes="200",
                interval=Duration.seconds(15),
                timeout=Duration.seconds(5),
                healthy_threshold_count=2,
                unhealthy_threshold_count=3,
            ),
            targets=[
                self.service.load_balancer_target(
                    container_name=self.container.container_name, container_port=CONTAINER_PORT
                )
            ],
        )
        # Internet-facing behind CloudFront, nothing but edge.py's secret-header rule forwards.
        default_action = (
            elbv2.ListenerAction.fixed_response(403, content_type="text/plain", message_body="Forbidden")
            if behind_cloudfront and not internal
            else elbv2.ListenerAction.forward([self.target_group])
        )
        if certificate_arn:
            self.listener_port = 443
            self.listener = self.load_balancer.add_listener(
                "Https",
                port=443,
                protocol=elbv2.ApplicationProtocol.HTTPS,
                certificates=[elbv2.ListenerCertificate.from_arn(certificate_arn)],
                ssl_policy=elbv2.SslPolicy.RECOMMENDED_TLS,
                default_action=default_action,
                open=not behind_cloudfront,
            )
            if not behind_cloudfront:  # CloudFront always connects on 443
                self.load_balancer.add_redirect(source_port=80, target_port=443, open=True)
            self.url = f"https://{self.load_balancer.load_balancer_dns_name}"
        else:
            self.listener_port = 80
            self.listener = self.load_balancer.add_listener(
                "Http",
                port=80,
                protocol=elbv2.ApplicationProtocol.HTTP,
                default_action=default_action,
                open=not behind_cloudfront,
            )
            self.url = f"http://{self.load_balancer.load_balancer_dns_name}"
            reason = (
                "Plain HTTP only inside the VPC, from CloudFront's VPC origin to an internal load "
                "balancer that has no public address and admits CloudFront's origin-facing servers "
                "alone; viewers get HTTPS from CloudFront. Set domain_name and certificate_arn for "
                "HTTPS on this leg too."
                if internal
                else "Plain HTTP only between CloudFront and the load balancer, which admits "
                "CloudFront's origin-facing servers alone and forwards only requests with the secret "
                "origin header; viewers get HTTPS from CloudFront. Set domain_name and certificate_arn "
                "for HTTPS on this leg too."
                if behind_cloudfront
                else "Plain HTTP is a dev-only trial endpoint (config.py refuses it outside dev); "
                "give certificate_arn or keep CloudFront for HTTPS."
            )
            for check_id in ("CKV_AWS_2", "CKV_AWS_103"):
                skip_checkov(self.listener, check_id, reason)
        if not behind_cloudfront:
            acknowledge(
                alb_security_group,
                "AwsSolutions-EC23",
                "Without CloudFront this is the internet-facing endpoint of a public API; it must "
                "accept HTTP(S) from any address. Only the listener ports are open and tasks accept "
                "only the ALB.",
            )
