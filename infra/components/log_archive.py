"""One bucket for the logs AWS services deliver to S3: ALB access logs and VPC flow logs."""

from __future__ import annotations

from aws_cdk import Duration, RemovalPolicy
from aws_cdk import aws_s3 as s3
from constructs import Construct

from infra.nag import acknowledge, skip_checkov


class LogArchive(Construct):
    """Exposes ``bucket``: encrypted, TLS-only, private, objects expire after ``retention_days``."""

    def __init__(
        self,
        scope: Construct,
        construct_id: str,
        *,
        retention_days: int,
        removal_policy: RemovalPolicy,
    ) -> None:
        super().__init__(scope, construct_id)
        self.bucket = s3.Bucket(
            self,
            "Bucket",
            # ALB access logs can only be delivered to SSE-S3 buckets.
            encryption=s3.BucketEncryption.S3_MANAGED,
            enforce_ssl=True,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[s3.LifecycleRule(expiration=Duration.days(retention_days))],
            removal_policy=removal_policy,
        )
        acknowledge(
            self.bucket,
            "AwsSolutions-S1",
            "This bucket is itself the access-log destination; logging its own access would "
            "write logs about writing logs. Delivery is by the ELB and VPC Flow Logs services.",
            checkov="CKV_AWS_18",
        )
        skip_checkov(
            self.bucket,
            "CKV_AWS_21",
            "Log objects are written once by AWS services and expire by the lifecycle rule; versions "
            "would only keep deleted logs past their retention and make the bucket harder to empty.",
        )
