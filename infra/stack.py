"""The one stack: builds the constructs from the deployment settings, wires them and makes the
grants. Boundaries live in the constructs; this file only connects them."""

from __future__ import annotations

from aws_cdk import Aws, CfnOutput, Duration, RemovalPolicy, Stack
from aws_cdk import aws_apigatewayv2_authorizers as authorizers
from aws_cdk import aws_lambda_event_sources as event_sources
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.bundling import BundleSpec
from infra.components.admin import AdminFunction
from infra.components.api import HttpApi
from infra.components.auth import UserAuth, default_domain_prefix
from infra.components.database import Database, estimated_max_connections
from infra.components.edge import StreamingEdge
from infra.components.functions import AppFunction
from infra.components.log_archive import LogArchive
from infra.components.migrations import SchemaMigrations
from infra.components.monitoring import Monitoring
from infra.components.network import Network
from infra.components.queues import IngestQueues
from infra.components.secrets import AppSecrets
from infra.components.streaming import StreamingService
from infra.config import DRAIN_GRACE_SECONDS, InfraConfig
from infra.lockfile import REPO_ROOT
from infra.nag import skip_checkov

DATABASE_NAME = "ytresearch"
SERVICE_NAME = "ytresearch"
# Per streaming task: a pool of 5 plus up to 5 overflow connections (shared/ytresearch/db/engine.py), so 10 at
# most; see the README's connection budget.
STREAMING_DB_POOL_SIZE = 5
ACCESS_LOG_ARCHIVE_DAYS = 90

RETENTION_BY_DAYS: dict[int, logs.RetentionDays] = {
    1: logs.RetentionDays.ONE_DAY,
    3: logs.RetentionDays.THREE_DAYS,
    5: logs.RetentionDays.FIVE_DAYS,
    7: logs.RetentionDays.ONE_WEEK,
    14: logs.RetentionDays.TWO_WEEKS,
    30: logs.RetentionDays.ONE_MONTH,
    60: logs.RetentionDays.TWO_MONTHS,
    90: logs.RetentionDays.THREE_MONTHS,
    120: logs.RetentionDays.FOUR_MONTHS,
    150: logs.RetentionDays.FIVE_MONTHS,
    180: logs.RetentionDays.SIX_MONTHS,
    365: logs.RetentionDays.ONE_YEAR,
    400: logs.RetentionDays.THIRTEEN_MONTHS,
    545: logs.RetentionDays.EIGHTEEN_MONTHS,
    731: logs.RetentionDays.TWO_YEARS,
    1096: logs.RetentionDays.THREE_YEARS,
    1827: logs.RetentionDays.FIVE_YEARS,
    2192: logs.RetentionDays.SIX_YEARS,
    2557: logs.RetentionDays.SEVEN_YEARS,
    2922: logs.RetentionDays.EIGHT_YEARS,
    3288: logs.RetentionDays.NINE_YEARS,
    3653: logs.RetentionDays.TEN_YEARS,
}


class YtResearchStack(Stack):
    """Network, database, queues, secrets, sign-in, functions, HTTP APIs, streaming service,
    migrations and monitoring for one environment. Exposes each construct as an attribute (used by
    the tests)."""

    def __init__(self, scope: Construct, construct_id: str, *, config: InfraConfig, **kwargs: object) -> None:
        super().__init__(scope, construct_id, **kwargs)  # type: ignore[arg-type]
        self.config = config
        retention = RETENTION_BY_DAYS[config.log_retention_days]
        # Production keeps logs and secrets when the stack goes; other environments clean up.
        removal = RemovalPolicy.RETAIN if config.is_production else RemovalPolicy.DESTROY

        self.log_archive = LogArchive(
            self,
            "LogArchive",
            retention_days=max(ACCESS_LOG_ARCHIVE_DAYS, config.log_retention_days),
            # Delivered logs may be evidence; the lifecycle rule empties the bucket over time.
            removal_policy=RemovalPolicy.RETAIN,
        )
        self.network = Network(
            self,
            "Network",
            max_azs=config.max_azs,
            nat_gateways=config.nat_gateways,
            availability_zones=config.availability_zones,
            flow_log_bucket=self.log_archive.bucket,
            nat_instance_type=config.nat_instance_type if config.nat_instances else None,
        )
        vpc = self.network.vpc
        self.secrets = AppSecrets(
            self,
            "Secrets",
            environment=config.environment,
            with_transcript_proxy=config.transcript_proxy,
            removal_policy=removal,
        )
        self.database = Database(
            self,
            "Database",
            vpc=vpc,
            database_subnets=self.network.database_subnets,
            rotation_subnets=self.network.compute_subnets,
            database_name=DATABASE_NAME,
            instance_type=config.db_instance_type,
            allocated_storage_gib=config.db_allocated_storage_gib,
            max_allocated_storage_gib=config.db_max_allocated_storage_gib,
            backup_retention_days=config.db_backup_retention_days,
            multi_az=config.db_multi_az,
            deletion_protection=config.deletion_protection,
            rotation_days=config.db_rotation_days,
            with_proxy=config.use_db_proxy,
            log_retention=retention,
            log_removal_policy=removal,
        )
        self.auth = UserAuth(
            self,
            "Auth",
            callback_urls=config.auth_callback_urls,
            logout_urls=config.auth_logout_urls,
            domain_prefix=config.cognito_domain_prefix
            or default_domain_prefix(config.environment, config.account),
            threat_protection=config.cognito_threat_protection,
            deletion_protection=config.is_production,
            removal_policy=removal,
            log_retention=retention,
            log_removal_policy=removal,
        )
        # Only the units that authenticate requests learn how to check sign-in tokens.
        token_environment = {
            "YTR_COGNITO_ISSUER": self.auth.issuer,
            "YTR_COGNITO_CLIENT_ID": self.auth.client.user_pool_client_id,
            "YTR_COGNITO_SCOPE": self.auth.api_scope,
        }
        ingest_timeout = Duration.seconds(config.ingest_timeout_seconds)
        self.queues = IngestQueues(
            self,
            "IngestQueues",
            consumer_timeout=ingest_timeout,
            max_receive_count=config.ingest_max_receive_count,
        )

        app_environment = {
            "YTR_ENVIRONMENT": config.environment,
            "YTR_DATABASE_SECRET_ARN": self.database.secret.secret_arn,
            "YTR_DATABASE_NAME": DATABASE_NAME,
            "YTR_QUEUE_BACKEND": "sqs",
            "YTR_INGEST_QUEUE_URL": self.queues.queue.queue_url,
            "YTR_ANTHROPIC_SECRET_ARN": self.secrets.anthropic_api_key.secret_arn,
            "YTR_YOUTUBE_DATA_API_KEY_SECRET_ARN": self.secrets.youtube_data_api_key.secret_arn,
            "YTR_MODEL": config.model,
            "YTR_TRANSCRIPT_SOURCE": "youtube",
        }
        if config.cors_origins:  # unset rather than empty: the code's default is "no CORS"
            app_environment["YTR_CORS_ORIGINS"] = ",".join(config.cors_origins)
        if self.database.proxy is not None:
            # The secret names the instance; clients must connect through the proxy instead.
            app_environment["YTR_DATABASE_HOST"] = self.database.endpoint_host
            # Named prepared statements would pin every client session to one connection.
            app_environment["YTR_DB_PREPARED_STATEMENTS"] = "false"
        lambda_environment = {**app_environment, "YTR_DB_POOL_SIZE": "0"}
        # Only ingest fetches transcripts, so only ingest learns where the proxy secret is.
        ingest_environment = dict(lambda_environment)
        if self.secrets.transcript_proxy is not None:
            ingest_environment["YTR_PROXY_SECRET_ARN"] = self.secrets.transcript_proxy.secret_arn
        function_defaults = {
            "vpc": vpc,
            "vpc_subnets": self.network.compute_subnets,
            "service_name": SERVICE_NAME,
            "log_level": config.log_level,
            "log_retention": retention,
            "log_removal_policy": removal,
        }

        self.api_function = AppFunction(
            self,
            "ApiFunction",
            description="YouTube Research Tool REST API (FastAPI + Mangum)",
            handler="functions.api.handler.handler",
            bundle=BundleSpec(profile="api", install_dependencies=config.bundle_dependencies),
            environment={**lambda_environment, **token_environment},
            memory_mib=config.api_memory_mib,
            timeout=Duration.seconds(config.api_timeout_seconds),
            # With SnapStart (standard; ~$4/month of snapshot cache): initialized once per published
            # version, restored from a snapshot on cold starts; functions/api/handler.py drops
            # connections and caches around the snapshot.
            snap_start=config.snap_start,
            reserved_concurrency=config.api_max_concurrency or None,
            **function_defaults,  # type: ignore[arg-type]
        )
        self.ingest_function = AppFunction(
            self,
            "IngestFunction",
            description="YouTube Research Tool ingest worker (SQS batches)",
            handler="functions.ingest.handler.handler",
            bundle=BundleSpec(profile="ingest", install_dependencies=config.bundle_dependencies),
            environment=ingest_environment,
            memory_mib=config.ingest_memory_mib,
            timeout=ingest_timeout,
            **function_defaults,  # type: ignore[arg-type]
        )
        self.ingest_source = event_sources.SqsEventSource(
            self.queues.queue,
            batch_size=config.ingest_batch_size,
            report_batch_item_failures=True,
            max_concurrency=config.ingest_max_concurrency,
        )
        self.ingest_function.function.add_event_source(self.ingest_source)

        migrate_spec = BundleSpec(profile="migrate", install_dependencies=config.bundle_dependencies)
        self.migrate_function = AppFunction(
            self,
            "MigrateFunction",
            description="YouTube Research Tool schema migrations (Alembic upgrade to head)",
            handler="functions.migrate.handler.handler",
            bundle=migrate_spec,
            environment={
                "YTR_ENVIRONMENT": config.environment,
                "YTR_DATABASE_SECRET_ARN": self.database.secret.secret_arn,
                "YTR_DATABASE_NAME": DATABASE_NAME,
                "YTR_DB_POOL_SIZE": "0",
                **(
                    {"YTR_DATABASE_HOST": self.database.endpoint_host}
                    if self.database.proxy is not None
                    else {}
                ),
            },
            memory_mib=512,
            timeout=Duration.seconds(config.migrate_timeout_seconds),
            **function_defaults,  # type: ignore[arg-type]
        )

        self.streaming = StreamingService(
            self,
            "Streaming",
            vpc=vpc,
            compute_subnets=self.network.compute_subnets,
            public_subnets=self.network.public_subnets,
            build_context=REPO_ROOT,
            environment={
                **app_environment,
                **token_environment,
                # The page it serves signs browsers in through the hosted UI (code + PKCE).
                "YTR_COGNITO_HOSTED_UI_URL": self.auth.hosted_ui_url,
                "YTR_DB_POOL_SIZE": str(STREAMING_DB_POOL_SIZE),
                "YTR_DRAIN_GRACE_SECONDS": str(DRAIN_GRACE_SECONDS),
                # LISTEN goes to the instance: RDS Proxy does not carry notifications.
                **({"YTR_DATABASE_LISTEN_HOST": self.database.instance_host} if self.database.proxy else {}),
                "POWERTOOLS_SERVICE_NAME": SERVICE_NAME,
                "POWERTOOLS_LOG_LEVEL": config.log_level,
            },
            cpu=config.fargate_cpu,
            memory_mib=config.fargate_memory_mib,
            architecture=config.fargate_architecture,
            desired_count=config.fargate_desired_count,
            max_count=config.fargate_max_count,
            cpu_target_percent=config.fargate_cpu_target_percent,
            streams_per_task=config.fargate_streams_per_task,
            service_name=SERVICE_NAME,
            idle_timeout=Duration.seconds(config.alb_idle_timeout_seconds),
            deregistration_delay=Duration.seconds(config.deregistration_delay_seconds),
            stop_timeout=Duration.seconds(config.container_stop_timeout_seconds),
            certificate_arn=config.certificate_arn,
            behind_cloudfront=config.cloudfront,
            internal=config.vpc_origin,
            spot=config.fargate_spot,
            container_insights=config.container_insights,
            access_log_bucket=self.log_archive.bucket,
            log_retention=retention,
            log_removal_policy=removal,
        )
        task_role = self.streaming.task_definition.task_role
        self.edge: StreamingEdge | None = None
        self.streaming_url = self.streaming.url
        if config.cloudfront:
            self.edge = StreamingEdge(
                self,
                "StreamingEdge",
                load_balancer=self.streaming.load_balancer,
                listener=self.streaming.listener,
                listener_port=self.streaming.listener_port,
                target_group=self.streaming.target_group,
                origin_domain=config.domain_name,
                prefix_list_id=config.cloudfront_prefix_list_id,
                removal_policy=removal,
                log_retention=retention,
                vpc_origin=config.vpc_origin,
            )
            self.streaming_url = self.edge.url
        if self.streaming_url.startswith("https://"):
            # The page the streaming service serves at / signs in through the hosted UI.
            self.auth.add_page_url(self.streaming_url)

        # Grants and network paths: each unit gets exactly what its code uses.
        for unit in (self.api_function, self.ingest_function, self.migrate_function):
            self.database.secret.grant_read(unit.function)
        self.database.secret.grant_read(task_role)
        for grantee in (self.api_function.function, self.ingest_function.function, task_role):
            self.secrets.anthropic_api_key.grant_read(grantee)
            self.queues.queue.grant_send_messages(grantee)
        for grantee in (self.api_function.function, task_role):  # the agent's discovery tools
            self.secrets.youtube_data_api_key.grant_read(grantee)
        if self.secrets.transcript_proxy is not None:
            self.secrets.transcript_proxy.grant_read(self.ingest_function.function)
        self.database.allow_from(self.api_function.security_group, "CRUD function")
        self.database.allow_from(self.ingest_function.security_group, "Ingest function")
        self.database.allow_from(self.migrate_function.security_group, "Migration function")
        self.database.allow_from(self.streaming.security_group, "Streaming tasks")
        if self.database.proxy is not None:
            # Each task's event-log listener holds one LISTEN session on the instance itself.
            self.database.allow_direct_from(
                self.streaming.security_group, "Streaming tasks' event-log listener"
            )

        self.migrations = SchemaMigrations(
            self,
            "SchemaMigrations",
            handler=self.migrate_function.function,
            # Changes whenever the migrate bundle does (domain package, Alembic scripts, pins).
            migrations_hash=self.migrate_function.code_hash,
            log_retention=retention,
            log_removal_policy=removal,
        )
        # Migrate once the database, its secret and the ingress rules exist; serve traffic (new
        # code) only after the schema is at head.
        self.migrations.resource.node.add_dependency(self.database)
        self.api_function.function.node.add_dependency(self.migrations.resource)
        self.ingest_function.function.node.add_dependency(self.migrations.resource)
        self.streaming.service.node.add_dependency(self.migrations.resource)

        # Users and API keys without a database connection: `ytr-admin --deployed <AdminFunctionName>`.
        self.admin = AdminFunction(
            self,
            "Admin",
            database=self.database,
            database_name=DATABASE_NAME,
            environment_name=config.environment,
            install_dependencies=config.bundle_dependencies,
            run_after=self.migrations.resource,
            **function_defaults,  # type: ignore[arg-type]
        )
        CfnOutput(
            self,
            "AdminFunctionName",
            value=self.admin.function.function_name,
            description="ytr-admin --deployed <this> create-user you@example.com (IAM invoke only)",
        )

        api_settings = {
            "handler": self.api_function.target,  # the live alias: SnapStart serves versions only
            "integration_timeout": Duration.seconds(config.api_timeout_seconds),
            "cors_origins": config.cors_origins,
            "throttle_rate": config.api_throttle_rate,
            "throttle_burst": config.api_throttle_burst,
            "log_retention": retention,
            "log_removal_policy": removal,
        }
        # Two HTTP APIs over the same function (see infra/components/api.py): the main one checks
        # Cognito access tokens at the edge; API-key clients, which such an authorizer would turn
        # away for lacking an Authorization header, get their own, checked by the application.
        self.http_api = HttpApi(
            self,
            "HttpApi",
            description="YouTube Research Tool REST API (Cognito sign-in; CRUD Lambda)",
            authorizer=authorizers.HttpUserPoolAuthorizer(
                "CognitoAuthorizer",
                self.auth.user_pool,
                user_pool_clients=[self.auth.client],
                identity_source=["$request.header.Authorization"],
            ),
            authorization_scopes=[self.auth.api_scope],
            **api_settings,  # type: ignore[arg-type]
        )
        self.key_api = HttpApi(
            self,
            "KeyApi",
            description="YouTube Research Tool REST API for API keys (X-API-Key; CRUD Lambda)",
            **api_settings,  # type: ignore[arg-type]
        )

        if self.edge is not None:
            # The page (served by the streaming service) calls the REST routes on its own origin.
            # The key API: its function checks Cognito tokens and API keys alike.
            self.edge.serve_rest_api(self.key_api.api)

        self.monitoring = Monitoring(
            self,
            "Monitoring",
            apis={"Api": self.http_api.api, "KeyApi": self.key_api.api},
            functions={
                "Api": self.api_function.function,
                "Ingest": self.ingest_function.function,
                # A failing token trigger stops every sign-in.
                "TokenTrigger": self.auth.token_trigger,
            },
            queue=self.queues.queue,
            dead_letter_queue=self.queues.dead_letter_queue,
            load_balancer=self.streaming.load_balancer,
            target_group=self.streaming.target_group,
            service=self.streaming.service,
            min_tasks=config.fargate_desired_count,
            container_insights=config.container_insights,
            database=self.database.instance,
            database_max_connections=estimated_max_connections(config.db_instance_type),
            database_burstable=config.db_instance_type.startswith("t"),
            service_name=SERVICE_NAME,
            monthly_budget_usd=config.monthly_budget_usd,
            alarm_email=config.alarm_email,
            essential_only=config.essential_monitoring,
        )

        CfnOutput(
            self, "ApiUrl", value=self.http_api.url, description="REST API base URL (Authorization: Bearer)"
        )
        CfnOutput(
            self,
            "KeyApiUrl",
            value=self.key_api.url,
            description="REST API base URL for API keys (X-API-Key)",
        )
        CfnOutput(
            self,
            "StreamingUrl",
            value=self.streaming_url,
            description="Streaming base URL (HTTPS through CloudFront unless cloudfront=false)",
        )
        if self.edge is not None and config.domain_name:
            CfnOutput(
                self,
                "OriginDnsTarget",
                value=self.streaming.load_balancer.load_balancer_dns_name,
                description=f"Point {config.domain_name} (CNAME or alias) here",
            )
        CfnOutput(self, "UserPoolId", value=self.auth.user_pool.user_pool_id)
        CfnOutput(
            self,
            "UserPoolClientId",
            value=self.auth.client.user_pool_client_id,
            description="ytr login --client-id",
        )
        CfnOutput(self, "CognitoRegion", value=Aws.REGION, description="ytr login --region")
        CfnOutput(self, "CognitoIssuer", value=self.auth.issuer)
        CfnOutput(self, "HostedUiUrl", value=self.auth.hosted_ui_url, description="Sign-in pages")
        CfnOutput(
            self,
            "AnthropicSecretName",
            value=self.secrets.anthropic_api_key.secret_name,
            description="Put the Anthropic API key here (plain string)",
        )
        CfnOutput(
            self,
            "YouTubeDataApiKeySecretName",
            value=self.secrets.youtube_data_api_key.secret_name,
            description="Put a YouTube Data API v3 key here (plain string) for the agent's search",
        )
        if self.secrets.transcript_proxy is not None:
            CfnOutput(
                self,
                "TranscriptProxySecretName",
                value=self.secrets.transcript_proxy.secret_name,
                description="Put the transcript proxy settings here (JSON)",
            )
        CfnOutput(
            self,
            "DatabaseSecretName",
            value=self.database.secret.secret_name,
            description="Generated, rotated database credentials",
        )
        CfnOutput(self, "AlarmTopicArn", value=self.monitoring.topic.topic_arn)
        CfnOutput(self, "DeadLetterQueueUrl", value=self.queues.dead_letter_queue.queue_url)
        self._skip_stack_wide_checks()

    def _skip_stack_wide_checks(self) -> None:
        """checkov findings that hold for every resource of a type in this stack, for one reason."""
        skip_checkov(
            self,
            "CKV_AWS_158",
            "CloudWatch Logs encrypts every log group at rest with its own keys; the logs hold no "
            "secrets (every line is masked) and a customer KMS key would need a key policy for the "
            "Logs service in each region and cost more than the logs themselves.",
            resource_type="AWS::Logs::LogGroup",
        )
        skip_checkov(
            self,
            "CKV_AWS_149",
            "Secrets are encrypted with the AWS-managed aws/secretsmanager key; who may read each "
            "one is decided by the per-unit IAM grants, which a customer key would only duplicate "
            "in a key policy, at $1 per key per month.",
            resource_type="AWS::SecretsManager::Secret",
        )
