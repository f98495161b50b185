"""The one place that carries the Lambda defaults, so each function is a few lines."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Annotations, Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import BundleSpec, lambda_code
from infra.nag import acknowledge, skip_checkov

RUNTIME = lambda_.Runtime.PYTHON_3_13
ARCHITECTURE = lambda_.Architecture.ARM_64
LIVE_ALIAS = "live"
_PARTITION_POLICY = "arn:<AWS::Partition>:iam::aws:policy/service-role/"


class AppFunction(Construct):
    """A Python 3.13 arm64 function in the VPC's private subnets, with its own security group,
    a log group with retention, JSON logs and the Powertools settings.

    With ``snap_start``, Lambda snapshots the initialized function when a version is published;
    the construct publishes one per code or configuration change and points the ``live`` alias at
    it. Callers invoke ``target`` (the alias, or the function itself without SnapStart): SnapStart
    applies only to published versions, never to ``$LATEST``.

    Exposes ``function``, ``target``, ``alias`` (or None), ``security_group`` and ``log_group``.
    """

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: str,
        bundle: BundleSpec,
        description: str,
        environment: Mapping[str, str],
        service_name: str,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection,
        memory_mib: int,
        timeout: Duration,
        log_level: str,
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy,
        snap_start: bool = False,
        reserved_concurrency: int | None = None,
    ) -> None:
        super().__init__(scope, construct_id)
        self.security_group = ec2.SecurityGroup(
            self,
            "SecurityGroup",
            vpc=vpc,
            description=f"{description} (egress: database, AWS APIs and HTTPS through NAT)",
            allow_all_outbound=True,
        )
        self.log_group = logs.LogGroup(
            self, "Logs", retention=log_retention, removal_policy=log_removal_policy
        )
        self.function = lambda_.Function(
            self,
            "Function",
            description=description,
            runtime=RUNTIME,
            architecture=ARCHITECTURE,
            handler=handler,
            code=lambda_code(bundle),
            memory_size=memory_mib,
            timeout=timeout,
            environment={
                **environment,
                "POWERTOOLS_SERVICE_NAME": service_name,
                "POWERTOOLS_LOG_LEVEL": log_level,
            },
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            security_groups=[self.security_group],
            log_group=self.log_group,
            logging_format=lambda_.LoggingFormat.JSON,
            # Keep Lambda's own filter in step with Powertools' level (it warns when they differ).
            application_log_level_v2=lambda_.ApplicationLogLevel(log_level.replace("WARNING", "WARN")),
            system_log_level_v2=lambda_.SystemLogLevel.WARN,
            recursive_loop=lambda_.RecursiveLoop.TERMINATE,
            snap_start=lambda_.SnapStartConf.ON_PUBLISHED_VERSIONS if snap_start else None,
            # Lambda bills the snapshot cache of every version that exists: delete replaced ones.
            current_version_options=(
                lambda_.VersionOptions(removal_policy=RemovalPolicy.DESTROY) if snap_start else None
            ),
            reserved_concurrent_executions=reserved_concurrency,
        )
        self.alias: lambda_.Alias | None = None
        self.target: lambda_.IFunction = self.function
        if snap_start:
            # current_version publishes a new version whenever the code or configuration changes.
            self.alias = lambda_.Alias(
                self, "Live", alias_name=LIVE_ALIAS, version=self.function.current_version
            )
            self.target = self.alias
            Annotations.of(self.function).acknowledge_warning(
                "@aws-cdk/aws-lambda:snapStartRequirePublish",
                "The live alias points at current_version, which publishes a version on every change.",
            )
        self.code_hash = _asset_hash(self.function)
        acknowledge(
            self.function,
            "AwsSolutions-L1",
            "Pinned to python3.13 on purpose: the bundle's compiled wheels are built for cp313 on "
            "Amazon Linux 2023, and a runtime change must move together with the lock file.",
        )
        skip_checkov(
            self.function,
            "CKV_AWS_173",
            "The environment holds names, ARNs and URLs only, never secret values (those are read "
            "from Secrets Manager at run time); Lambda encrypts it at rest with its own key anyway.",
        )
        skip_checkov(
            self.function,
            "CKV_AWS_116",
            "Invocations are synchronous (HTTP API, the migration custom resource) or come from SQS, "
            "whose redrive policy owns the dead letters; a function-level DLQ only serves async calls.",
        )
        if reserved_concurrency is None:
            skip_checkov(
                self.function,
                "CKV_AWS_115",
                "Only the CRUD function gets reserved concurrency (it holds one database connection "
                "per invocation); ingest is capped by the SQS event source's maximum concurrency "
                "and migrations run once per deploy, so reserving capacity for them would waste it.",
            )
        acknowledge(
            self.function,
            f"AwsSolutions-IAM4[Policy::{_PARTITION_POLICY}AWSLambdaBasicExecutionRole]",
            "AWSLambdaBasicExecutionRole only grants writing this function's CloudWatch logs; "
            "it is the AWS-maintained minimum for any Lambda function.",
        )
        acknowledge(
            self.function,
            f"AwsSolutions-IAM4[Policy::{_PARTITION_POLICY}AWSLambdaVPCAccessExecutionRole]",
            "AWSLambdaVPCAccessExecutionRole is the AWS-maintained policy for the network "
            "interfaces a VPC-attached function needs to reach the private database.",
        )


def _asset_hash(function: lambda_.Function) -> str:
    """The hash of the function's code asset (its S3 key is ``<hash>.zip``)."""
    resource = function.node.default_child
    assert isinstance(resource, lambda_.CfnFunction)
    code = resource.code
    assert isinstance(code, lambda_.CfnFunction.CodeProperty) and code.s3_key
    return code.s3_key.removesuffix(".zip")
