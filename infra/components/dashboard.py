"""The standard profile's CloudWatch dashboard: alarm states, the HTTP APIs, the ingest queue, each
function, the streams by transport, the streaming load balancer and tasks, and the database on one
page ($3 a month)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_ecs as ecs
from aws_cdk import aws_elasticloadbalancingv2 as elbv2
from aws_cdk import aws_lambda as lambda_
from aws_cdk import aws_rds as rds
from aws_cdk import aws_sqs as sqs
from constructs import Construct

FIVE_MINUTES = Duration.minutes(5)
ONE_MINUTE = Duration.minutes(1)


def system_dashboard(
    scope: Construct,
    *,
    alarms: Sequence[cloudwatch.IAlarm],
    traffic: list[cloudwatch.IMetric],
    latencies: list[cloudwatch.IMetric],
    queue: sqs.IQueue,
    dead_letter_queue: sqs.IQueue,
    functions: Mapping[str, lambda_.IFunction],
    load_balancer: elbv2.ApplicationLoadBalancer,
    target_group: elbv2.ApplicationTargetGroup,
    service: ecs.FargateService,
    database: rds.DatabaseInstance,
    streams: Mapping[str, Sequence[cloudwatch.IMetric]],
) -> cloudwatch.Dashboard:
    """The dashboard, as ``Dashboard`` under ``scope``. ``streams``: graph title -> the
    streaming metrics it shows (time to first token and open streams, by transport)."""
    dashboard = cloudwatch.Dashboard(scope, "Dashboard")
    dashboard.add_widgets(
        cloudwatch.AlarmStatusWidget(title="Alarms", alarms=list(alarms), width=24, height=4)
    )
    dashboard.add_widgets(
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
    dashboard.add_widgets(
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
    if streams:
        dashboard.add_widgets(
            *(
                cloudwatch.GraphWidget(title=title, left=list(metrics), width=24 // len(streams))
                for title, metrics in streams.items()
            )
        )
    dashboard.add_widgets(
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
    return dashboard
