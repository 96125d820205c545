"""The community server's own database (`<home>/server/server.db`), as numbered migrations.

Never edit one that has been applied: add the next number.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("menwei-server")

_M001 = [
    "create table settings (key text primary key, value text not null)",
    """
    create table communities (
        community_id integer primary key,
        name text not null,
        ref_version integer not null default 0,
        -- Reference deltas from a version below this need a snapshot (tombstones were pruned).
        ref_floor integer not null default 0,
        anomaly_seq integer not null default 0,
        created_at text not null
    )
    """,
    """
    create table gates (
        gate_id text primary key,
        community_id integer not null references communities(community_id),
        name text not null,
        number integer not null,
        status text not null check (status in ('pending', 'active', 'revoked')),
        epoch integer not null default 0,
        token_hash text unique,
        public_key text,
        enroll_hash text unique,
        enroll_expires_at text,
        enroll_used_at text,
        hostname text,
        created_at text not null,
        enrolled_at text,
        revoked_at text,
        last_seen_at text,
        clock_offset_ms integer,
        unique (community_id, name),
        unique (community_id, number)
    )
    """,
    # One stream per (gate, epoch): a run of the gate's log. A restored gate continues in a new
    # epoch whose seqs up to base_seq are those of its parent.
    """
    create table streams (
        gate_id text not null references gates(gate_id),
        epoch integer not null,
        parent_epoch integer,
        base_seq integer not null,
        base_hash text not null,
        through_seq integer not null,
        head_hash text not null,
        reason text not null,
        created_at text not null,
        primary key (gate_id, epoch)
    )
    """,
    # The event store. gseq is the rowid: with one writer, rowid order is commit order.
    """
    create table events (
        gseq integer primary key,
        community_id integer not null,
        event_id text not null unique,
        gate_id text not null,
        epoch integer not null,
        seq integer not null,
        kind text not null,
        direction text,
        household integer,
        serial integer,
        reason text,
        wall_time text not null,
        ref text,
        overdue integer not null default 0,
        clock_offset_ms integer,
        body text not null,
        prev_hash text not null,
        hash text not null,
        received_at text not null,
        source text not null,
        -- 1 when the gate that wrote it no longer holds it (restored or re-enrolled): it then
        -- pulls it back like another gate's event.
        orphan integer not null default 0,
        unique (gate_id, epoch, seq)
    )
    """,
    "create index events_household on events(community_id, household, wall_time, event_id)",
    "create index events_ref on events(ref) where ref is not null",
    # A stream position held by an event stored under another position (re-enrolled gate).
    """
    create table aliases (
        gate_id text not null,
        epoch integer not null,
        seq integer not null,
        event_id text not null,
        hash text not null,
        primary key (gate_id, epoch, seq)
    )
    """,
    # What the server could not accept, with the reason: never silently dropped.
    """
    create table rejected (
        id integer primary key,
        community_id integer not null,
        gate_id text not null,
        epoch integer,
        seq integer,
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
    """
    create table presence (
        community_id integer not null,
        household integer not null,
        state text not null check (state in ('in', 'out')),
        since text not null,
        gate_id text not null,
        event_id text not null,
        primary key (community_id, household)
    )
    """,
    """
    create table anomalies (
        anomaly_id text primary key,
        community_id integer not null,
        aseq integer not null,
        kind text not null,
        household integer,
        gate_id text,
        event_ids text not null,
        detail text not null,
        status text not null check (status in ('open', 'withdrawn')),
        sort_key text,
        detected_at text not null,
        updated_at text not null
    )
    """,
    "create unique index anomalies_aseq on anomalies(community_id, aseq)",
    "create index anomalies_household on anomalies(community_id, household, kind, status)",
    # Reference data, versioned; deleted households stay as tombstones.
    """
    create table ref_households (
        community_id integer not null,
        household integer not null,
        building text not null,
        unit text not null,
        room text not null,
        building_group text not null,
        members integer not null,
        category text not null,
        contact text,
        deleted integer not null default 0,
        version integer not null,
        primary key (community_id, household)
    )
    """,
    "create index ref_households_version on ref_households(community_id, version)",
    """
    create table ref_revocations (
        community_id integer not null,
        household integer not null,
        min_serial integer not null,
        reason text,
        revoked_at text not null,
        deleted integer not null default 0,
        version integer not null,
        primary key (community_id, household)
    )
    """,
    # Every floor ever published, to judge an old scan by what was revoked at its time.
    """
    create table revocation_history (
        community_id integer not null,
        household integer not null,
        min_serial integer not null,
        revoked_at text not null,
        primary key (community_id, household, min_serial)
    )
    """,
    """
    create table ref_keys (
        community_id integer not null,
        kid integer not null,
        public_key text not null,
        status text not null,
        version integer not null,
        primary key (community_id, kid)
    )
    """,
    """
    create table ref_policies (
        community_id integer not null,
        home_version integer not null,
        sha256 text not null,
        body text not null,
        created_at text not null,
        version integer not null,
        primary key (community_id, home_version)
    )
    """,
]


@migrations()
def m001_server(db: Database) -> None:
    for statement in _M001:
        db.execute(statement)


@migrations()
def m002_stream_keys(db: Database) -> None:
    # The key a gate enrolled with, per epoch: a bundle exported by a laptop that has since been
    # replaced still verifies.
    db.execute("alter table streams add column public_key text")


@migrations()
def m003_revoked_keys(db: Database) -> None:
    # When a gate is revoked, the keys it held until then sign nothing any more: a stolen
    # laptop's USB bundles are refused even after the gate is enrolled again on a new laptop.
    db.execute("alter table streams add column revoked_at text")


# --- issue 11 ---
@migrations()
def m110_shared_order(db: Database) -> None:
    # Events take their place in the one order gates and server share (core/ordering.py);
    # where each household is, is re-derived in that order.
    import json

    from menwei.core.ordering import order_key_of

    db.execute("alter table events add column okey text")
    db.execute("alter table presence add column okey text")
    rows = db.execute("select gseq, body from events").fetchall()
    db.conn.executemany(
        "update events set okey = ? where gseq = ?",
        [(order_key_of(json.loads(body)), gseq) for gseq, body in rows],
    )
    db.execute("create index events_household_order on events(community_id, household, okey)")
    db.execute("delete from presence")
    db.conn.executemany(PRESENCE_INSERT, presence_rows(db.execute(TRIPS_SQL).fetchall()))


# Every trip that was not annulled, for `presence_rows` (both backends' migrations).
TRIPS_SQL = (
    "select community_id, household, event_id, wall_time, gate_id, kind, direction, okey"
    " from events e where household is not null"
    " and kind in ('exit', 'entry', 'override', 'register')"
    " and not exists (select 1 from events a where a.ref = e.event_id and a.kind = 'annul')"
)
PRESENCE_INSERT = (
    "insert into presence (community_id, household, state, since, gate_id, event_id, okey)"
    " values (?, ?, ?, ?, ?, ?, ?)"
)


def presence_rows(trip_rows: Iterable[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Where each household is (rows for `PRESENCE_INSERT`), settled in the shared order from
    all its trips (rows of `TRIPS_SQL`)."""
    from menwei.core.ordering import settle, way_of

    trips: dict[tuple[int, int], list[dict[str, Any]]] = {}
    for cid, household, event_id, wall, gate, kind, direction, okey in trip_rows:
        trips.setdefault((cid, household), []).append(
            dict(
                event_id=event_id,
                wall_time=wall,
                gate_id=gate,
                kind=kind,
                direction=direction,
                okey=okey,
            )
        )
    out = []
    for (cid, household), rows in trips.items():
        last = settle(rows)
        if last is None:
            continue
        direction = last.get("direction")
        way = way_of(str(last["kind"]), str(direction) if direction else None)
        out.append(
            (
                cid,
                household,
                "out" if way == "exit" else "in",
                last["wall_time"],
                last["gate_id"],
                last["event_id"],
                last["okey"],
            )
        )
    return out


# --- issue 14 ---
@migrations()
def m003_district(db: Database) -> None:
    # A district server holds many communities: the committee home each one's reference data
    # comes from, and the committee's read tokens (hashes only).
    db.execute("create index if not exists aliases_event on aliases(event_id)")
    db.execute("alter table communities add column home text")
    # The instance a community's data was born in: it moves with the data (`server migrate`), so
    # the gates keep their cursors.
    db.execute("alter table communities add column instance_id text")
    db.execute(
        """
        create table committee_tokens (
            token_hash text primary key,
            community_id integer not null references communities(community_id),
            created_at text not null,
            revoked_at text
        )
        """
    )


@migrations()
def m111_event_indexes(db: Database) -> None:
    # A community's events in commit order (PostgreSQL's primary key): its head (`max(gseq)`, on
    # every push and pull) and a pull page "after N" are then a seek, not a scan of every event
    # of the community and a sort. Every query of a household's events orders them by `okey`
    # (events_household_order): the older index by wall time only cost every insert.
    db.execute("create index if not exists events_community on events(community_id, gseq)")
    db.execute("drop index if exists events_household")
