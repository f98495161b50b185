"""Operations: log retention everywhere, alarms that page, a dashboard, tags on everything."""

from __future__ import annotations

from typing import Any

import pytest

from infra.components.monitoring import ESSENTIAL_ALARMS
from tests.infra.synth import CONFIGURATIONS, Synth

EXPECTED_TAGS = {"project": "youtube-research-tool", "managed-by": "aws-cdk"}


@pytest.fixture(params=sorted(CONFIGURATIONS))
def synth(request: pytest.FixtureRequest) -> Synth:
    return request.getfixturevalue(f"{request.param}_synth")


def test_every_log_group_has_a_retention(synth: Synth) -> None:
    groups = synth.of_type("AWS::Logs::LogGroup")

    assert groups
    for logical_id, group in groups.items():
        assert group["Properties"].get("RetentionInDays"), f"{logical_id} keeps logs forever"


def test_every_function_logs_to_a_log_group_of_this_stack(synth: Synth) -> None:
    groups = set(synth.of_type("AWS::Logs::LogGroup"))

    for logical_id, function in synth.of_type("AWS::Lambda::Function").items():
        target = function["Properties"].get("LoggingConfig", {}).get("LogGroup")
        assert target == {"Ref": target["Ref"]} and target["Ref"] in groups, logical_id


def test_the_rotation_function_log_group_is_created_with_retention(synth: Synth) -> None:
    (application,) = synth.of_type("AWS::Serverless::Application").values()
    function_name = application["Properties"]["Parameters"]["functionName"]
    names = {
        group["Properties"].get("LogGroupName")
        for group in synth.of_type("AWS::Logs::LogGroup").values()
        if isinstance(group["Properties"].get("LogGroupName"), str)
    }

    assert f"/aws/lambda/{function_name}" in names


def test_container_and_api_logs_go_to_retained_groups(synth: Synth) -> None:
    groups = set(synth.of_type("AWS::Logs::LogGroup"))
    task = next(iter(synth.of_type("AWS::ECS::TaskDefinition").values()))
    options = task["Properties"]["ContainerDefinitions"][0]["LogConfiguration"]["Options"]
    stages = synth.of_type("AWS::ApiGatewayV2::Stage").values()

    assert options["awslogs-group"]["Ref"] in groups
    assert len(stages) == 2  # the Cognito API and the API-key API
    for stage in stages:
        assert stage["Properties"]["AccessLogSettings"]["DestinationArn"]["Fn::GetAtt"][0] in groups


def _alarms(synth: Synth) -> dict[str, dict[str, Any]]:
    return {
        logical_id: alarm["Properties"]
        for logical_id, alarm in synth.of_type("AWS::CloudWatch::Alarm").items()
    }


def _metric_names(alarm: dict[str, Any]) -> set[str]:
    if "MetricName" in alarm:
        return {alarm["MetricName"]}
    return {
        query["MetricStat"]["Metric"]["MetricName"]
        for query in alarm.get("Metrics", [])
        if "MetricStat" in query
    }


def test_standard_alarms_cover_api_functions_queue_service_and_database(standard_synth: Synth) -> None:
    alarms = _alarms(standard_synth)
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for alarm in alarms.values():
        for name in _metric_names(alarm):
            by_metric.setdefault(name, []).append(alarm)

    assert {"5xx", "Count"} <= {
        name for alarm in alarms.values() if "Metrics" in alarm for name in _metric_names(alarm)
    }
    assert len(by_metric["5xx"]) == 2  # one 5xx-rate alarm per HTTP API
    lambda_errors = [alarm for alarm in by_metric["Errors"] if alarm["Namespace"] == "AWS/Lambda"]
    assert len(lambda_errors) == 3  # CRUD, ingest and the token trigger (sign-in stops without it)
    assert len(by_metric["Throttles"]) == 3
    (dlq,) = by_metric["ApproximateNumberOfMessagesVisible"]
    assert dlq["Threshold"] == 0
    assert dlq["ComparisonOperator"] == "GreaterThanThreshold"
    dlq_name = standard_synth.logical_id(standard_synth.stack.queues.dead_letter_queue)
    assert dlq["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dlq_name, "QueueName"]}
    assert by_metric["UnHealthyHostCount"]
    assert by_metric["CPUUtilization"][0]["Namespace"] == "AWS/RDS"
    (storage,) = by_metric["FreeStorageSpace"]
    assert storage["ComparisonOperator"] == "LessThanThreshold"


def test_every_alarm_notifies_the_alarm_topic(synth: Synth) -> None:
    topic = synth.logical_id(synth.stack.monitoring.topic)

    assert _alarms(synth)
    for logical_id, alarm in _alarms(synth).items():
        assert alarm["AlarmActions"] == [{"Ref": topic}], logical_id
        assert alarm["TreatMissingData"] == "notBreaching"


def test_lean_keeps_only_the_alarms_that_say_users_are_affected(default_synth: Synth) -> None:
    alarms = _alarms(default_synth)
    by_metric: dict[str, list[dict[str, Any]]] = {}
    for alarm in alarms.values():
        for name in _metric_names(alarm):
            by_metric.setdefault(name, []).append(alarm)

    assert set(default_synth.stack.monitoring.alarms) == ESSENTIAL_ALARMS
    assert len(alarms) == len(ESSENTIAL_ALARMS)
    # The CRUD function (behind both HTTP APIs) and the token trigger (sign-in)
    lambda_errors = [alarm for alarm in by_metric["Errors"] if alarm.get("Namespace") == "AWS/Lambda"]
    assert len(lambda_errors) == 2
    (dlq,) = by_metric["ApproximateNumberOfMessagesVisible"]
    dlq_name = default_synth.logical_id(default_synth.stack.queues.dead_letter_queue)
    assert dlq["Dimensions"][0]["Value"] == {"Fn::GetAtt": [dlq_name, "QueueName"]}
    streaming = _alarm_on(default_synth, "HTTPCode_ELB_5XX_Count", "AWS/ApplicationELB")
    assert "HTTPCode_Target_5XX_Count" in _metric_names(streaming)
    # Missing tasks, Fargate Spot capacity included
    tasks = _alarm_on(default_synth, "HealthyHostCount", "AWS/ApplicationELB")
    assert tasks["Threshold"] == default_synth.stack.config.fargate_desired_count
    (storage,) = by_metric["FreeStorageSpace"]
    assert storage["ComparisonOperator"] == "LessThanThreshold"
    model = _alarm_on(default_synth, "Errors", "YtResearch")
    assert {d["Name"]: d["Value"] for d in model["Dimensions"]}["code"] == "MODEL_UNAVAILABLE"


def test_alarm_email_subscribes_when_given(default_synth: Synth, full_synth: Synth) -> None:
    assert not default_synth.of_type("AWS::SNS::Subscription")
    (subscription,) = full_synth.of_type("AWS::SNS::Subscription").values()
    assert subscription["Properties"]["Protocol"] == "email"


def test_a_dashboard_shows_the_system(standard_synth: Synth, full_synth: Synth) -> None:
    for synth in (standard_synth, full_synth):
        (dashboard,) = synth.of_type("AWS::CloudWatch::Dashboard").values()
        body = str(dashboard["Properties"]["DashboardBody"])

        for needle in ("AWS/ApiGateway", "AWS/Lambda", "AWS/SQS", "AWS/ApplicationELB", "AWS/RDS"):
            assert needle in body
        # Time to first token p50 and p95 for each transport the streaming service measures.
        for transport in ("sse", "sse_one_step", "websocket", "poll"):
            for stat in ("p50", "p95"):
                assert f"{transport} {stat}" in body
        assert body.count("StreamTimeToFirstToken") == 8 and "OpenStreams" in body


def test_lean_has_no_dashboard(default_synth: Synth) -> None:
    # $3 a month; CloudWatch's automatic per-service dashboards cost nothing.
    assert not default_synth.of_type("AWS::CloudWatch::Dashboard")
    assert default_synth.stack.monitoring.dashboard is None


def _tags(resource: dict[str, Any]) -> dict[str, str] | None:
    tags = resource.get("Properties", {}).get("Tags")
    if tags is None:
        return None
    if isinstance(tags, dict):  # API Gateway v2 uses a map
        return tags
    return {tag["Key"]: tag["Value"] for tag in tags}


def test_tags_on_every_taggable_resource(synth: Synth) -> None:
    environment = synth.stack.config.environment
    tagged = 0
    for logical_id, resource in synth.resources.items():
        tags = _tags(resource)
        if tags is None:
            continue
        tagged += 1
        assert {**EXPECTED_TAGS, "environment": environment}.items() <= tags.items(), logical_id
    for resource_type in (
        "AWS::EC2::VPC",
        "AWS::RDS::DBInstance",
        "AWS::SQS::Queue",
        "AWS::Lambda::Function",
        "AWS::ECS::Cluster",
        "AWS::ElasticLoadBalancingV2::LoadBalancer",
        "AWS::SecretsManager::Secret",
        "AWS::S3::Bucket",
        "AWS::ApiGatewayV2::Api",
        "AWS::SNS::Topic",
    ):
        for logical_id, resource in synth.of_type(resource_type).items():
            assert _tags(resource) is not None, f"{logical_id} ({resource_type}) is untagged"
    assert tagged > 40


def _alarm_on(synth: Synth, metric: str, namespace: str) -> dict[str, Any]:
    (alarm,) = [
        alarm
        for alarm in _alarms(synth).values()
        if metric in _metric_names(alarm)
        and (alarm.get("Namespace") == namespace or namespace in str(alarm.get("Metrics")))
    ]
    return alarm


def test_standard_alarms_a_user_would_want(standard_synth: Synth) -> None:
    # Database pressure
    connections = _alarm_on(standard_synth, "DatabaseConnections", "AWS/RDS")
    assert 50 <= connections["Threshold"] <= 90  # 80% of db.t4g.micro's ~85-90 connections
    credits = _alarm_on(standard_synth, "CPUCreditBalance", "AWS/RDS")
    assert credits["ComparisonOperator"] == "LessThanThreshold"
    memory = _alarm_on(standard_synth, "FreeableMemory", "AWS/RDS")
    assert memory["ComparisonOperator"] == "LessThanThreshold"
    # Ingest jobs stuck in the queue
    queue_age = _alarm_on(standard_synth, "ApproximateAgeOfOldestMessage", "AWS/SQS")
    queue_id = standard_synth.logical_id(standard_synth.stack.queues.queue)
    assert queue_age["Dimensions"][0]["Value"] == {"Fn::GetAtt": [queue_id, "QueueName"]}
    # The streaming load balancer's 5xx (its own and the targets')
    alb = _alarm_on(standard_synth, "HTTPCode_ELB_5XX_Count", "AWS/ApplicationELB")
    assert "HTTPCode_Target_5XX_Count" in _metric_names(alb)
    # Fewer streaming tasks than wanted (healthy targets below the minimum without Insights)
    tasks = _alarm_on(standard_synth, "HealthyHostCount", "AWS/ApplicationELB")
    assert tasks["Threshold"] == standard_synth.stack.config.fargate_desired_count


def test_application_metric_alarms_match_the_emitted_metrics(standard_synth: Synth) -> None:
    ttft = _alarm_on(standard_synth, "TimeToFirstToken", "YtResearch")
    assert ttft["ExtendedStatistic"] == "p95"
    assert ttft["Threshold"] == 5000 and ttft["Unit"] == "Milliseconds"
    assert {d["Name"]: d["Value"] for d in ttft["Dimensions"]} == {"service": "ytresearch", "purpose": "chat"}
    model = _alarm_on(standard_synth, "Errors", "YtResearch")
    assert {d["Name"]: d["Value"] for d in model["Dimensions"]} == {
        "service": "ytresearch",
        "code": "MODEL_UNAVAILABLE",
    }


def test_with_container_insights_the_task_alarm_compares_running_to_desired(full_synth: Synth) -> None:
    alarm = _alarm_on(full_synth, "RunningTaskCount", "ECS/ContainerInsights")

    assert "DesiredTaskCount" in _metric_names(alarm)


def test_a_monthly_budget_notifies_the_alarm_topic(synth: Synth) -> None:
    (budget,) = synth.of_type("AWS::Budgets::Budget").values()
    props = budget["Properties"]
    topic = synth.logical_id(synth.stack.monitoring.topic)

    assert props["Budget"]["BudgetLimit"] == {
        "Amount": synth.stack.config.monthly_budget_usd,
        "Unit": "USD",
    }
    assert props["Budget"]["TimeUnit"] == "MONTHLY"
    for notification in props["NotificationsWithSubscribers"]:
        assert notification["Subscribers"] == [{"Address": {"Ref": topic}, "SubscriptionType": "SNS"}]
    (policy,) = synth.of_type("AWS::SNS::TopicPolicy").values()
    assert "budgets.amazonaws.com" in str(policy["Properties"]["PolicyDocument"])
