"""JSON access logs for an API Gateway v2 stage (HTTP or WebSocket), one line per request."""

from __future__ import annotations

import jsii
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_apigatewayv2 as apigwv2
from aws_cdk import aws_logs as logs
from constructs import Construct

from infra.config import StageConfig


@jsii.implements(apigwv2.IAccessLogSettings)
class AccessLogs:
    """``fields``: JSON key -> ``$context`` variable, in the order they are logged."""

    def __init__(self, log_group: logs.ILogGroup, fields: dict[str, str]) -> None:
        self._destination = apigwv2.LogGroupLogDestination(log_group)
        self._fields = fields

    @classmethod
    def for_stage(cls, scope: Construct, config: StageConfig, fields: dict[str, str]) -> AccessLogs:
        """In a new log group ``AccessLogs`` of ``scope``, kept as the stage says."""
        group = logs.LogGroup(
            scope,
            "AccessLogs",
            retention=config.log_retention,
            removal_policy=config.removal_policy,
        )
        return cls(group, fields)

    @property
    def destination(self) -> apigwv2.IAccessLogDestination:
        return self._destination

    @property
    def format(self) -> apigw.AccessLogFormat:
        body = ",".join(f'"{key}":"{value}"' for key, value in self._fields.items())
        return apigw.AccessLogFormat.custom("{" + body + "}")
