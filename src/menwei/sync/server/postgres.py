"""The community server's storage on PostgreSQL: one server for a whole district.

The SQL is `SqlStorage`'s, the same text SQLite runs (`sql.py` says why). What differs:

- Connections come from a `psycopg_pool.ConnectionPool`; a write is one transaction on one
  pooled connection; a read is a `REPEATABLE READ, READ ONLY` transaction on another, so a
  snapshot sees one consistent picture and never waits for (or holds up) a push.
- `gseq` is per community and in commit order: a push stores its events with a block of numbers
  taken from the community's counter row (`communities.event_seq`) by an `UPDATE`, whose row
  lock is held to the commit; a later push of the same community waits for it, so a pull after
  N can never skip an event that commits late. Pushes of different communities never wait for
  each other; pushes of one gate take turns on the gate's row (`SELECT ... FOR UPDATE`).
- Two pushes racing on the same event id (a re-enrolled laptop's bundle and its push) end in a
  unique violation for one of them, which is tried again from the start.
- Text columns that are compared or sorted (times, ids) are `COLLATE "C"`: byte order, as in
  SQLite and in Python, whatever the database's locale.
- The schema is created by numbered migrations, applied under an advisory lock (several worker
  processes may start at once).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

import psycopg
from psycopg import errors as pg_errors
from psycopg.rows import tuple_row
from psycopg_pool import ConnectionPool

from menwei.core.errors import MenweiError
from menwei.sync.server.sql import Cursor, Tx
from menwei.sync.server.sqlite import SqlStorage

_C = 'collate "C"'

MIGRATIONS: list[tuple[str, list[str]]] = [
    (
        "m001_server",
        [
            "create table settings (key text primary key, value text not null)",
            """
            create table communities (
                community_id bigint primary key,
                name text not null,
                ref_version bigint not null default 0,
                ref_floor bigint not null default 0,
                anomaly_seq bigint not null default 0,
                -- The last gseq handed out; its row lock orders the community's commits.
                event_seq bigint not null default 0,
                created_at text not null
            )
            """,
            f"""
            create table gates (
                gate_id text {_C} primary key,
                community_id bigint not null references communities(community_id),
                name text not null,
                number integer not null,
                status text not null check (status in ('pending', 'active', 'revoked')),
                epoch integer not null default 0,
                token_hash text unique,
                public_key text,
                enroll_hash text unique,
                enroll_expires_at text {_C},
                enroll_used_at text,
                hostname text,
                created_at text not null,
                enrolled_at text,
                revoked_at text,
                last_seen_at text,
                clock_offset_ms bigint,
                unique (community_id, name),
                unique (community_id, number)
            )
            """,
            f"""
            create table streams (
                gate_id text {_C} not null references gates(gate_id),
                epoch integer not null,
                parent_epoch integer,
                base_seq bigint not null,
                base_hash text not null,
                through_seq bigint not null,
                head_hash text not null,
                reason text not null,
                created_at text not null,
                public_key text,
                primary key (gate_id, epoch)
            )
            """,
            f"""
            create table events (
                gseq bigint not null,
                community_id bigint not null,
                event_id text {_C} not null unique,
                gate_id text {_C} not null,
                epoch integer not null,
                seq bigint not null,
                kind text {_C} not null,
                direction text,
                household integer,
                serial integer,
                reason text,
                wall_time text {_C} not null,
                ref text {_C},
                overdue integer not null default 0,
                clock_offset_ms bigint,
                body text not null,
                prev_hash text not null,
                hash text not null,
                received_at text not null,
                source text not null,
                orphan integer not null default 0,
                primary key (community_id, gseq),
                unique (gate_id, epoch, seq)
            )
            """,
            "create index events_household on events(community_id, household, wall_time, event_id)",
            "create index events_ref on events(ref) where ref is not null",
            "create index events_orphan on events(gate_id, gseq) where orphan = 1",
            f"""
            create table aliases (
                gate_id text {_C} not null,
                epoch integer not null,
                seq bigint not null,
                event_id text {_C} not null,
                hash text not null,
                primary key (gate_id, epoch, seq)
            )
            """,
            "create index aliases_event on aliases(event_id)",
            f"""
            create table rejected (
                id bigint generated by default as identity primary key,
                community_id bigint not null,
                gate_id text {_C} not null,
                epoch integer,
                seq bigint,
                event_id text,
                hash text,
                reason text not null,
                detail text not null,
                payload text not null,
                payload_sha256 text not null,
                received_at text not null,
                source text not null,
                unique (gate_id, epoch, seq, payload_sha256)
            )
            """,
            "create index rejected_position on rejected(gate_id, epoch, seq)",
            f"""
            create table presence (
                community_id bigint not null,
                household integer not null,
                state text not null check (state in ('in', 'out')),
                since text {_C} not null,
                gate_id text {_C} not null,
                event_id text {_C} not null,
                primary key (community_id, household)
            )
            """,
            f"""
            create table anomalies (
                anomaly_id text {_C} primary key,
                community_id bigint not null,
                aseq bigint not null,
                kind text {_C} not null,
                household integer,
                gate_id text {_C},
                event_ids text {_C} not null,
                detail text not null,
                status text not null check (status in ('open', 'withdrawn')),
                sort_key text {_C},
                detected_at text not null,
                updated_at text not null
            )
            """,
            "create unique index anomalies_aseq on anomalies(community_id, aseq)",
            "create index anomalies_household on anomalies(community_id, household, kind, status)",
            """
            create table ref_households (
                community_id bigint not null,
                household integer not null,
                building text not null,
                unit text not null,
                room text not null,
                building_group text not null,
                members integer not null,
                category text not null,
                contact text,
                deleted integer not null default 0,
                version bigint not null,
                primary key (community_id, household)
            )
            """,
            "create index ref_households_version on ref_households(community_id, version)",
            f"""
            create table ref_revocations (
                community_id bigint not null,
                household integer not null,
                min_serial integer not null,
                reason text,
                revoked_at text {_C} not null,
                deleted integer not null default 0,
                version bigint not null,
                primary key (community_id, household)
            )
            """,
            f"""
            create table revocation_history (
                community_id bigint not null,
                household integer not null,
                min_serial integer not null,
                revoked_at text {_C} not null,
                primary key (community_id, household, min_serial)
            )
            """,
            """
            create table ref_keys (
                community_id bigint not null,
                kid integer not null,
                public_key text not null,
                status text not null,
                version bigint not null,
                primary key (community_id, kid)
            )
            """,
            f"""
            create table ref_policies (
                community_id bigint not null,
                home_version integer not null,
                sha256 text not null,
                body text not null,
                created_at text {_C} not null,
                version bigint not null,
                primary key (community_id, home_version)
            )
            """,
        ],
    ),
    (
        "m002_district",
        [
            "alter table communities add column home text",
            "alter table communities add column instance_id text",
            """
            create table committee_tokens (
                token_hash text primary key,
                community_id bigint not null references communities(community_id),
                created_at text not null,
                revoked_at text
            )
            """,
        ],
    ),
    # Issue 12: keys a revoked gate held sign nothing any more (SQLite: m003_revoked_keys).
    ("m003_revoked_keys", ["alter table streams add column revoked_at text"]),
    # Issue 11: the one order gates and server share (SQLite: m110_shared_order). A PostgreSQL
    # database is born after the shared order, so it has no rows written without an okey.
    (
        "m110_shared_order",
        [
            f"alter table events add column okey text {_C}",
            f"alter table presence add column okey text {_C}",
            "create index events_household_order on events(community_id, household, okey)",
        ],
    ),
    # Every query of a household's events orders them by okey (SQLite: m111_event_indexes, which
    # also adds what the primary key (community_id, gseq) gives here).
    ("m111_event_indexes", ["drop index if exists events_household"]),
]

_PLACEHOLDER = re.compile(r"\?")
_converted: dict[str, str] = {}


def to_pg(sql: str) -> str:
    """`?` placeholders as psycopg's `%s` (the server's SQL has no `?` or `%` in literals)."""
    done = _converted.get(sql)
    if done is None:
        done = _PLACEHOLDER.sub("%s", sql.replace("%", "%%"))
        _converted[sql] = done
    return done


def _clean(params: Sequence[Any]) -> list[Any]:
    # PostgreSQL text cannot hold NUL; a gate's string field may (JSON "\u0000").
    return [
        p.replace("\x00", "\ufffd") if isinstance(p, str) and "\x00" in p else p for p in params
    ]


class PgTx:
    dialect = "postgresql"

    def __init__(self, conn: psycopg.Connection[Any]) -> None:
        self.conn = conn

    def execute(self, sql: str, params: Sequence[Any] = ()) -> Cursor:
        return self.conn.execute(to_pg(sql), _clean(params))  # type: ignore[arg-type]

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> None:
        with self.conn.cursor() as cur:
            cur.executemany(to_pg(sql), [_clean(r) for r in rows])  # type: ignore[arg-type]

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        cur = self.conn.execute(to_pg(sql), _clean(params))  # type: ignore[arg-type]
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]

    def insert_many(
        self, table: str, columns: Sequence[str], rows: Sequence[Sequence[Any]]
    ) -> None:
        """COPY: one stream for the whole batch, several times faster than row-by-row inserts."""
        statement = f"copy {table} ({', '.join(columns)}) from stdin"
        with self.conn.cursor() as cur, cur.copy(statement) as copy:  # type: ignore[arg-type]
            for r in rows:
                copy.write_row(_clean(r))

    def upsert_many(
        self,
        table: str,
        columns: Sequence[str],
        types: Sequence[str],
        rows: Sequence[Sequence[Any]],
        conflict: str,
    ) -> None:
        """One statement over arrays (`unnest`), not one per row."""
        if not rows:
            return
        arrays = ", ".join(f"%s::{t}[]" for t in types)
        self.conn.execute(
            f"insert into {table} ({', '.join(columns)}) select * from unnest({arrays}) "  # type: ignore[arg-type]
            + conflict.replace("%", "%%"),
            [list(col) for col in zip(*(_clean(r) for r in rows), strict=True)],
        )


def redact(url: str) -> str:
    """The URL without its password, for messages."""
    return re.sub(r"(://[^:/@]+):[^@]*@", r"\1:***@", url)


def migrate(conn: psycopg.Connection[Any]) -> list[str]:
    """Apply the migrations this database lacks (under an advisory lock); their names."""
    applied: list[str] = []
    with conn.transaction():
        conn.execute("select pg_advisory_xact_lock(8470)")
        conn.execute(
            "create table if not exists menwei_migrations (name text primary key,"
            " applied_at timestamptz not null default now())"
        )
        done = {r[0] for r in conn.execute("select name from menwei_migrations").fetchall()}
        known = {name for name, _ in MIGRATIONS}
        unknown = sorted(done - known)
        if unknown:
            raise MenweiError(
                "This database was written by a newer version of menwei (migrations "
                f"{', '.join(unknown)}): upgrade menwei; the database was not changed."
            )
        for name, statements in MIGRATIONS:
            if name in done:
                continue
            for statement in statements:
                conn.execute(statement)  # type: ignore[call-overload]
            conn.execute("insert into menwei_migrations (name) values (%s)", [name])
            applied.append(name)
        if "m110_shared_order" in applied:
            _backfill_order_keys(conn)
    return applied


def _backfill_order_keys(conn: psycopg.Connection[Any]) -> None:
    """Events stored before the shared order get their key from their body, as SQLite's
    m110_shared_order does (a database made after it has none)."""
    import json

    from menwei.core.ordering import order_key_of

    rows = conn.execute("select event_id, body from events where okey is null").fetchall()
    if not rows:
        return
    with conn.cursor() as cur:
        cur.executemany(
            "update events set okey = %s where event_id = %s",
            [(order_key_of(json.loads(body)), event_id) for event_id, body in rows],
        )
    # Where each household is, re-derived in the shared order (as SQLite's m110 does).
    from menwei.sync.server.schema import PRESENCE_INSERT, TRIPS_SQL, presence_rows

    conn.execute("delete from presence")
    with conn.cursor() as cur:
        cur.executemany(
            to_pg(PRESENCE_INSERT),  # type: ignore[arg-type]
            presence_rows(conn.execute(TRIPS_SQL).fetchall()),  # type: ignore[arg-type]
        )


def _for_reading(conn: psycopg.Connection[Any]) -> None:
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    conn.read_only = True


class PostgresStorage(SqlStorage):
    dialect = "postgresql"
    for_update = " for update"
    retryable = (
        pg_errors.UniqueViolation,
        pg_errors.SerializationFailure,
        pg_errors.DeadlockDetected,
    )

    def __init__(self, url: str, *, min_size: int = 1, max_size: int = 8) -> None:
        self.url = url
        try:
            with psycopg.connect(url, autocommit=True) as conn:
                migrate(conn)
        except psycopg.OperationalError as exc:
            raise MenweiError(
                f"无法连接数据库 / cannot reach the PostgreSQL database {redact(url)}: "
                f"{str(exc).strip()}"
            ) from None

        def pool(name: str, **extra: Any) -> ConnectionPool[psycopg.Connection[Any]]:
            return ConnectionPool(
                url,
                min_size=min_size,
                max_size=max_size,
                kwargs={"row_factory": tuple_row},
                open=True,
                name=name,
                **extra,
            )

        self.pool = pool("menwei")
        # Reads have connections of their own, set up once for snapshot reads: each read's BEGIN
        # then says REPEATABLE READ, READ ONLY itself (no extra round trip per read).
        self.read_pool = pool("menwei-read", configure=_for_reading)
        super().__init__()

    @contextlib.contextmanager
    def _begin_write(self) -> Iterator[Tx]:
        with self.pool.connection() as conn, conn.transaction():
            yield PgTx(conn)

    @contextlib.contextmanager
    def _begin_read(self) -> Iterator[Tx]:
        with self.read_pool.connection() as conn, conn.transaction():
            yield PgTx(conn)

    def reserve_gseqs(self, db: Tx, community_id: int, n: int) -> int | None:
        row = db.execute(
            "update communities set event_seq = event_seq + ? where community_id = ?"
            " returning event_seq",
            [n, community_id],
        ).fetchone()
        return int(row[0]) - n + 1

    def close(self) -> None:
        self.read_pool.close()
        self.pool.close()
