"""One transaction's connection, the same for every backend: the SQL is written once, with `?`.

The server's statements are plain SQL that SQLite and PostgreSQL both run (`on conflict`,
`returning`, row values, window functions). `Tx` hides the three differences that remain: the
placeholder style, dict rows, and `executemany`. Why not SQLAlchemy Core: the statements are
already written and tested on SQLite, they are the same text on PostgreSQL, and the few real
differences (how `gseq` is assigned, row locks, the DDL) are clearer as a handful of backend
methods than as a query builder both backends would have to be re-verified against.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from typing import Any, Protocol


class Cursor(Protocol):
    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


class Tx(Protocol):
    """The connection of the transaction in progress."""

    dialect: str  # "sqlite" or "postgresql"

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor: ...

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None: ...

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]: ...


class SqliteTx:
    dialect = "sqlite"

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(sql, list(params))

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        self.conn.executemany(sql, rows)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cursor = self.conn.execute(sql, list(params))
        names = [d[0] for d in cursor.description]
        return [dict(zip(names, r, strict=True)) for r in cursor.fetchall()]
