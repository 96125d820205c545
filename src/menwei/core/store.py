"""The SQLite store: one file per home, WAL, synchronous=FULL, numbered migrations.

Every durable change goes through `Store.write()`, one transaction per unit of work.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import sqlite_utils
from sqlite_utils.migrations import Migrations

from menwei.core.errors import MenweiError, NotInitialised, SchemaTooNew

_STORAGE_FAILURES = ("full", "readonly", "disk I/O", "locked", "busy")
_DAMAGE = ("malformed", "not a database", "corrupt")


def _is_damage(exc: sqlite3.DatabaseError) -> bool:
    return any(w in str(exc) for w in _DAMAGE)


class StoreError(MenweiError):
    """The database could not be written (disk full, read-only, locked too long)."""


def make_private(path: Path) -> None:
    """Create a database file readable by its owner only (0600), or tighten an existing one:
    it holds the roster with contacts. SQLite gives its -wal and -shm files the same mode."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not path.exists():
        # Only a file no connection can have open yet is opened here: closing any descriptor of
        # a database releases every POSIX lock this process holds on it (SQLite's connections
        # included), after which another process may checkpoint and delete the WAL under them.
        os.close(os.open(path, os.O_RDONLY | os.O_CREAT | os.O_EXCL, 0o600))
    for p in (path, Path(f"{path}-wal"), Path(f"{path}-shm")):
        try:
            if p.stat().st_mode & 0o077:
                p.chmod(0o600)
        except OSError:
            pass  # not there (wal, shm), or not ours to change: SQLite will say if it matters


class Store:
    def __init__(self, db: sqlite_utils.Database, path: Path | None) -> None:
        self.db = db
        self.path = path

    @classmethod
    def open(
        cls,
        path: Path,
        migrations: Sequence[Migrations] | None = None,
        *,
        create: bool = False,
    ) -> Store:
        """Open (or with `create`, make) the database and bring its schema up to date."""
        from menwei.core import integrity

        existed = path.exists()
        if not create and not existed:
            raise NotInitialised(
                f"No menwei database at {path}. Run `menwei init --community ID --name NAME` "
                "first (or set MENWEI_HOME to the right home)."
            )
        if existed:
            # An empty, damaged or foreign file is named, never initialised over.
            integrity.classify_file(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        make_private(path)
        conn = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=True)
        try:
            if existed:
                integrity.classify_schema(conn, path)
            db = sqlite_utils.Database(conn)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            store = cls(db, path)
            store.migrate(migrations if migrations is not None else default_migrations())
        except sqlite3.DatabaseError as exc:
            conn.close()
            raise MenweiError(f"{path} is not a usable menwei database: {exc}") from None
        except BaseException:
            conn.close()
            raise
        return store

    @classmethod
    def memory(cls, migrations: Sequence[Migrations] | None = None) -> Store:
        conn = sqlite3.connect(":memory:", isolation_level=None)
        store = cls(sqlite_utils.Database(conn), None)
        store.migrate(migrations if migrations is not None else default_migrations())
        return store

    def migrate(self, sets: Sequence[Migrations]) -> None:
        known = {(m.name, mig.name) for m in sets for mig in m._migrations}
        table = self.db[Migrations.migrations_table]
        if table.exists():
            applied = [
                (row["migration_set"], row["name"])
                for row in self.db.query(
                    f"select migration_set, name from {Migrations.migrations_table}"
                )
            ]
            unknown = [f"{s}/{n}" for s, n in applied if (s, n) not in known]
            if unknown:
                raise SchemaTooNew(
                    "This database was written by a newer version of menwei "
                    f"(it has migrations this version does not know: {', '.join(unknown)}). "
                    "Upgrade menwei; the database was not changed."
                )
        for mset in sets:
            if mset.pending(self.db):
                with self.write():
                    mset.apply(self.db)

    @contextmanager
    def write(self) -> Iterator[sqlite_utils.Database]:
        """One write transaction (BEGIN IMMEDIATE); nested calls become savepoints."""
        conn = self.db.conn
        if conn.in_transaction:
            with self.db.atomic():
                yield self.db
            return
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            raise StoreError(f"The database is busy or unwritable: {exc}") from None
        try:
            yield self.db
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if any(w in str(exc) for w in _STORAGE_FAILURES):
                raise StoreError(
                    f"Could not save to the database ({exc}); nothing was recorded."
                ) from None
            raise
        except sqlite3.DatabaseError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            if _is_damage(exc):
                raise self._damage(exc) from None
            raise
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise
        try:
            conn.execute("COMMIT")
        except sqlite3.OperationalError as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(
                f"Could not save to the database ({exc}); nothing was recorded."
            ) from None

    def query(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> list[dict[str, Any]]:
        try:
            return list(self.db.query(sql, params))
        except sqlite3.DatabaseError as exc:
            raise self._damage(exc) from None

    def one(self, sql: str, params: Sequence[Any] | dict[str, Any] = ()) -> dict[str, Any] | None:
        try:
            rows = self.db.query(sql, params)
            return next(iter(rows), None)
        except sqlite3.DatabaseError as exc:
            raise self._damage(exc) from None

    def _damage(self, exc: sqlite3.DatabaseError) -> Exception:
        """A damaged file said in words; other database errors (a bug) stay as they are."""
        from menwei.core import integrity

        if not _is_damage(exc):
            return exc
        return integrity.damaged(self.path, str(exc), "读取时出错")

    def require_sound(self) -> None:
        """Refuse to go on when SQLite's quick check or the newest events' chain fail."""
        from menwei.core import integrity

        integrity.require_sound(self.db.conn, self.path)

    def meta(self, key: str, default: str | None = None) -> str | None:
        row = self.one("select value from meta where key = ?", [key])
        return default if row is None else str(row["value"])

    def set_meta(self, key: str, value: str) -> None:
        with self.write() as db:
            db.execute(
                "insert into meta(key, value) values (?, ?) "
                "on conflict(key) do update set value = excluded.value",
                [key, value],
            )

    def close(self) -> None:
        self.db.close()


def default_migrations() -> list[Migrations]:
    """Every migration set of the gate database."""
    from menwei.core.migrations import migrations

    return [migrations]
