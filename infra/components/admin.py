"""The admin function: users and API keys for a deployed stack (`ytr-admin --deployed`).

The database sits in isolated subnets, so the operator's first hour (the first user, API keys,
revoking one) runs here, beside the database, in the same private subnets and with the same
database access as the CRUD function. Only IAM can call it: it has no function URL, no API
route and no resource policy, so a caller needs ``lambda:InvokeFunction`` on it from an identity
of this account (``aws lambda invoke`` or boto3).
"""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_ec2 as ec2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_logs as logs
from constructs import Construct, IConstruct

from infra.bundling import BundleSpec
from infra.components.database import Database
from infra.components.functions import AppFunction

HANDLER = "functions.admin.handler.handler"
# The migration function's bundle holds what the admin code imports (SQLAlchemy, pg8000, settings,
# Powertools; boto3 comes with the runtime) and nothing of the web stack or the model SDK.
BUNDLE_PROFILE = "migrate"


class AdminFunction(Construct):
    """Exposes ``function`` (to invoke) and ``security_group``. Reads the database secret and may
    connect to the database (or its proxy); serves nothing before the schema is migrated."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        database: Database,
        database_name: str,
        environment_name: str,
        install_dependencies: bool,
        run_after: IConstruct,
        service_name: str,
        vpc: ec2.IVpc,
        vpc_subnets: ec2.SubnetSelection,
        log_level: str,
        log_retention: logs.RetentionDays,
        log_removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        environment = {
            "YTR_ENVIRONMENT": environment_name,
            "YTR_DATABASE_SECRET_ARN": database.secret.secret_arn,
            "YTR_DATABASE_NAME": database_name,
            "YTR_DB_POOL_SIZE": "0",
        }
        if database.proxy is not None:
            # The secret names the instance; connect through the proxy, without pinning sessions.
            environment["YTR_DATABASE_HOST"] = database.endpoint_host
            environment["YTR_DB_PREPARED_STATEMENTS"] = "false"
        unit = AppFunction(
            self,
            "Function",
            description="YouTube Research Tool admin: users and API keys (IAM invoke only)",
            handler=HANDLER,
            bundle=BundleSpec(profile=BUNDLE_PROFILE, install_dependencies=install_dependencies),
            environment=environment,
            service_name=service_name,
            vpc=vpc,
            vpc_subnets=vpc_subnets,
            memory_mib=512,
            timeout=Duration.seconds(30),
            log_level=log_level,
            log_retention=log_retention,
            log_removal_policy=log_removal_policy,
        )
        self.function: lambda_.Function = unit.function
        self.security_group = unit.security_group
        database.secret.grant_read(self.function)
        database.allow_from(self.security_group, "Admin function")
        self.function.node.add_dependency(run_after)
