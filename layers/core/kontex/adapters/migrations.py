"""Versioned SQL migrations shipped inside the package, one folder per dialect."""

from __future__ import annotations

from importlib import resources


def migration_files(dialect: str) -> list[tuple[str, str]]:
    """``(version, sql)`` pairs in order; the version is the file name without ``.sql``."""
    folder = resources.files("kontex") / "migrations" / dialect
    files = sorted(
        (entry for entry in folder.iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    return [(entry.name.removesuffix(".sql"), entry.read_text("utf-8")) for entry in files]
