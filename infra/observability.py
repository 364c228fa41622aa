"""What an operator looks at: a CloudWatch dashboard and alarms on errors.

The functions publish EMF metrics (namespace ``Kontex``, dimension ``service``: see
``kontex/observability.py``); SQS publishes queue age and depth; Lambda publishes errors. Each
DLQ already has its depth alarm (``infra/messaging.py``); here every function gets an alarm on
its error rate, and the integrity-error metric one of its own (stored content that failed its
hash is never normal).
"""

from __future__ import annotations

from aws_cdk import Duration
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.live import LiveApi
from infra.messaging import Messaging

NAMESPACE = "Kontex"
ERROR_RATE_PERCENT = 5


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        functions: list[lambda_.Function],
        messaging: Messaging,
        live: LiveApi,
    ) -> None:
        super().__init__(scope, id)
        period = Duration.minutes(5)
        self.error_alarms: list[cloudwatch.Alarm] = []
        for function in functions:
            rate = cloudwatch.MathExpression(
                expression="100 * errors / MAX([invocations, 1])",
                using_metrics={
                    "errors": function.metric_errors(period=period, statistic="Sum"),
                    "invocations": function.metric_invocations(period=period, statistic="Sum"),
                },
                period=period,
                label="error rate (%)",
            )
            self.error_alarms.append(
                cloudwatch.Alarm(
                    self,
                    f"{function.node.id}ErrorRate",
                    alarm_description=f"Kontex {stage}: {function.node.id} errors above "
                    f"{ERROR_RATE_PERCENT}% of invocations",
                    metric=rate,
                    threshold=ERROR_RATE_PERCENT,
                    evaluation_periods=2,
                    comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                    treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
                )
            )

        def kontex(name: str, service: str, statistic: str = "Sum") -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace=NAMESPACE,
                metric_name=name,
                dimensions_map={"service": service},
                period=period,
                statistic=statistic,
            )

        def websocket(name: str) -> cloudwatch.Metric:
            return cloudwatch.Metric(
                namespace="AWS/ApiGateway",
                metric_name=name,
                dimensions_map={"ApiId": live.api.api_id, "Stage": live.stage.stage_name},
                period=period,
                statistic="Sum",
            )

        integrity = cloudwatch.MathExpression(
            expression="api + proxy",
            using_metrics={
                "api": kontex("IntegrityErrors", "kontex-api"),
                "proxy": kontex("IntegrityErrors", "kontex-proxy"),
            },
            period=period,
            label="integrity errors",
        )
        self.integrity_alarm = cloudwatch.Alarm(
            self,
            "IntegrityErrors",
            alarm_description=f"Kontex {stage}: stored content failed its hash check",
            metric=integrity,
            threshold=1,
            evaluation_periods=1,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
        )

        queues = messaging.queues
        self.dashboard = cloudwatch.Dashboard(self, "Dashboard", dashboard_name=f"kontex-{stage}")
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Spans accepted / refused at ingest",
                left=[
                    kontex("SpansAccepted", "kontex-ingest"),
                    kontex("SpansRefused", "kontex-ingest"),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Snapshots written / records failed by the workers",
                left=[
                    kontex("SnapshotsWritten", "kontex-spansworker"),
                    kontex("SnapshotsWritten", "kontex-captureworker"),
                    kontex("RecordsFailed", "kontex-spansworker"),
                    kontex("RecordsFailed", "kontex-captureworker"),
                ],
            ),
            cloudwatch.GraphWidget(
                title="Proxy upstream latency (ms)",
                left=[
                    kontex("UpstreamLatency", "kontex-proxy", "p50"),
                    kontex("UpstreamLatency", "kontex-proxy", "p99"),
                ],
            ),
        )
        self.dashboard.add_widgets(
            cloudwatch.GraphWidget(
                title="Age of the oldest queued message (s)",
                left=[
                    q.queue.metric_approximate_age_of_oldest_message(period=period)
                    for q in queues.values()
                ],
            ),
            cloudwatch.GraphWidget(
                title="Dead letters",
                left=[
                    q.dlq.metric_approximate_number_of_messages_visible(period=period)
                    for q in queues.values()
                ],
            ),
            cloudwatch.GraphWidget(title="Integrity errors", left=[integrity]),
            cloudwatch.GraphWidget(
                title="Live feed: connections, messages; events posted and swept",
                left=[
                    websocket("ConnectCount"),
                    websocket("MessageCount"),
                    websocket("ExecutionError"),
                ],
                right=[
                    kontex("EventsPosted", "kontex-feedworker"),
                    kontex("EventsSwept", "kontex-sweeper"),
                ],
            ),
            cloudwatch.AlarmStatusWidget(
                title="Alarms",
                alarms=[
                    *self.error_alarms,
                    self.integrity_alarm,
                    *(q.dlq_alarm for q in queues.values()),
                ],
            ),
        )
