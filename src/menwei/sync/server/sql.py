"""One transaction's connection, the same for every backend: the SQL is written once, with `?`.

The server's statements are plain SQL that SQLite and PostgreSQL both run (`on conflict`,
`returning`, row values, window functions). `Tx` hides the three differences that remain: the
placeholder style, dict rows, and `executemany`. Why not SQLAlchemy Core: the statements are
already written and tested on SQLite, they are the same text on PostgreSQL, and the few real
differences (how `gseq` is assigned, row locks, the DDL, COPY for a batch of new rows) are clearer as a handful of backend
methods than as a query builder both backends would have to be re-verified against.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Iterator, Sequence
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

    def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """Insert new rows (no conflict expected: one raises the backend's unique violation)."""

    def upsert_many(
        self,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Sequence[Sequence[Any]],
        conflict: str,
    ) -> None:
        """Insert rows with an `on conflict ...` clause, in one statement where the backend can
        (at most one row per conflict key); `types` are the columns' SQL types."""


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

    def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        self.upsert_many(table, columns, (), rows, "")

    def upsert_many(
        self,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Sequence[Sequence[Any]],
        conflict: str,
    ) -> None:
        # One prepared statement run for every row: SQLite has no per-statement round trip.
        marks = ", ".join("?" for _ in columns)
        self.conn.executemany(
            f"insert into {table} ({', '.join(columns)}) values ({marks}) {conflict}", rows
        )


def member_of(
    db: Tx, column: str, values: Sequence[Any], sql_type: str, size: int = 500
) -> Iterator[tuple[str, list[Any]]]:
    """`column` among `values`, as (condition, parameters) pieces to run one by one.

    PostgreSQL gets one `column = any(?::type[])`: one prepared statement whatever the count (a
    list of `?` would be a new statement for every length). SQLite gets `in (?, ...)` in chunks
    under its limit on parameters. No piece when there are no values.
    """
    if not values:
        return
    if db.dialect == "postgresql":
        yield f"{column} = any(?::{sql_type}[])", [list(values)]
        return
    for i in range(0, len(values), size):
        chunk = list(values[i : i + size])
        yield f"{column} in ({', '.join('?' for _ in chunk)})", chunk
