"""The ``Connections`` port on API Gateway's Management API (WebSocket APIs).

``endpoint_url`` is the stage's callback URL,
``https://{api-id}.execute-api.{region}.amazonaws.com/{stage}`` (KONTEX_WEBSOCKET_ENDPOINT).
A connection the client closed (or API Gateway dropped: 10 minutes idle, 2 hours in all)
answers ``GoneException``, raised here as ``ConnectionGone`` so the caller forgets it.
API Gateway refuses a message over 128 KiB; such a message is refused here, before any call,
with ``PayloadTooLarge``.
"""

from __future__ import annotations

from typing import Any

from kontex.domain.errors import PayloadTooLarge, Transient
from kontex.ports import ConnectionGone

MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway WebSocket message limit
GONE = "GoneException"


def _code(error: Exception) -> str:
    return str(getattr(error, "response", {}).get("Error", {}).get("Code", ""))


class ApiGatewayConnections:
    def __init__(self, endpoint_url: str, client: Any = None) -> None:
        self.endpoint_url = endpoint_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # created on first use (moto starts first in tests), then reused
            from botocore.config import Config

            config = Config(connect_timeout=2, read_timeout=5, retries={"max_attempts": 3})
            self._client = boto3.client(
                "apigatewaymanagementapi", endpoint_url=self.endpoint_url, config=config
            )
        return self._client

    def post(self, connection_id: str, data: bytes) -> None:
        """Send one message; ``ConnectionGone`` when the connection no longer exists."""
        if len(data) > MAX_MESSAGE_BYTES:
            raise PayloadTooLarge(
                f"a WebSocket message is at most {MAX_MESSAGE_BYTES} bytes; this one is {len(data)}"
            )
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.post_to_connection(ConnectionId=connection_id, Data=data)
        except ClientError as error:
            if _code(error) == GONE:
                raise ConnectionGone(connection_id) from error
            raise Transient(f"the WebSocket API refused the message ({_code(error)})") from error
        except BotoCoreError as error:
            raise Transient("the WebSocket API is unreachable") from error

    def close(self, connection_id: str) -> None:
        """Disconnect a client; a connection already gone is closed enough."""
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            self.client.delete_connection(ConnectionId=connection_id)
        except ClientError as error:
            if _code(error) == GONE:
                return
            raise Transient(f"the WebSocket API refused to close ({_code(error)})") from error
        except BotoCoreError as error:
            raise Transient("the WebSocket API is unreachable") from error
