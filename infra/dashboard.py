"""Dashboard: the built page (web/dist) in a private S3 bucket behind CloudFront.

The bucket is private (Block Public Access, TLS only); CloudFront reads it through an Origin
Access Control. The same distribution sends `/v1/*` to the HTTP API (caching disabled, every
viewer header but Host forwarded, so `Authorization` reaches the function): the page and the
API share one origin and no CORS is needed. `config.json`, written beside the page at deploy
(`Source.json_data`, with the deploy-time values), tells the page where the API and the live
feed are: `{"api_url": "", "live_url": "wss://..." | null}`. A deploy invalidates the
distribution, so a new build is seen at once (asset names carry their content hash).
"""

from __future__ import annotations

from pathlib import Path

from aws_cdk import Aws, Duration, Stack
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_cloudfront as cloudfront
from aws_cdk import aws_cloudfront_origins as origins
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_s3_deployment as s3deploy
from cdk_nag import NagPackSuppression, NagSuppressions
from constructs import Construct

from infra.config import StageConfig

API_PATH = "/v1/*"
# The page's Content-Security-Policy (as `kontex dev` sends it, kontex.local.static): its own
# script and styles only, no inline script, the live feed's socket, never framed.
CSP_DIRECTIVES = [
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self' data:",
    "connect-src 'self' {live}",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
]


def content_security_policy(live_origin: str) -> str:
    return "; ".join(d.format(live=live_origin) for d in CSP_DIRECTIVES)


class Dashboard(Construct):
    def _headers(self, config: StageConfig) -> cloudfront.ResponseHeadersPolicy:
        """The security headers CloudFront's managed SECURITY_HEADERS policy sends, and a
        Content-Security-Policy (the live feed: the stage's WebSocket API, on execute-api)."""
        live = f"wss://*.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}"
        return cloudfront.ResponseHeadersPolicy(
            self,
            "Headers",
            comment=f"Kontex dashboard security headers ({config.name})",
            security_headers_behavior=cloudfront.ResponseSecurityHeadersBehavior(
                content_security_policy=cloudfront.ResponseHeadersContentSecurityPolicy(
                    content_security_policy=content_security_policy(live), override=True
                ),
                content_type_options=cloudfront.ResponseHeadersContentTypeOptions(override=True),
                frame_options=cloudfront.ResponseHeadersFrameOptions(
                    frame_option=cloudfront.HeadersFrameOption.DENY, override=True
                ),
                referrer_policy=cloudfront.ResponseHeadersReferrerPolicy(
                    referrer_policy=cloudfront.HeadersReferrerPolicy.SAME_ORIGIN, override=True
                ),
                strict_transport_security=cloudfront.ResponseHeadersStrictTransportSecurity(
                    access_control_max_age=Duration.days(365),
                    include_subdomains=True,
                    override=True,
                ),
                xss_protection=cloudfront.ResponseHeadersXSSProtection(
                    protection=True, mode_block=True, override=True
                ),
            ),
        )

    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        config: StageConfig,
        site_dir: Path,
        http_api: apigwv2.IHttpApi,
        live_url: str | None = None,
    ) -> None:
        super().__init__(scope, id)
        self.bucket = s3.Bucket(
            self,
            "Site",
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            enforce_ssl=True,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            removal_policy=config.removal_policy,
            auto_delete_objects=not config.prod,
        )
        api_origin = origins.HttpOrigin(
            f"{http_api.api_id}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}",
            protocol_policy=cloudfront.OriginProtocolPolicy.HTTPS_ONLY,
            read_timeout=Duration.seconds(30),
        )
        self.distribution = cloudfront.Distribution(
            self,
            "Distribution",
            comment=f"Kontex dashboard ({config.name})",
            default_root_object="index.html",
            http_version=cloudfront.HttpVersion.HTTP2_AND_3,
            price_class=cloudfront.PriceClass.PRICE_CLASS_100,
            default_behavior=cloudfront.BehaviorOptions(
                origin=origins.S3BucketOrigin.with_origin_access_control(self.bucket),
                viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.REDIRECT_TO_HTTPS,
                cache_policy=cloudfront.CachePolicy.CACHING_OPTIMIZED,
                response_headers_policy=self._headers(config),
                compress=True,
            ),
            additional_behaviors={
                API_PATH: cloudfront.BehaviorOptions(
                    origin=api_origin,
                    viewer_protocol_policy=cloudfront.ViewerProtocolPolicy.HTTPS_ONLY,
                    allowed_methods=cloudfront.AllowedMethods.ALLOW_ALL,
                    cache_policy=cloudfront.CachePolicy.CACHING_DISABLED,
                    origin_request_policy=(
                        cloudfront.OriginRequestPolicy.ALL_VIEWER_EXCEPT_HOST_HEADER
                    ),
                )
            },
        )
        self.deployment = s3deploy.BucketDeployment(
            self,
            "Deploy",
            sources=[
                s3deploy.Source.asset(str(site_dir)),
                s3deploy.Source.json_data("config.json", {"api_url": "", "live_url": live_url}),
            ],
            destination_bucket=self.bucket,
            distribution=self.distribution,
            distribution_paths=["/*"],
            prune=True,
            memory_limit=256,
        )
        self.url = f"https://{self.distribution.distribution_domain_name}/"
        self._suppress()

    def _suppress(self) -> None:
        NagSuppressions.add_resource_suppressions(
            self.bucket,
            [
                NagPackSuppression(
                    id="AwsSolutions-S1",
                    reason="The bucket holds the public build of the page only (no data); "
                    "CloudFront is its only reader and the deployment its only writer.",
                )
            ],
        )
        NagSuppressions.add_resource_suppressions(
            self.distribution,
            [
                NagPackSuppression(
                    id="AwsSolutions-CFR1",
                    reason="Operators use the dashboard from wherever they are; the API it "
                    "calls authenticates every request with a Kontex key.",
                ),
                NagPackSuppression(
                    id="AwsSolutions-CFR2",
                    reason="A static page and an API that authenticates and rate-limits every "
                    "request per key (and API Gateway's stage throttling); a WAF web ACL is "
                    "the operator's choice and cost.",
                ),
                NagPackSuppression(
                    id="AwsSolutions-CFR3",
                    reason="API requests are logged by the HTTP API's access logs; page "
                    "downloads carry no data worth a logging bucket.",
                ),
                NagPackSuppression(
                    id="AwsSolutions-CFR4",
                    reason="The default *.cloudfront.net certificate's policy is fixed by "
                    "CloudFront; a custom domain with its own certificate (and TLSv1.2_2021) "
                    "is the operator's choice.",
                ),
            ],
            apply_to_children=True,
        )
        # CDK's own deployment function (a singleton per stack, outside this construct)
        handler = [
            c
            for c in Stack.of(self).node.children
            if c.node.id.startswith("Custom::CDKBucketDeployment")
        ]
        NagSuppressions.add_resource_suppressions(
            [self.deployment.handler_role, *handler],
            [
                NagPackSuppression(
                    id="AwsSolutions-IAM4",
                    reason="CDK's BucketDeployment function logs with the AWS-managed "
                    "AWSLambdaBasicExecutionRole; it runs only during deployments.",
                ),
                NagPackSuppression(
                    id="AwsSolutions-IAM5",
                    reason="CDK's BucketDeployment grants: read the asset objects (cdk-assets "
                    "bucket, <key>/*), write and prune this site bucket's objects (<arn>/*), "
                    "and CloudFront invalidations (no resource-level permissions exist).",
                ),
                NagPackSuppression(
                    id="AwsSolutions-L1",
                    reason="The runtime of CDK's BucketDeployment function is chosen by "
                    "aws-cdk-lib, which pins it with its bundled AWS CLI layer.",
                ),
            ],
            apply_to_children=True,
        )
