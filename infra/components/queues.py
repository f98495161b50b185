"""The ingest queue and its dead-letter queue."""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from infra.nag import skip_checkov

_SSE_SQS_REASON = (
    "Encrypted at rest with SSE-SQS (SQS-managed keys, no cost, no key policy to keep in step "
    "with the producers and the consumer); a customer KMS key would add cost and KMS calls only."
)

# AWS guidance for Lambda event sources: visibility timeout >= 6x the function timeout, so a batch
# that is retried by the poller is not delivered again while the first attempt still runs.
VISIBILITY_TO_FUNCTION_TIMEOUT = 6


class IngestQueues(Construct):
    """Exposes ``queue`` (ingest jobs) and ``dead_letter_queue`` (jobs that failed
    ``max_receive_count`` times). Both are encrypted (SSE-SQS) and refuse non-TLS requests."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        consumer_timeout: Duration,
        max_receive_count: int,
    ) -> None:
        super().__init__(scope, construct_id)
        self.dead_letter_queue = sqs.Queue(
            self,
            "DeadLetterQueue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            retention_period=Duration.days(14),
        )
        self.visibility_timeout = Duration.seconds(
            consumer_timeout.to_seconds() * VISIBILITY_TO_FUNCTION_TIMEOUT
        )
        self.queue = sqs.Queue(
            self,
            "Queue",
            encryption=sqs.QueueEncryption.SQS_MANAGED,
            enforce_ssl=True,
            visibility_timeout=self.visibility_timeout,
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(
                queue=self.dead_letter_queue, max_receive_count=max_receive_count
            ),
        )
        for queue in (self.queue, self.dead_letter_queue):
            skip_checkov(queue, "CKV_AWS_27", _SSE_SQS_REASON)
