"""The gate database's schema, as numbered migrations. Never edit one that has been applied:
add the next number. Numbers 10-19 are kept for sync, 20-29 for notify, 30-39 for the gate app.
"""

from __future__ import annotations

import json

from sqlite_utils import Database
from sqlite_utils.migrations import Migrations

migrations = Migrations("menwei")


@migrations()
def m001_core(db: Database) -> None:
    db.executescript(
        """
        create table meta (key text primary key, value text not null);

        -- The public keys a gate verifies passes against (the private key never enters the db).
        create table keys (
            kid integer primary key check (kid between 0 and 15),
            public_key text not null,
            status text not null default 'active' check (status in ('active', 'retired')),
            created_at text not null
        );

        create table households (
            household integer primary key check (household between 1 and 65535),
            building text not null,
            unit text not null default '',
            room text not null,
            building_group text not null,
            members integer not null check (members between 0 and 99),
            category text not null default 'normal',
            contact text,
            updated_at text not null
        );
        create index households_group on households(building_group);
        create index households_room on households(building, room);

        -- Every pass ever issued (the register of what was printed).
        create table passes (
            household integer not null,
            serial integer not null check (serial between 1 and 255),
            kid integer not null,
            valid_until text not null,
            issued_at text not null,
            code text not null,
            primary key (household, serial)
        );

        -- Per household, the lowest serial still valid: lower ones are refused as revoked.
        create table revocations (
            household integer primary key,
            min_serial integer not null check (min_serial between 1 and 256),
            reason text,
            revoked_at text not null
        );

        -- Every policy the gate has decided under; events name the version.
        create table policy_versions (
            version integer primary key,
            sha256 text not null,
            source text not null,
            body text not null,
            created_at text not null
        );

        create table operators (
            name text primary key,
            pin_hash text,
            role text not null default 'volunteer',
            created_at text not null
        );

        -- This gate's own log: append-only, contiguous seq, hash chain.
        create table events (
            seq integer primary key,
            event_id text not null unique,
            gate_id text not null,
            epoch integer not null,
            kind text not null check (kind in
                ('exit', 'entry', 'deny', 'override', 'annul', 'shift_start', 'shift_end',
                 'register')),
            direction text check (direction in ('exit', 'entry')),
            household integer,
            serial integer,
            verdict text check (verdict in ('green', 'amber', 'red')),
            reason text not null,
            operator text not null,
            headcount integer,
            source text,
            wall_time text not null,
            mono_ns integer not null,
            boot_id text,
            clock_offset_ms integer,
            policy_version integer,
            window text,
            ref text,
            override_reason text,
            note text,
            scan text,
            overdue integer not null default 0,
            body text not null,
            prev_hash text not null,
            hash text not null
        );
        create index events_household on events(household, wall_time);
        create index events_ref on events(ref);
        create index events_time on events(wall_time);
        create trigger events_no_update before update on events
            begin select raise(abort, 'the event log is append-only'); end;
        create trigger events_no_delete before delete on events
            begin select raise(abort, 'the event log is append-only'); end;

        -- Other gates' events, as pulled from the community server.
        create table remote_events (
            gseq integer primary key,
            event_id text not null unique,
            gate_id text not null,
            epoch integer not null,
            seq integer not null,
            kind text not null,
            direction text,
            household integer,
            reason text,
            headcount integer,
            wall_time text not null,
            ref text,
            body text not null,
            unique (gate_id, epoch, seq)
        );
        create index remote_events_household on remote_events(household, wall_time);
        create index remote_events_ref on remote_events(ref);

        -- Every event this gate knows, its own and the others'.
        create view all_events as
            select event_id, gate_id, kind, direction, household, reason, headcount, wall_time,
                   ref, window, overdue
              from events
            union all
            select event_id, gate_id, kind, direction, household, reason, headcount, wall_time,
                   ref, json_extract(body, '$.window'), coalesce(json_extract(body, '$.overdue'), 0)
              from remote_events;

        -- Where each household is, derived from all_events (rebuildable at any time).
        create table household_state (
            household integer primary key,
            state text not null check (state in ('in', 'out')),
            since text not null,
            gate_id text not null,
            event_id text not null,
            headcount integer,
            window text
        );

        -- Sync bookkeeping (cursors, acked sequence, clock offset) and reference-data versions.
        create table sync_state (key text primary key, value text not null);
        create table anomalies (
            anomaly_id text primary key,
            kind text not null,
            household integer,
            gate_id text,
            event_ids text not null,
            detail text,
            detected_at text not null,
            source text not null default 'server'
        );

        -- Notifications waiting to be sent, queued in the same transaction as their cause.
        create table notify_targets (
            id integer primary key,
            url text not null,
            building_group text,
            lang text not null default 'zh',
            created_at text not null,
            unique (url, building_group)
        );
        create table outbox (
            id integer primary key,
            dedup_key text not null unique,
            created_at text not null,
            topic text not null,
            building_group text,
            title text not null,
            body text not null,
            event_id text,
            status text not null default 'pending' check (status in ('pending', 'sent', 'failed')),
            attempts integer not null default 0,
            next_attempt_at text not null,
            last_error text,
            sent_at text
        );
        create index outbox_due on outbox(status, next_attempt_at);
        """
    )


@migrations()
def m020_notify_deliveries(db: Database) -> None:
    # Each message in both languages (a target chooses), who it is for, and per target whether it
    # arrived, so a message that reached one chat but not another is retried only to the other.
    db.executescript(
        """
        alter table outbox add column title_en text;
        alter table outbox add column body_en text;
        alter table outbox add column severity text not null default 'info';
        -- both: the community's targets and the group's; community: the former; group: the latter.
        alter table outbox add column audience text not null default 'both';
        -- While a sender holds a message (it claimed it and is sending), nobody else takes it.
        alter table outbox add column leased_until text;

        create table notify_deliveries (
            outbox_id integer not null references outbox(id),
            target_id integer not null,
            status text not null check (status in ('sent', 'failed')),
            attempts integer not null default 0,
            last_error text,
            updated_at text not null,
            sent_at text,
            primary key (outbox_id, target_id)
        );
        """
    )


@migrations()
def m010_sync(db: Database) -> None:
    # An anomaly pulled from the community server can later be withdrawn there (a late sync
    # brought the missing event): it stays, marked. The server's refusals of this gate's events
    # are kept with their reason, for the status bar and the IT person.
    for statement in (
        "alter table anomalies add column status text not null default 'open'",
        "alter table anomalies add column updated_at text",
        """
        create table sync_rejected (
            seq integer primary key,
            event_id text,
            reason text not null,
            detail text not null,
            reported_at text not null
        )
        """,
    ):
        db.execute(statement)


@migrations()
def m100_roster_addresses(db: Database) -> None:
    # Households are known by their address across re-imports: a roster keyed by address
    # (3-2-301) gets numbers menwei assigns once and keeps. A household that moved out leaves
    # the roster but keeps its row here, so its number is never given to another address and its
    # old pass is refused with its own reason.
    from menwei.core.names import address_key

    db.executescript(
        """
        create table household_addresses (
            address_key text primary key,
            household integer not null unique
        );
        create table removed_households (
            household integer primary key,
            building text not null,
            unit text not null,
            room text not null,
            building_group text not null,
            removed_at text not null,
            reason text
        );
        """
    )
    rows = db.execute("select household, building, unit, room from households").fetchall()
    seen: set[str] = set()
    for number, building, unit, room in rows:
        key = address_key(str(building), str(unit), str(room))
        if key in seen:
            continue
        seen.add(key)
        db.execute(
            "insert or ignore into household_addresses(address_key, household) values (?, ?)",
            [key, number],
        )


# --- issue 13 ---
@migrations()
def m130_outbox_withdrawn(db: Database) -> None:
    # An alert whose gate record was undone (annulled) before it was sent is withdrawn: kept for
    # the record, never sent. One already sent is followed by a correction instead.
    db.execute("alter table outbox add column withdrawn_at text")


# --- issue 11 ---
@migrations()
def m110_shared_order(db: Database) -> None:
    # Every event gets its place in the one order gates and server share (core/ordering.py):
    # `hlc_ms` is written into new events' bodies; `okey` is the derived, comparable key, also
    # filled in for older events (their bodies are not touched: the chain stays intact).
    from menwei.core.ordering import order_key_of

    db.executescript(
        """
        alter table events add column hlc_ms integer;
        alter table events add column okey text;
        alter table remote_events add column okey text;
        alter table household_state add column okey text;
        drop trigger events_no_update;
        """
    )
    conn = db.conn
    rows = conn.execute("select seq, body from events").fetchall()
    conn.executemany(
        "update events set okey = ? where seq = ?",
        [(order_key_of(json.loads(body)), seq) for seq, body in rows],
    )
    rows = conn.execute("select gseq, body from remote_events").fetchall()
    conn.executemany(
        "update remote_events set okey = ? where gseq = ?",
        [(order_key_of(json.loads(body)), gseq) for gseq, body in rows],
    )
    db.executescript(
        """
        create trigger events_no_update before update on events
            begin select raise(abort, 'the event log is append-only'); end;
        create index events_household_order on events(household, okey);
        create index remote_events_household_order on remote_events(household, okey);
        drop view all_events;
        create view all_events as
            select event_id, gate_id, kind, direction, household, reason, headcount, wall_time,
                   ref, window, overdue, okey
              from events
            union all
            select event_id, gate_id, kind, direction, household, reason, headcount, wall_time,
                   ref, json_extract(body, '$.window'), coalesce(json_extract(body, '$.overdue'), 0),
                   okey
              from remote_events;
        """
    )
    from menwei.core import state

    state.rebuild_all(db)
