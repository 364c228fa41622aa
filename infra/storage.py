"""Storage: the bundle bucket (content-addressed snapshot payloads, written once).

Private, S3-managed encryption, TLS only, versioned. Old versions expire after 30 days so an
accidental overwrite or delete can be undone without keeping every version forever.
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_s3 as s3
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.config import StageConfig


class Storage(Construct):
    def __init__(self, scope: Construct, id: str, *, config: StageConfig) -> None:
        super().__init__(scope, id)
        self.bundles = s3.Bucket(
            self,
            "Bundles",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            versioned=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            lifecycle_rules=[
                s3.LifecycleRule(
                    id="expire-noncurrent-versions",
                    noncurrent_version_expiration=Duration.days(30),
                    abort_incomplete_multipart_upload_after=Duration.days(7),
                ),
                # claim-check payloads are deleted by the worker that consumed them; one left
                # by a message that went to a DLQ outlives the DLQ's 14 days, then goes
                s3.LifecycleRule(
                    id="expire-claim-checks",
                    prefix="claims/",
                    expiration=Duration.days(30),
                ),
            ],
            removal_policy=config.removal_policy,
            auto_delete_objects=not config.prod,
        )
        NagSuppressions.add_resource_suppressions(
            self.bundles,
            [
                NagPackSuppression(
                    id="AwsSolutions-S1",
                    reason="Only the stack's own function roles read and write this bucket; "
                    "CloudTrail (data events, if the operator enables them) audits access "
                    "better than server access logs, which would need a second bucket.",
                )
            ],
        )
