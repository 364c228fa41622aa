"""The ``BlobStore`` port on Amazon S3 (boto3).

Objects are written once with ``IfNoneMatch="*"``: a second writer of the same key gets
412 PreconditionFailed (or 409 during a concurrent write), which means "already there".
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any

from kontex.domain.errors import InvalidInput, NotFound, Transient

_EXISTS = {"PreconditionFailed", "412"}  # the key is there: first writer won
_RACING = {"ConditionalRequestConflict", "409"}  # another write of the key is in flight


@contextmanager
def _reachable() -> Iterator[None]:
    """S3 unreachable (no connection, timeouts) is ``Transient``: a 503 with Retry-After."""
    from botocore.exceptions import BotoCoreError

    try:
        yield
    except BotoCoreError as error:
        raise Transient(f"the blob store is unreachable ({type(error).__name__})") from error


class S3Blobs:
    def __init__(self, bucket: str, client: Any = None, *, prefix: str = "", workers: int = 16):
        self.bucket = bucket
        self.prefix = prefix
        self._client = client
        self._workers = workers

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # created on first use, so tests can start moto first
            from botocore.config import Config

            # an unreachable S3 is a 503 within seconds, not a request hanging to its timeout
            config = Config(connect_timeout=2, read_timeout=10, retries={"max_attempts": 2})
            self._client = boto3.client("s3", config=config)
        return self._client

    def _key(self, key: str) -> str:
        return f"{self.prefix}{key}"

    def put(self, key: str, data: bytes, attempts: int = 3) -> bool:
        with _reachable():
            return self._put(key, data, attempts)

    def _put(self, key: str, data: bytes, attempts: int) -> bool:
        from botocore.exceptions import ClientError

        for _ in range(attempts):
            try:
                self.client.put_object(
                    Bucket=self.bucket, Key=self._key(key), Body=data, IfNoneMatch="*"
                )
                return True
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                if code in _EXISTS:
                    return False
                if code not in _RACING:
                    raise Transient(f"blob store write failed: {code}") from error
            # A concurrent write may still fail: only an object that is there counts as written.
            if self._exists(key):
                return False
        raise Transient(f"blob store write of {key} kept conflicting")

    def _exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self.client.head_object(Bucket=self.bucket, Key=self._key(key))
            return True
        except ClientError:
            return False

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        with _reachable():
            try:
                response = self.client.get_object(Bucket=self.bucket, Key=self._key(key))
            except ClientError as error:
                code = str(error.response.get("Error", {}).get("Code", ""))
                if code in {"NoSuchKey", "404"}:
                    raise NotFound(f"blob {key} not found") from None
                raise Transient(f"blob store read failed: {code}") from error
            return bytes(response["Body"].read())

    def get_many(self, keys: Sequence[str]) -> list[bytes]:
        if len(keys) <= 1:
            return [self.get(k) for k in keys]
        with ThreadPoolExecutor(max_workers=min(self._workers, len(keys))) as pool:
            return list(pool.map(self.get, keys))

    def _objects(self, prefix: str) -> Any:
        with _reachable():
            paginator = self.client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                yield from page.get("Contents", [])

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise InvalidInput("refusing to delete every blob: give a prefix")
        count = 0
        batch: list[dict[str, str]] = []
        for obj in self._objects(prefix):
            batch.append({"Key": obj["Key"]})
            if len(batch) == 1000:
                count += self._delete(batch)
                batch = []
        if batch:
            count += self._delete(batch)
        return count

    def _delete(self, batch: list[dict[str, str]]) -> int:
        with _reachable():
            self.client.delete_objects(Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True})
        return len(batch)

    def size_of_prefix(self, prefix: str) -> int:
        return sum(int(obj["Size"]) for obj in self._objects(prefix))
