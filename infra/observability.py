"""What an operator looks at: a CloudWatch dashboard and alarms on errors and lag.

The functions publish EMF metrics (namespace ``Kontex``, dimension ``service``: see
``kontex/observability.py``); SQS publishes queue age and depth; Lambda publishes errors. Each
DLQ already has its depth alarm (``infra/messaging.py``); here every function gets an alarm on
its error rate, the integrity-error metric one of its own (stored content that failed its
hash is never normal), and every pipeline's queue a lag alarm (its oldest message older than
``LAG_ALARM_SECONDS`` for ``LAG_ALARM_MINUTES`` minutes in a row). The API function reads the
same figures for ``GET /health?detail=true`` (``KONTEX_PIPELINES``).
"""

from __future__ import annotations

from collections.abc import Mapping

from aws_cdk import Duration, Stack
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_iam as iam
from aws_cdk import aws_lambda as lambda_
from constructs import Construct

from infra.live import LiveApi
from infra.messaging import WorkQueue

NAMESPACE = "Kontex"
ERROR_RATE_PERCENT = 5
LAG_ALARM_SECONDS = 300
LAG_ALARM_MINUTES = 5
# the stack's queue names -> the pipelines' names (kontex/ports.py PIPELINES)
PIPELINE_NAMES = {"spans": "spans", "captures": "capture", "feed": "feed", "embed": "embed"}


class Observability(Construct):
    def __init__(
        self,
        scope: Construct,
        id: str,
        *,
        stage: str,
        functions: list[lambda_.Function],
        queues: Mapping[str, WorkQueue],
        live: LiveApi,
        api_function: lambda_.Function | None = None,
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

        self.lag_alarms = [
            cloudwatch.Alarm(
                self,
                f"{name.capitalize()}Lag",
                alarm_description=f"Kontex {stage}: the {name} queue's oldest message has waited"
                f" over {LAG_ALARM_SECONDS} s for {LAG_ALARM_MINUTES} minutes (the pipeline is"
                " behind: GET /health?detail=true)",
                metric=q.queue.metric_approximate_age_of_oldest_message(
                    period=Duration.minutes(1), statistic="Maximum"
                ),
                threshold=LAG_ALARM_SECONDS,
                evaluation_periods=LAG_ALARM_MINUTES,
                comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_THRESHOLD,
                treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING,
            )
            for name, q in queues.items()
        ]
        if api_function is not None:
            self.report_lag_to(api_function, queues)
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
                title="Queued messages (visible, in flight)",
                left=[
                    q.queue.metric_approximate_number_of_messages_visible(period=period)
                    for q in queues.values()
                ],
                right=[
                    q.queue.metric_approximate_number_of_messages_not_visible(period=period)
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
                    *self.lag_alarms,
                ],
            ),
        )

    @staticmethod
    def report_lag_to(function: lambda_.Function, queues: Mapping[str, WorkQueue]) -> None:
        """Let ``function`` answer ``/health?detail=true``: the queues it reads (depth, from
        SQS) and CloudWatch's age of their oldest message (adapters/sqs_pipelines.py)."""
        pipelines = {}
        for name, q in queues.items():
            pipelines[PIPELINE_NAMES.get(name, name)] = {
                "queue": q.queue.queue_url,
                "dlq": q.dlq.queue_url,
            }
            for queue in (q.queue, q.dlq):
                queue.grant(function, "sqs:GetQueueAttributes")
        function.add_environment("KONTEX_PIPELINES", Stack.of(function).to_json_string(pipelines))
        function.add_to_role_policy(
            iam.PolicyStatement(actions=["cloudwatch:GetMetricData"], resources=["*"])
        )
