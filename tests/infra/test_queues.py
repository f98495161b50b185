"""The ingest queue: redrive to a DLQ, visibility vs. the consumer's timeout, encryption, TLS, and
the event source reporting partial batch failures."""

from __future__ import annotations

from aws_cdk.assertions import Match, Template

from tests.infra.synth import Synth, function_by_handler


def test_ingest_queue_redrives_to_the_dead_letter_queue(default_synth: Synth, template: Template) -> None:
    queues = default_synth.stack.queues
    dlq_id = default_synth.logical_id(queues.dead_letter_queue)

    queue = default_synth.resources[default_synth.logical_id(queues.queue)]["Properties"]

    assert queue["RedrivePolicy"] == {
        "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id, "Arn"]},
        "maxReceiveCount": default_synth.stack.config.ingest_max_receive_count,
    }
    dlq = default_synth.resources[dlq_id]["Properties"]
    assert "RedrivePolicy" not in dlq
    assert dlq["MessageRetentionPeriod"] == 14 * 24 * 3600


def test_visibility_timeout_is_at_least_six_times_the_ingest_timeout(default_synth: Synth) -> None:
    _, ingest = function_by_handler(default_synth, "functions.ingest.handler.handler")
    queue_id = default_synth.logical_id(default_synth.stack.queues.queue)

    visibility = default_synth.resources[queue_id]["Properties"]["VisibilityTimeout"]

    assert visibility >= 6 * ingest["Properties"]["Timeout"]


def test_both_queues_are_encrypted_and_refuse_plain_http(default_synth: Synth, template: Template) -> None:
    queues = default_synth.stack.queues
    for queue in (queues.queue, queues.dead_letter_queue):
        queue_id = default_synth.logical_id(queue)
        assert default_synth.resources[queue_id]["Properties"]["SqsManagedSseEnabled"] is True
        template.has_resource_properties(
            "AWS::SQS::QueuePolicy",
            {
                "Queues": [{"Ref": queue_id}],
                "PolicyDocument": {
                    "Statement": Match.array_with(
                        [
                            Match.object_like(
                                {
                                    "Effect": "Deny",
                                    "Condition": {"Bool": {"aws:SecureTransport": "false"}},
                                }
                            )
                        ]
                    )
                },
            },
        )


def test_ingest_event_source_reports_partial_batch_failures(default_synth: Synth, template: Template) -> None:
    ingest_id, _ = function_by_handler(default_synth, "functions.ingest.handler.handler")
    queue_id = default_synth.logical_id(default_synth.stack.queues.queue)

    template.resource_count_is("AWS::Lambda::EventSourceMapping", 1)
    template.has_resource_properties(
        "AWS::Lambda::EventSourceMapping",
        {
            "EventSourceArn": {"Fn::GetAtt": [queue_id, "Arn"]},
            "FunctionName": {"Ref": ingest_id},
            "FunctionResponseTypes": ["ReportBatchItemFailures"],
            "BatchSize": default_synth.stack.config.ingest_batch_size,
            "ScalingConfig": {"MaximumConcurrency": Match.any_value()},
        },
    )
