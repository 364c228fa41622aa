"""The SQL both relational adapters share: a unit of work over one transaction, and one
repository module per aggregate with its statements as named constants."""

from kontex.adapters.sql.base import Tx
from kontex.adapters.sql.store import SqlStore, SqlUnitOfWork

__all__ = ["SqlStore", "SqlUnitOfWork", "Tx"]
