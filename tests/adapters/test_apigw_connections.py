"""The Connections port on API Gateway's Management API: moto records what is posted; moto never
answers GoneException, so that path runs against botocore's Stubber on a real client."""

from __future__ import annotations

import boto3
import pytest
from botocore.stub import Stubber

from kontex.adapters.apigw_connections import MAX_MESSAGE_BYTES, ApiGatewayConnections
from kontex.domain.errors import PayloadTooLarge, Transient
from kontex.ports import ConnectionGone

ENDPOINT = "https://abc123.execute-api.eu-west-1.amazonaws.com/live"


def _posted(connection_id: str) -> bytes:
    """What moto recorded (it keys connections by the URL-encoded id: tests use plain ones)."""
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    backend = apigatewaymanagementapi_backends["123456789012"]["eu-west-1"]
    return backend.connections[connection_id].data


def test_post_sends_the_bytes_to_the_connection(mocked_aws: None) -> None:
    connections = ApiGatewayConnections(ENDPOINT)
    frame = b'{"type": "snapshot.created", "session_id": "sess_1", "data": {"id": "snap_1"}}'

    connections.post("connA", frame)
    connections.post("connA", b'{"id": "1", "success": true}')

    assert _posted("connA") == frame + b'{"id": "1", "success": true}'
    assert connections.client.meta.endpoint_url == ENDPOINT  # the stage's callback URL


def test_a_message_over_128_kib_is_refused_before_any_call() -> None:
    client = boto3.client("apigatewaymanagementapi", endpoint_url=ENDPOINT, region_name="eu-west-1")
    with Stubber(client) as stub:  # no response queued: any call would fail the stub
        connections = ApiGatewayConnections(ENDPOINT, client=client)
        with pytest.raises(PayloadTooLarge, match="at most 131072 bytes"):
            connections.post("connA", b"x" * (MAX_MESSAGE_BYTES + 1))
        stub.assert_no_pending_responses()
    # exactly the limit is allowed through
    with Stubber(client) as stub:
        stub.add_response(
            "post_to_connection",
            {},
            {"ConnectionId": "connA", "Data": b"x" * MAX_MESSAGE_BYTES},
        )
        ApiGatewayConnections(ENDPOINT, client=client).post("connA", b"x" * MAX_MESSAGE_BYTES)
        stub.assert_no_pending_responses()


def _stubbed(method: str, code: str, status: int) -> tuple[ApiGatewayConnections, Stubber]:
    client = boto3.client(
        "apigatewaymanagementapi",
        endpoint_url=ENDPOINT,
        region_name="eu-west-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    stub = Stubber(client)
    stub.add_client_error(method, service_error_code=code, http_status_code=status)
    stub.activate()
    return ApiGatewayConnections(ENDPOINT, client=client), stub


def test_a_gone_connection_raises_connection_gone() -> None:
    connections, stub = _stubbed("post_to_connection", "GoneException", 410)
    with pytest.raises(ConnectionGone):
        connections.post("conn-gone=", b"{}")
    stub.assert_no_pending_responses()


def test_other_refusals_are_transient_not_gone() -> None:
    connections, _ = _stubbed("post_to_connection", "LimitExceededException", 429)
    with pytest.raises(Transient, match="LimitExceededException"):
        connections.post("connA", b"{}")


def test_close_deletes_the_connection(mocked_aws: None) -> None:
    connections = ApiGatewayConnections(ENDPOINT)
    connections.post("connB", b"bye")
    from moto.apigatewaymanagementapi.models import apigatewaymanagementapi_backends

    backend = apigatewaymanagementapi_backends["123456789012"]["eu-west-1"]
    assert "connB" in backend.connections

    connections.close("connB")

    assert "connB" not in backend.connections


def test_closing_a_connection_already_gone_is_fine() -> None:
    connections, stub = _stubbed("delete_connection", "GoneException", 410)
    connections.close("conn-gone=")  # no error
    stub.assert_no_pending_responses()
    failing, _ = _stubbed("delete_connection", "ForbiddenException", 403)
    with pytest.raises(Transient, match="ForbiddenException"):
        failing.close("connA")
