"""The community server's storage on SQLite (WAL, synchronous=FULL): the default backend.

One connection behind a lock: SQLite has one writer anyway, and with one writer the rowid of
`events` is the commit-ordered `gseq` a gate's pull cursor relies on.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import threading
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from menwei.core.clock import iso
from menwei.core.eventlog import GENESIS
from menwei.core.store import Store
from menwei.sync.protocol import (
    AnomaliesPage,
    AnomalyRecord,
    EnrollRequest,
    EnrollResponse,
    HouseholdRecord,
    KeyRecord,
    PolicyRecord,
    PushBatch,
    PushResult,
    ReferenceDelta,
    RemoteEvent,
    RevocationRecord,
    Snapshot,
    StatusResponse,
)
from menwei.sync.server import schema
from menwei.sync.server.ingest import Ingest, create_stream, load_stream
from menwei.sync.server.rules import PolicyCache
from menwei.sync.server.storage import (
    AuthRefused,
    EnrollmentToken,
    GateAuth,
    GateInfo,
    GateRevoked,
    MustRefetch,
    NotFound,
    Presence,
    ReferenceData,
    ServerStorage,
    StorageError,
    StoredEvent,
    StoredEventsPage,
)

TRIP_KINDS_SQL = "('exit', 'entry', 'override', 'register')"


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _anomaly(row: dict[str, Any]) -> AnomalyRecord:
    return AnomalyRecord(
        anomaly_id=row["anomaly_id"],
        aseq=row["aseq"],
        kind=row["kind"],
        household=row["household"],
        gate_id=row["gate_id"],
        event_ids=json.loads(row["event_ids"]),
        detail=row["detail"],
        status=row["status"],
        detected_at=row["detected_at"],
        updated_at=row["updated_at"],
    )


class SqliteStorage(ServerStorage):
    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            conn.execute("PRAGMA foreign_keys=ON")
            self.store = Store(sqlite_utils.Database(conn), path)
            self.store.migrate([schema.migrations])
        except BaseException:
            conn.close()
            raise
        self.path = path
        self._lock = threading.RLock()
        self._policies = PolicyCache()
        with self.store.write() as db:
            db.execute(
                "insert into settings (key, value) values ('instance_id', ?) "
                "on conflict(key) do nothing",
                [secrets.token_hex(8)],
            )
        self._instance = str(self._one("select value from settings where key = 'instance_id'")[0])

    @property
    def db(self) -> sqlite_utils.Database:
        return self.store.db

    def _one(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> Any:
        return self.db.execute(sql, list(params)).fetchone()

    def _rows(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return list(self.db.query(sql, list(params)))

    def close(self) -> None:
        with self._lock:
            self.store.close()

    def instance_id(self) -> str:
        return self._instance

    def setting(self, key: str) -> str | None:
        with self._lock:
            row = self._one("select value from settings where key = ?", [key])
            return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str | None) -> None:
        with self._lock, self.store.write() as db:
            if value is None:
                db.execute("delete from settings where key = ?", [key])
            else:
                db.execute(
                    "insert into settings (key, value) values (?, ?) "
                    "on conflict(key) do update set value = excluded.value",
                    [key, value],
                )

    # --- community and reference data -----------------------------------------------------------

    def ensure_community(self, community_id: int, name: str, *, now: datetime) -> None:
        with self._lock, self.store.write() as db:
            db.execute(
                "insert into communities (community_id, name, created_at) values (?, ?, ?) "
                "on conflict(community_id) do update set name = excluded.name",
                [community_id, name, iso(now)],
            )

    def _community(self, community_id: int) -> dict[str, Any]:
        rows = self._rows("select * from communities where community_id = ?", [community_id])
        if not rows:
            raise NotFound(f"This server does not serve community {community_id}.")
        return rows[0]

    def refresh_reference(self, community_id: int, data: ReferenceData, *, now: datetime) -> int:
        with self._lock, self.store.write() as db:
            version = int(self._community(community_id)["ref_version"])
            new = version + 1
            changed = False
            stored = {
                int(r["household"]): r
                for r in self._rows(
                    "select * from ref_households where community_id = ?", [community_id]
                )
            }
            for h in data.households.values():
                values = (h.building, h.unit, h.room, h.group, h.members, h.category, h.contact)
                old = stored.get(h.household)
                if (
                    old is not None
                    and not old["deleted"]
                    and values
                    == (
                        old["building"],
                        old["unit"],
                        old["room"],
                        old["building_group"],
                        old["members"],
                        old["category"],
                        old["contact"],
                    )
                ):
                    continue
                changed = True
                db.execute(
                    "insert into ref_households (community_id, household, building, unit, room,"
                    " building_group, members, category, contact, deleted, version)"
                    " values (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?) on conflict(community_id, household)"
                    " do update set building = excluded.building, unit = excluded.unit,"
                    " room = excluded.room, building_group = excluded.building_group,"
                    " members = excluded.members, category = excluded.category,"
                    " contact = excluded.contact, deleted = 0, version = excluded.version",
                    [community_id, h.household, *values, new],
                )
            for number, old in stored.items():
                if number not in data.households and not old["deleted"]:
                    changed = True
                    db.execute(
                        "update ref_households set deleted = 1, version = ? "
                        "where community_id = ? and household = ?",
                        [new, community_id, number],
                    )
            revoked = {
                int(r["household"]): r
                for r in self._rows(
                    "select * from ref_revocations where community_id = ?", [community_id]
                )
            }
            for rv in data.revocations.values():
                db.execute(
                    "insert into revocation_history (community_id, household, min_serial,"
                    " revoked_at) values (?, ?, ?, ?) on conflict do nothing",
                    [community_id, rv.household, rv.min_serial, rv.revoked_at],
                )
                old = revoked.get(rv.household)
                if (
                    old is not None
                    and not old["deleted"]
                    and (old["min_serial"], old["reason"], old["revoked_at"])
                    == (rv.min_serial, rv.reason, rv.revoked_at)
                ):
                    continue
                changed = True
                db.execute(
                    "insert into ref_revocations (community_id, household, min_serial, reason,"
                    " revoked_at, deleted, version) values (?, ?, ?, ?, ?, 0, ?)"
                    " on conflict(community_id, household) do update set"
                    " min_serial = excluded.min_serial, reason = excluded.reason,"
                    " revoked_at = excluded.revoked_at, deleted = 0, version = excluded.version",
                    [community_id, rv.household, rv.min_serial, rv.reason, rv.revoked_at, new],
                )
            for number, old in revoked.items():
                if number not in data.revocations and not old["deleted"]:
                    changed = True
                    db.execute(
                        "update ref_revocations set deleted = 1, version = ? "
                        "where community_id = ? and household = ?",
                        [new, community_id, number],
                    )
            keys = {
                int(r["kid"]): r
                for r in self._rows("select * from ref_keys where community_id = ?", [community_id])
            }
            for k in data.keys.values():
                old = keys.get(k.kid)
                if old is not None and (old["public_key"], old["status"]) == (
                    k.public_key,
                    k.status,
                ):
                    continue
                changed = True
                db.execute(
                    "insert into ref_keys (community_id, kid, public_key, status, version)"
                    " values (?, ?, ?, ?, ?) on conflict(community_id, kid) do update set"
                    " public_key = excluded.public_key, status = excluded.status,"
                    " version = excluded.version",
                    [community_id, k.kid, k.public_key, k.status, new],
                )
            for kid, old in keys.items():
                if kid not in data.keys and old["status"] != "retired":
                    changed = True
                    db.execute(
                        "update ref_keys set status = 'retired', version = ? "
                        "where community_id = ? and kid = ?",
                        [new, community_id, kid],
                    )
            known = {
                int(r[0])
                for r in db.execute(
                    "select home_version from ref_policies where community_id = ?", [community_id]
                ).fetchall()
            }
            for p in data.policies:
                if p.home_version in known:
                    continue
                changed = True
                db.execute(
                    "insert into ref_policies (community_id, home_version, sha256, body,"
                    " created_at, version) values (?, ?, ?, ?, ?, ?)",
                    [community_id, p.home_version, p.sha256, p.text, p.created_at, new],
                )
            if not changed:
                return version
            db.execute(
                "update communities set ref_version = ? where community_id = ?",
                [new, community_id],
            )
            return new

    def prune_tombstones(self, community_id: int) -> int:
        with self._lock, self.store.write() as db:
            version = int(self._community(community_id)["ref_version"])
            db.execute(
                "delete from ref_households where community_id = ? and deleted = 1", [community_id]
            )
            db.execute(
                "delete from ref_revocations where community_id = ? and deleted = 1",
                [community_id],
            )
            db.execute(
                "update communities set ref_floor = ? where community_id = ?",
                [version, community_id],
            )
            return version

    def _households(self, community_id: int, since: int | None) -> list[HouseholdRecord]:
        where, params = _delta(community_id, since, tombstones=True)
        return [
            HouseholdRecord(
                household=r["household"],
                building=r["building"],
                unit=r["unit"],
                room=r["room"],
                group=r["building_group"],
                members=r["members"],
                category=r["category"],
                contact=r["contact"],
                deleted=bool(r["deleted"]),
            )
            for r in self._rows(
                f"select * from ref_households where {where} order by household", params
            )
        ]

    def _revocations(self, community_id: int, since: int | None) -> list[RevocationRecord]:
        where, params = _delta(community_id, since, tombstones=True)
        return [
            RevocationRecord(
                household=r["household"],
                min_serial=r["min_serial"],
                reason=r["reason"],
                revoked_at=r["revoked_at"],
                deleted=bool(r["deleted"]),
            )
            for r in self._rows(
                f"select * from ref_revocations where {where} order by household", params
            )
        ]

    def _keys(self, community_id: int, since: int | None) -> list[KeyRecord]:
        where, params = _delta(community_id, since, tombstones=False)
        return [
            KeyRecord(kid=r["kid"], public_key=r["public_key"], status=r["status"])
            for r in self._rows(f"select * from ref_keys where {where} order by kid", params)
        ]

    def _policy(self, community_id: int, since: int | None) -> PolicyRecord | None:
        rows = self._rows(
            "select * from ref_policies where community_id = ? order by home_version desc limit 1",
            [community_id],
        )
        if not rows or (since is not None and rows[0]["version"] <= since):
            return None
        r = rows[0]
        return PolicyRecord(sha256=r["sha256"], text=r["body"], created_at=r["created_at"])

    def reference_delta(self, community_id: int, since: int, *, now: datetime) -> ReferenceDelta:
        with self._lock:
            c = self._community(community_id)
            version, floor = int(c["ref_version"]), int(c["ref_floor"])
            if since < floor or since > version:
                raise MustRefetch(
                    f"Reference version {since} cannot be brought up to date with a delta "
                    f"(server at {version}, deltas from {floor}): fetch a snapshot."
                )
            return ReferenceDelta(
                server_time=iso(now),
                since=since,
                version=version,
                households=self._households(community_id, since),
                revocations=self._revocations(community_id, since),
                keys=self._keys(community_id, since),
                policy=self._policy(community_id, since),
            )

    # --- gates ----------------------------------------------------------------------------------

    def add_gate(
        self, community_id: int, name: str, *, now: datetime, valid_for_hours: int = 72
    ) -> EnrollmentToken:
        name = name.strip()
        if not name or len(name) > 40:
            raise StorageError("A gate needs a name of 1 to 40 characters.")
        token = secrets.token_urlsafe(24)
        expires = iso(now + timedelta(hours=valid_for_hours))
        with self._lock, self.store.write() as db:
            self._community(community_id)
            row = self._one(
                "select gate_id, status from gates where community_id = ? and name = ?",
                [community_id, name],
            )
            if row is None:
                number = 1 + int(
                    self._one(
                        "select coalesce(max(number), 0) from gates where community_id = ?",
                        [community_id],
                    )[0]
                )
                gate_id = f"c{community_id}-g{number}"
                db.execute(
                    "insert into gates (gate_id, community_id, name, number, status, created_at)"
                    " values (?, ?, ?, ?, 'pending', ?)",
                    [gate_id, community_id, name, number, iso(now)],
                )
            else:
                gate_id = row[0]
            db.execute(
                "update gates set enroll_hash = ?, enroll_expires_at = ?, enroll_used_at = null,"
                " status = case when status = 'revoked' then 'pending' else status end"
                " where gate_id = ?",
                [token_hash(token), expires, gate_id],
            )
        return EnrollmentToken(gate_id, name, token, expires)

    def revoke_gate(self, community_id: int, name: str, *, now: datetime) -> GateInfo:
        with self._lock:
            with self.store.write() as db:
                row = self._one(
                    "select gate_id from gates where community_id = ? and (name = ? or gate_id = ?)",
                    [community_id, name, name],
                )
                if row is None:
                    raise NotFound(f"No gate named {name!r}.")
                db.execute(
                    "update gates set status = 'revoked', revoked_at = ?, enroll_hash = null"
                    " where gate_id = ?",
                    [iso(now), row[0]],
                )
            return next(g for g in self.list_gates(community_id) if g.gate_id == row[0])

    def list_gates(self, community_id: int) -> list[GateInfo]:
        with self._lock:
            rows = self._rows(
                "select g.*, (select count(*) from events e where e.gate_id = g.gate_id) as n,"
                " (select through_seq from streams s where s.gate_id = g.gate_id"
                "  and s.epoch = g.epoch) as through"
                " from gates g where community_id = ? order by number",
                [community_id],
            )
        return [
            GateInfo(
                gate_id=r["gate_id"],
                name=r["name"],
                status=r["status"],
                epoch=r["epoch"],
                created_at=r["created_at"],
                enrolled_at=r["enrolled_at"],
                revoked_at=r["revoked_at"],
                last_seen_at=r["last_seen_at"],
                clock_offset_ms=r["clock_offset_ms"],
                hostname=r["hostname"],
                events=int(r["n"]),
                acked_through_seq=int(r["through"] or 0),
            )
            for r in rows
        ]

    def enroll(self, community_id: int, request: EnrollRequest, *, now: datetime) -> EnrollResponse:
        with self._lock, self.store.write() as db:
            c = self._community(community_id)
            rows = self._rows(
                "select * from gates where enroll_hash = ? and community_id = ?",
                [token_hash(request.token), community_id],
            )
            if not rows:
                raise AuthRefused(
                    "This enrollment token is unknown: ask for a new one "
                    "(`menwei server gate add NAME` on the server).",
                    code="enroll_token_unknown",
                )
            gate = rows[0]
            api_hash = token_hash(request.api_token)
            answer = EnrollResponse(
                server_time=iso(now),
                community_id=community_id,
                community_name=c["name"],
                gate_id=gate["gate_id"],
                gate_name=gate["name"],
                epoch=gate["epoch"],
            )
            if gate["enroll_used_at"]:
                if gate["token_hash"] == api_hash:
                    return answer  # the same gate asking again after a lost answer
                raise AuthRefused(
                    "This enrollment token was already used: ask for a new one.",
                    code="enroll_token_used",
                )
            if gate["enroll_expires_at"] < iso(now):
                raise AuthRefused(
                    "This enrollment token has expired: ask for a new one.",
                    code="enroll_token_expired",
                )
            epoch = 1 + int(
                self._one(
                    "select coalesce(max(epoch), 0) from streams where gate_id = ?",
                    [gate["gate_id"]],
                )[0]
            )
            create_stream(
                db,
                gate["gate_id"],
                epoch,
                parent_epoch=None,
                base_seq=0,
                base_hash=GENESIS,
                reason="enrolled",
                now=iso(now),
                public_key=request.public_key,
            )
            # What the gate wrote before is not in its new log unless it pushes it again.
            db.execute("update events set orphan = 1 where gate_id = ?", [gate["gate_id"]])
            db.execute(
                "update gates set status = 'active', epoch = ?, token_hash = ?, public_key = ?,"
                " enroll_used_at = ?, enrolled_at = ?, hostname = ? where gate_id = ?",
                [
                    epoch,
                    api_hash,
                    request.public_key,
                    iso(now),
                    iso(now),
                    request.hostname,
                    gate["gate_id"],
                ],
            )
            return answer.model_copy(update={"epoch": epoch})

    def authenticate(self, api_token: str, *, now: datetime) -> GateAuth:
        with self._lock:
            row = self._one(
                "select gate_id, community_id, name, epoch, status from gates where token_hash = ?",
                [token_hash(api_token)],
            )
        if row is None:
            raise AuthRefused("Unknown API token: enroll this gate again.")
        if row[4] == "revoked":
            raise GateRevoked(
                "This gate was revoked by the committee: ask the IT person to enroll it again."
            )
        return GateAuth(gate_id=row[0], community_id=row[1], name=row[2], epoch=row[3])

    def gate_public_keys(self, community_id: int, gate_id: str) -> list[str]:
        with self._lock:
            rows = self.db.execute(
                "select public_key from gates where community_id = ? and gate_id = ?"
                " union select s.public_key from streams s join gates g using (gate_id)"
                " where g.community_id = ? and s.gate_id = ?",
                [community_id, gate_id, community_id, gate_id],
            ).fetchall()
        return [str(r[0]) for r in rows if r[0]]

    def _event_at(self, gseq: int) -> str | None:
        row = self._one("select event_id from events where gseq = ?", [gseq])
        return None if row is None else str(row[0])

    def status(self, gate: GateAuth, *, now: datetime, cursor: int = 0) -> StatusResponse:
        with self._lock:
            with self.store.write() as db:
                db.execute(
                    "update gates set last_seen_at = ? where gate_id = ?", [iso(now), gate.gate_id]
                )
            g = self._rows("select * from gates where gate_id = ?", [gate.gate_id])[0]
            stream = load_stream(self.db, gate.gate_id, g["epoch"])
            c = self._community(gate.community_id)
            head = self._one("select coalesce(max(gseq), 0) from events")[0]
            return StatusResponse(
                server_time=iso(now),
                instance_id=self._instance,
                community_id=gate.community_id,
                gate_id=gate.gate_id,
                gate_name=g["name"],
                epoch=g["epoch"],
                acked_through_seq=stream.through_seq if stream else 0,
                head_gseq=int(head),
                ref_version=int(c["ref_version"]),
                anomaly_seq=int(c["anomaly_seq"]),
                cursor_event_id=self._event_at(cursor),
            )

    # --- events ---------------------------------------------------------------------------------

    def push(
        self, gate_id: str, batch: PushBatch, *, now: datetime, source: str = "push"
    ) -> PushResult:
        with self._lock, self.store.write() as db:
            row = self._one("select community_id, epoch from gates where gate_id = ?", [gate_id])
            if row is None:
                raise NotFound(f"No gate {gate_id} on this server.")
            ingest = Ingest(
                db,
                community_id=int(row[0]),
                gate_id=gate_id,
                current_epoch=int(row[1]),
                now=now,
                source=source,
                policies=self._policies,
            )
            return ingest.run(batch)

    def reject_batch(
        self, gate_id: str, payload: bytes, reason: str, detail: str, *, now: datetime
    ) -> None:
        text = payload[: 1024 * 1024].decode("utf-8", "replace")
        with self._lock, self.store.write() as db:
            row = self._one("select community_id from gates where gate_id = ?", [gate_id])
            if row is None:
                return
            db.execute(
                "insert into rejected (community_id, gate_id, reason, detail, payload,"
                " payload_sha256, received_at, source) values (?, ?, ?, ?, ?, ?, ?, 'push')"
                " on conflict do nothing",
                [
                    row[0],
                    gate_id,
                    reason,
                    detail,
                    text,
                    hashlib.sha256(payload).hexdigest(),
                    iso(now),
                ],
            )

    def _remote_events(self, sql: str, params: list[Any]) -> list[RemoteEvent]:
        # The body is stored canonical; it goes out as it is, inside the page.
        return [
            RemoteEvent.model_construct(
                gseq=r[0], gate_id=r[1], epoch=r[2], seq=r[3], body=json.loads(r[4])
            )
            for r in self.db.execute(sql, params).fetchall()
        ]

    def events_page(
        self, gate: GateAuth, after: int, limit: int, *, now: datetime
    ) -> StoredEventsPage:
        with self._lock:
            head = int(self._one("select coalesce(max(gseq), 0) from events")[0])
            rows = self.db.execute(
                "select gseq, gate_id, epoch, seq, body from events where community_id = ?"
                " and gseq > ? and not (gate_id = ? and orphan = 0) order by gseq limit ?",
                [gate.community_id, after, gate.gate_id, limit],
            ).fetchall()
            if len(rows) == limit:
                next_after, more = rows[-1][0], rows[-1][0] < head
            else:
                next_after, more = max(after, head), False
            at = self._event_at(next_after)
        return StoredEventsPage(
            server_time=iso(now),
            events=tuple(StoredEvent(*r) for r in rows),
            next_after=next_after,
            head_gseq=head,
            more=more,
            cursor_event_id=at,
        )

    def snapshot(self, gate: GateAuth, *, now: datetime, days: int = 14) -> Snapshot:
        horizon = iso(now - timedelta(days=days))
        cid = gate.community_id
        with self._lock:
            # One read transaction: the picture is consistent.
            self.db.execute("begin")
            try:
                c = self._community(cid)
                head = int(self._one("select coalesce(max(gseq), 0) from events")[0])
                not_mine = "not (gate_id = ? and orphan = 0)"
                events = self._remote_events(
                    "select gseq, gate_id, epoch, seq, body from events where community_id = ?"
                    f" and wall_time >= ? and {not_mine} order by gseq",
                    [cid, horizon, gate.gate_id],
                )
                # Before the horizon, each household's last trip that was not annulled: enough
                # to know where everyone is.
                events += self._remote_events(
                    "select gseq, gate_id, epoch, seq, body from ("
                    " select e.*, row_number() over (partition by household"
                    "  order by wall_time desc, event_id desc) as n from events e"
                    f" where community_id = ? and wall_time < ? and kind in {TRIP_KINDS_SQL}"
                    " and household is not null and not exists (select 1 from events a"
                    "  where a.ref = e.event_id and a.kind = 'annul'))"
                    f" where n = 1 and {not_mine} order by gseq",
                    [cid, horizon, gate.gate_id],
                )
                anomalies = [
                    _anomaly(r)
                    for r in self._rows(
                        "select * from anomalies where community_id = ? order by aseq", [cid]
                    )
                ]
                snap = Snapshot(
                    server_time=iso(now),
                    community_id=cid,
                    community_name=c["name"],
                    ref_version=int(c["ref_version"]),
                    head_gseq=head,
                    cursor_event_id=self._event_at(head),
                    anomaly_seq=int(c["anomaly_seq"]),
                    households=self._households(cid, None),
                    revocations=self._revocations(cid, None),
                    keys=self._keys(cid, None),
                    policy=self._policy(cid, None),
                    events=sorted(events, key=lambda e: e.gseq),
                    anomalies=anomalies,
                )
            finally:
                self.db.execute("commit")
        return snap

    def anomalies_page(
        self, community_id: int, after: int, limit: int, *, now: datetime
    ) -> AnomaliesPage:
        with self._lock:
            rows = self._rows(
                "select * from anomalies where community_id = ? and aseq > ? order by aseq limit ?",
                [community_id, after, limit],
            )
            top = int(self._community(community_id)["anomaly_seq"])
        records = [_anomaly(r) for r in rows]
        more = len(records) == limit and records[-1].aseq < top
        next_after = records[-1].aseq if more else max(after, top)
        return AnomaliesPage(
            server_time=iso(now), anomalies=records, next_after=next_after, more=more
        )

    def list_anomalies(
        self, community_id: int, *, include_withdrawn: bool = False
    ) -> list[AnomalyRecord]:
        where = "" if include_withdrawn else " and status = 'open'"
        with self._lock:
            rows = self._rows(
                f"select * from anomalies where community_id = ?{where} order by aseq",
                [community_id],
            )
        return [_anomaly(r) for r in rows]

    def presence(self, community_id: int) -> dict[int, Presence]:
        with self._lock:
            rows = self._rows("select * from presence where community_id = ?", [community_id])
        return {
            int(r["household"]): Presence(
                int(r["household"]), r["state"], r["since"], r["gate_id"], r["event_id"]
            )
            for r in rows
        }

    def event_ids(self, community_id: int) -> list[str]:
        with self._lock:
            return [
                str(r[0])
                for r in self.db.execute(
                    "select event_id from events where community_id = ? order by gseq",
                    [community_id],
                ).fetchall()
            ]

    def rejected(self, community_id: int) -> list[dict[str, Any]]:
        with self._lock:
            return self._rows(
                "select id, gate_id, epoch, seq, event_id, reason, detail, received_at, source"
                " from rejected where community_id = ? order by id",
                [community_id],
            )


def _delta(community_id: int, since: int | None, *, tombstones: bool) -> tuple[str, list[Any]]:
    """The filter for reference rows: changed after `since` (deletions included), or, for a full
    copy, every row still alive (where the table keeps tombstones)."""
    if since is not None:
        return "community_id = ? and version > ?", [community_id, since]
    return "community_id = ?" + (" and deleted = 0" if tombstones else ""), [community_id]
