"""Alarms, a dashboard and a cost budget for the things that page someone.

With ``essential_only`` (the lean profile) only the alarms in ESSENTIAL_ALARMS exist, the ones
that say something a user sees is broken, and there is no dashboard (CloudWatch's automatic
per-service dashboards stay free); the budget stays. Each alarm costs $0.10 per metric a month,
a dashboard $3.
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Aws, Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_budgets as budgets
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.components.dashboard import system_dashboard
from infra.nag import skip_checkov

FIVE_MINUTES = Duration.minutes(5)
ONE_MINUTE = Duration.minutes(1)
API_5XX_PERCENT = 5
RDS_CPU_PERCENT = 80
RDS_FREE_STORAGE_BYTES = 2 * 1024**3
RDS_CONNECTIONS_PERCENT = 80  # of the instance's estimated max_connections
RDS_MIN_CPU_CREDITS = 20  # burstable classes throttle to their baseline when credits run out
RDS_MIN_FREEABLE_MEMORY_BYTES = 100 * 1024**2
ALB_5XX_PERCENT = 5
# A message waits a visibility timeout (6x the ingest timeout, 42 min by default) between attempts,
# so an hour-old message means jobs are stuck, not merely retried once.
QUEUE_OLDEST_MESSAGE_SECONDS = 3600
TTFT_P95_MILLISECONDS = 5000
MODEL_UNAVAILABLE_ERRORS = 1  # per 5 minutes: the configured model does not exist, every chat fails
# The application's own metrics (shared/ytresearch/observability/metrics.py): namespace and dimensions.
APP_NAMESPACE = "YtResearch"
MODEL_UNAVAILABLE = "MODEL_UNAVAILABLE"
BUDGET_ACTUAL_PERCENT = 80
BUDGET_FORECAST_PERCENT = 100
# The lean profile's alarms: REST failures (the CRUD function's errors, behind both HTTP APIs),
# sign-in (the token trigger), streaming failures and missing tasks (Fargate Spot capacity
# included), ingest jobs given up on, a filling database, and a model that no longer exists.
ESSENTIAL_ALARMS = frozenset(
    {
        "ApiErrors",
        "TokenTriggerErrors",
        "DeadLetters",
        "Streaming5xxRate",
        "StreamingTasksBelowDesired",
        "DatabaseFreeStorage",
        "ModelUnavailable",
    }
)


class Monitoring(Construct):
    """Exposes ``topic`` (alarm notifications), ``alarms`` (by name), ``dashboard`` (or None) and
    ``budget`` (or None)."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        apis: Mapping[str, apigwv2.HttpApi],
        functions: Mapping[str, lambda_.IFunction],
        queue: sqs.IQueue,
        dead_letter_queue: sqs.IQueue,
        load_balancer: elbv2.ApplicationLoadBalancer,
        target_group: elbv2.ApplicationTargetGroup,
        service: ecs.FargateService,
        min_tasks: int,
        container_insights: bool,
        database: rds.DatabaseInstance,
        database_max_connections: int,
        database_burstable: bool,
        service_name: str,
        monthly_budget_usd: int,
        alarm_email: str | None,
        essential_only: bool = False,
    ) -> None:
        super().__init__(scope, construct_id)
        self.essential_only = essential_only
        # Alarm state changes only, no application data: SSE with the AWS-managed aws/sns key is
        # not an option (CloudWatch cannot publish to it) and a customer key costs $1/month.
        self.topic = sns.Topic(self, "AlarmTopic", enforce_ssl=True)
        skip_checkov(
            self.topic,
            "CKV_AWS_26",
            "The topic carries alarm state changes and budget notices only, no application data; "
            "CloudWatch cannot publish to the AWS-managed aws/sns key and a customer key costs more "
            "than everything else the topic does.",
        )
        if alarm_email:
            self.topic.add_subscription(subscriptions.EmailSubscription(alarm_email))
        self.alarms: dict[str, cloudwatch.Alarm] = {}

        traffic: list[cloudwatch.IMetric] = []
        latencies: list[cloudwatch.IMetric] = []
        for name, api in apis.items():
            requests = api.metric_count(period=FIVE_MINUTES, statistic="Sum", label=f"{name} requests")
            server_errors = api.metric_server_error(period=FIVE_MINUTES, statistic="Sum", label=f"{name} 5xx")
            traffic += [requests, server_errors]
            latencies.append(api.metric_latency(period=FIVE_MINUTES, statistic="p90", label=name))
            error_rate = cloudwatch.MathExpression(
                expression="IF(requests > 0, 100 * errors / requests, 0)",
                using_metrics={"requests": requests, "errors": server_errors},
                period=FIVE_MINUTES,
                label=f"{name} 5xx responses (%)",
            )
            self._alarm(
                f"{name}5xxRate",
                error_rate,
                threshold=API_5XX_PERCENT,
                evaluation_periods=3,
                datapoints_to_alarm=2,
                description=f"More than {API_5XX_PERCENT}% of the {name} HTTP API's responses are 5xx.",
            )
        for name, function in functions.items():
            self._alarm(
                f"{name}Errors",
                function.metric_errors(period=FIVE_MINUTES, statistic="Sum"),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                description=f"The {name} function reported errors.",
            )
            self._alarm(
                f"{name}Throttles",
                function.metric_throttles(period=FIVE_MINUTES, statistic="Sum"),
                threshold=1,
                comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
                description=f"The {name} function was throttled.",
            )
        self._alarm(
            "DeadLetters",
            dead_letter_queue.metric_approximate_number_of_messages_visible(
                period=FIVE_MINUTES, statistic="Maximum"
            ),
            threshold=0,
            description="Ingest jobs failed every retry and wait in the dead-letter queue.",
        )
        self._alarm(
            "UnhealthyStreamingTargets",
            target_group.metrics.unhealthy_host_count(period=ONE_MINUTE, statistic="Maximum"),
            threshold=1,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            evaluation_periods=3,
            description="Streaming tasks fail the load balancer health check on /health.",
        )
        self._alarm(
            "DatabaseCpu",
            database.metric_cpu_utilization(period=FIVE_MINUTES, statistic="Average"),
            threshold=RDS_CPU_PERCENT,
            evaluation_periods=3,
            description=f"Database CPU above {RDS_CPU_PERCENT}% for 15 minutes.",
        )
        self._alarm(
            "DatabaseConnections",
            database.metric_database_connections(period=FIVE_MINUTES, statistic="Maximum"),
            threshold=database_max_connections * RDS_CONNECTIONS_PERCENT // 100,
            evaluation_periods=2,
            description=(
                f"Database connections above {RDS_CONNECTIONS_PERCENT}% of about "
                f"{database_max_connections} (README: connection budget)."
            ),
        )
        if database_burstable:
            self._alarm(
                "DatabaseCpuCredits",
                database.metric("CPUCreditBalance", period=FIVE_MINUTES, statistic="Minimum"),
                threshold=RDS_MIN_CPU_CREDITS,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=3,
                description="The burstable database is running out of CPU credits (then throttled).",
            )
        self._alarm(
            "DatabaseFreeableMemory",
            database.metric_freeable_memory(period=FIVE_MINUTES, statistic="Minimum"),
            threshold=RDS_MIN_FREEABLE_MEMORY_BYTES,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            evaluation_periods=3,
            description="Database freeable memory below 100 MiB for 15 minutes.",
        )
        self._alarm(
            "IngestQueueAge",
            queue.metric_approximate_age_of_oldest_message(period=FIVE_MINUTES, statistic="Maximum"),
            threshold=QUEUE_OLDEST_MESSAGE_SECONDS,
            evaluation_periods=3,
            description="An ingest job has waited in the queue for more than an hour.",
        )
        alb_requests = load_balancer.metrics.request_count(period=FIVE_MINUTES, statistic="Sum")
        alb_errors = cloudwatch.MathExpression(
            expression="IF(requests > 0, 100 * (elb + target) / requests, 0)",
            using_metrics={
                "requests": alb_requests,
                "elb": load_balancer.metrics.http_code_elb(
                    elbv2.HttpCodeElb.ELB_5XX_COUNT, period=FIVE_MINUTES, statistic="Sum"
                ),
                "target": load_balancer.metrics.http_code_target(
                    elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=FIVE_MINUTES, statistic="Sum"
                ),
            },
            period=FIVE_MINUTES,
            label="Streaming 5xx responses (%)",
        )
        self._alarm(
            "Streaming5xxRate",
            alb_errors,
            threshold=ALB_5XX_PERCENT,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            description=f"More than {ALB_5XX_PERCENT}% of the streaming load balancer's responses are 5xx.",
        )
        if container_insights:
            task_gap = cloudwatch.MathExpression(
                expression="desired - running",
                using_metrics={
                    "desired": self._service_metric(service, "DesiredTaskCount"),
                    "running": self._service_metric(service, "RunningTaskCount"),
                },
                period=ONE_MINUTE,
                label="Tasks missing",
            )
            self._alarm(
                "StreamingTasksBelowDesired",
                task_gap,
                threshold=0,
                evaluation_periods=5,
                description="Fewer streaming tasks run than the service wants, for 5 minutes.",
            )
        else:
            # Without Container Insights ECS publishes no task counts; healthy targets stand in.
            self._alarm(
                "StreamingTasksBelowDesired",
                target_group.metrics.healthy_host_count(period=ONE_MINUTE, statistic="Minimum"),
                threshold=min_tasks,
                comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
                evaluation_periods=5,
                description=f"Fewer than {min_tasks} healthy streaming tasks for 5 minutes.",
            )
        time_to_first_token = cloudwatch.Metric(
            namespace=APP_NAMESPACE,
            metric_name="TimeToFirstToken",
            dimensions_map={"service": service_name, "purpose": "chat"},
            statistic="p95",
            period=FIVE_MINUTES,
            unit=cloudwatch.Unit.MILLISECONDS,
        )
        self._alarm(
            "ChatTimeToFirstToken",
            time_to_first_token,
            threshold=TTFT_P95_MILLISECONDS,
            evaluation_periods=3,
            datapoints_to_alarm=2,
            description="Chat time to first token p95 above 5 s: users wait for the model.",
        )
        self._alarm(
            "ModelUnavailable",
            cloudwatch.Metric(
                namespace=APP_NAMESPACE,
                metric_name="Errors",
                dimensions_map={"service": service_name, "code": MODEL_UNAVAILABLE},
                statistic="Sum",
                period=FIVE_MINUTES,
            ),
            threshold=MODEL_UNAVAILABLE_ERRORS,
            comparison=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            description="Chats fail with MODEL_UNAVAILABLE: the configured model does not exist "
            "(end of life?); deploy with another -c model.",
        )
        self.budget: budgets.CfnBudget | None = None
        if monthly_budget_usd:
            self.budget = self._budget(monthly_budget_usd)
        self._alarm(
            "DatabaseFreeStorage",
            database.metric_free_storage_space(period=FIVE_MINUTES, statistic="Minimum"),
            threshold=RDS_FREE_STORAGE_BYTES,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            description="Database free storage below 2 GiB (autoscaling may be at its maximum).",
        )

        self.dashboard: cloudwatch.Dashboard | None = None
        if essential_only:
            return
        self.dashboard = system_dashboard(
            self,
            alarms=list(self.alarms.values()),
            traffic=traffic,
            latencies=latencies,
            queue=queue,
            dead_letter_queue=dead_letter_queue,
            functions=functions,
            load_balancer=load_balancer,
            target_group=target_group,
            service=service,
            database=database,
            streams=stream_metrics(service_name),
        )

    def _budget(self, monthly_usd: int) -> budgets.CfnBudget:
        """Account-wide monthly cost budget: the alarm topic hears at 80% actual, 100% forecast."""
        self.topic.add_to_resource_policy(
            iam.PolicyStatement(
                sid="AllowBudgetsToPublish",
                principals=[iam.ServicePrincipal("budgets.amazonaws.com")],
                actions=["sns:Publish"],
                resources=[self.topic.topic_arn],
                conditions={"StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
            )
        )
        subscribers = [
            budgets.CfnBudget.SubscriberProperty(subscription_type="SNS", address=self.topic.topic_arn)
        ]
        return budgets.CfnBudget(
            self,
            "MonthlyBudget",
            budget=budgets.CfnBudget.BudgetDataProperty(
                budget_type="COST",
                time_unit="MONTHLY",
                budget_limit=budgets.CfnBudget.SpendProperty(amount=monthly_usd, unit="USD"),
            ),
            notifications_with_subscribers=[
                budgets.CfnBudget.NotificationWithSubscribersProperty(
                    notification=budgets.CfnBudget.NotificationProperty(
                        comparison_operator="GREATER_THAN",
                        notification_type=kind,
                        threshold=percent,
                        threshold_type="PERCENTAGE",
                    ),
                    subscribers=subscribers,
                )
                for kind, percent in (
                    ("ACTUAL", BUDGET_ACTUAL_PERCENT),
                    ("FORECASTED", BUDGET_FORECAST_PERCENT),
                )
            ],
        )

    @staticmethod
    def _service_metric(service: ecs.FargateService, name: str) -> cloudwatch.Metric:
        return cloudwatch.Metric(
            namespace="ECS/ContainerInsights",
            metric_name=name,
            dimensions_map={
                "ClusterName": service.cluster.cluster_name,
                "ServiceName": service.service_name,
            },
            statistic="Average",
            period=ONE_MINUTE,
        )

    def _alarm(
        self,
        name: str,
        metric: cloudwatch.IMetric,
        *,
        threshold: float,
        description: str,
        comparison: cloudwatch.ComparisonOperator = (cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD),
        evaluation_periods: int = 1,
        datapoints_to_alarm: int | None = None,
    ) -> cloudwatch.Alarm | None:
        if self.essential_only and name not in ESSENTIAL_ALARMS:
            return None
        alarm = cloudwatch.Alarm(
            self,
            name,
            metric=metric,
            threshold=threshold,
            comparison_operator=comparison,
            evaluation_periods=evaluation_periods,
            datapoints_to_alarm=datapoints_to_alarm,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            alarm_description=description,
        )
        alarm.add_alarm_action(actions.SnsAction(self.topic))
        alarm.add_ok_action(actions.SnsAction(self.topic))
        self.alarms[name] = alarm
        return alarm


# The streams a client reads, as the streaming service measures them (streaming_service.stream_meter).
TRANSPORTS = ("sse", "sse_one_step", "websocket", "poll")


def stream_metrics(service_name: str) -> dict[str, list[cloudwatch.IMetric]]:
    """The dashboard's streaming graphs: time to first token p50 and p95 per transport, and the
    streams open per transport."""

    def metric(name: str, transport: str, statistic: str, label: str) -> cloudwatch.IMetric:
        return cloudwatch.Metric(
            namespace=APP_NAMESPACE,
            metric_name=name,
            dimensions_map={"service": service_name, "transport": transport},
            statistic=statistic,
            period=FIVE_MINUTES,
            label=label,
        )

    return {
        "Time to first token by transport (p50 / p95, ms)": [
            metric("StreamTimeToFirstToken", transport, stat, f"{transport} {stat}")
            for transport in TRANSPORTS
            for stat in ("p50", "p95")
        ],
        "Open streams by transport (max)": [
            metric("OpenStreams", transport, "Maximum", transport) for transport in TRANSPORTS[:3]
        ],
    }
