"""Secrets Manager reads for the deployed functions (database credentials, key-hashing secret)."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote


def read_secret(arn: str, client: Any = None) -> str:
    if client is None:
        import boto3

        client = boto3.client("secretsmanager")
    return str(client.get_secret_value(SecretId=arn)["SecretString"])


def database_url(secret_json: str, host: str | None = None) -> str:
    """A libpq URL from an RDS-generated credentials secret; ``host`` (RDS Proxy) wins."""
    secret = json.loads(secret_json)
    user = quote(secret["username"], safe="")
    password = quote(secret["password"], safe="")
    target = host or secret["host"]
    port = secret.get("port", 5432)
    name = secret.get("dbname", "postgres")
    return f"postgresql://{user}:{password}@{target}:{port}/{name}?sslmode=require"
