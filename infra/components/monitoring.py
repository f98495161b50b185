"""Alarms and a dashboard for the things that page someone."""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as actions
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

FIVE_MINUTES = Duration.minutes(5)
ONE_MINUTE = Duration.minutes(1)
API_5XX_PERCENT = 5
RDS_CPU_PERCENT = 80
RDS_FREE_STORAGE_BYTES = 2 * 1024**3


class Monitoring(Construct):
    """Exposes ``topic`` (alarm notifications), ``alarms`` (by name) and ``dashboard``."""

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
        database: rds.DatabaseInstance,
        alarm_email: str | None,
    ) -> None:
        super().__init__(scope, construct_id)
        # Alarm state changes only, no application data: SSE with the AWS-managed aws/sns key is
        # not an option (CloudWatch cannot publish to it) and a customer key costs $1/month.
        self.topic = sns.Topic(self, "AlarmTopic", enforce_ssl=True)
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
            "DatabaseFreeStorage",
            database.metric_free_storage_space(period=FIVE_MINUTES, statistic="Minimum"),
            threshold=RDS_FREE_STORAGE_BYTES,
            comparison=cloudwatch.ComparisonOperator.LESS_THAN_THRESHOLD,
            description="Database free storage below 2 GiB (autoscaling may be at its maximum).",
        )

        self.dashboard = cloudwatch.Dashboard(self, "Dashboard")
        self.dashboard.add_widgets(
            cloudwatch.AlarmStatusWidget(
                title="Alarms", alarms=list(self.alarms.values()), width=24, height=4
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(title="HTTP API requests and 5xx", left=traffic, width=8),
            cloudwatch.GraphWidget(title="HTTP API latency (p90, ms)", left=latencies, width=8),
            cloudwatch.GraphWidget(
                title="Ingest queue",
                left=[
                    queue.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES),
                    dead_letter_queue.metric_approximate_number_of_messages_visible(period=FIVE_MINUTES),
                ],
                right=[queue.metric_approximate_age_of_oldest_message(period=FIVE_MINUTES)],
                width=8,
            ),
        )
        self.dashboard.add_widgets(
            *(
                cloudwatch.GraphWidget(
                    title=f"{name} function",
                    left=[
                        function.metric_invocations(period=FIVE_MINUTES),
                        function.metric_errors(period=FIVE_MINUTES),
                        function.metric_throttles(period=FIVE_MINUTES),
                    ],
                    right=[function.metric_duration(period=FIVE_MINUTES, statistic="p90")],
                    width=24 // max(len(functions), 1),
                )
                for name, function in functions.items()
            )
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Streaming load balancer",
                left=[
                    load_balancer.metrics.request_count(period=FIVE_MINUTES),
                    load_balancer.metrics.http_code_target(
                        elbv2.HttpCodeTarget.TARGET_5XX_COUNT, period=FIVE_MINUTES
                    ),
                ],
                right=[load_balancer.metrics.active_connection_count(period=FIVE_MINUTES)],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Streaming tasks (CPU / memory %)",
                left=[
                    service.metric_cpu_utilization(period=FIVE_MINUTES),
                    service.metric_memory_utilization(period=FIVE_MINUTES),
                ],
                right=[
                    target_group.metrics.healthy_host_count(period=ONE_MINUTE),
                    target_group.metrics.unhealthy_host_count(period=ONE_MINUTE),
                ],
                width=8,
            ),
            cloudwatch.GraphWidget(
                title="Database",
                left=[database.metric_cpu_utilization(period=FIVE_MINUTES)],
                right=[
                    database.metric_database_connections(period=FIVE_MINUTES),
                    database.metric_free_storage_space(period=FIVE_MINUTES),
                ],
                width=8,
            ),
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
    ) -> cloudwatch.Alarm:
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
