"""Schema migrations as a custom resource, run on every deploy that changes the code.

The resource's ``MigrationsHash`` property is the migrate function's code asset hash (computed from
the domain package with its Alembic scripts, the entry points and the pinned requirements), so
CloudFormation sends an Update, and the function runs ``upgrade_to_head()``, on every deploy that
changes any of it. Whatever must not serve traffic
on an old schema depends on :attr:`SchemaMigrations.resource`.
"""

from __future__ import annotations

from aws_cdk import CfnResource, CustomResource, RemovalPolicy, Stack
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from aws_cdk import custom_resources as cr
from constructs import Construct

from infra.nag import acknowledge, skip_checkov

# checkov's Lambda checks on CDK's custom-resource framework function, which CDK builds and owns.
FRAMEWORK_CHECKOV_REASONS = {
    "CKV_AWS_117": "The CDK provider framework function only invokes the migration function (which "
    "is in the VPC) through the Lambda API; it reaches no private resource itself.",
    "CKV_AWS_116": "CloudFormation invokes the provider framework synchronously and records its "
    "failures on the stack; an asynchronous dead-letter queue would never receive an event.",
    "CKV_AWS_115": "The provider framework runs once per deploy that changes the migrations; "
    "reserving concurrency for it would take capacity from the account for nothing.",
    "CKV_AWS_173": "The provider framework's environment holds only the migration function's name; "
    "Lambda encrypts function configuration at rest with its own key.",
}

RESOURCE_TYPE = "Custom::SchemaMigrations"


def _logical_id(function: lambda_.IFunction) -> str:
    """The logical id cdk-nag uses when it names a function's ARN in a finding."""
    resource = function.node.default_child
    assert isinstance(resource, CfnResource)
    return str(Stack.of(function).resolve(resource.logical_id))


class SchemaMigrations(Construct):
    """Exposes ``provider``, ``resource`` and ``revision`` (the head revision after the run)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        handler: lambda_.IFunction,
        migrations_hash: str,
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.provider = cr.Provider(
            self,
            "Provider",
            on_event_handler=handler,
            log_group=logs.LogGroup(
                self, "ProviderLogs", retention=log_retention, removal_policy=log_removal_policy
            ),
        )
        self.resource = CustomResource(
            self,
            "Resource",
            service_token=self.provider.service_token,
            resource_type=RESOURCE_TYPE,
            properties={"MigrationsHash": migrations_hash},
        )
        self.revision = self.resource.get_att_string("Revision")
        framework = self.provider.node.find_child("framework-onEvent")
        for check_id, reason in FRAMEWORK_CHECKOV_REASONS.items():
            skip_checkov(framework, check_id, reason)
        acknowledge(
            framework,
            "AwsSolutions-IAM4[Policy::arn:<AWS::Partition>:iam::aws:policy/service-role/"
            "AWSLambdaBasicExecutionRole]",
            "The CDK custom-resource framework function only writes its own CloudWatch logs "
            "with this AWS-maintained minimum policy.",
        )
        acknowledge(
            framework,
            f"AwsSolutions-IAM5[Resource::<{_logical_id(handler)}.Arn>:*]",
            "The framework may invoke any version or alias of the migration function (the "
            "ARN suffix wildcard); it can invoke nothing else.",
        )
