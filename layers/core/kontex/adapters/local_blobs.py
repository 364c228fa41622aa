"""The ``BlobStore`` port on a local folder (the embedded stand-in for S3)."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Sequence
from pathlib import Path

from kontex.domain.errors import InvalidInput, NotFound


class LocalBlobs:
    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise InvalidInput(f"invalid blob key {key!r}")
        return self.root.joinpath(*parts)

    def put(self, key: str, data: bytes) -> bool:
        path = self._path(key)
        if path.exists():
            return False
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")  # mode 0600
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            # link() fails if the name exists: the first writer wins, like S3 If-None-Match.
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        finally:
            os.unlink(tmp)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"blob {key} not found") from None

    def get_many(self, keys: Sequence[str]) -> list[bytes]:
        return [self.get(k) for k in keys]

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.strip("/"):
            raise InvalidInput("refusing to delete every blob: give a prefix")
        folder = self._path(prefix.rstrip("/"))
        if not folder.exists():
            return 0
        count = sum(1 for p in folder.rglob("*") if p.is_file())
        shutil.rmtree(folder)
        return count

    def size_of_prefix(self, prefix: str) -> int:
        folder = self._path(prefix.rstrip("/")) if prefix.strip("/") else self.root
        if not folder.exists():
            return 0
        return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())
