"""The community server's storage in SQL, and its SQLite backend (the default).

`SqlStorage` is the whole storage in SQL that SQLite and PostgreSQL both run (`sql.py`); the
backends (`SqliteStorage` here, `PostgresStorage` in `postgres.py`) give it connections,
transactions and the way `gseq` is assigned.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import secrets
import sqlite3
import threading
from abc import abstractmethod
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils
from pydantic_core import from_json

from menwei.core.clock import iso
from menwei.core.eventlog import GENESIS
from menwei.core.store import Store, make_private
from menwei.sync.protocol import (
    MAX_REJECTED_BATCHES_PER_GATE,
    MAX_REJECTED_PAYLOAD_BYTES,
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
from menwei.sync.server.sql import SqliteTx, Tx
from menwei.sync.server.storage import (
    AuthRefused,
    CommunityInfo,
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


def new_enrollment_token() -> str:
    """A one-time enrollment token (192 random bits) that starts with a letter or a digit, so
    that `menwei enroll URL TOKEN` can never take it for an option."""
    while True:
        token = secrets.token_urlsafe(24)
        if token[0].isalnum():
            return token


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


class SqlStorage(ServerStorage):
    """The server's storage in SQL that SQLite and PostgreSQL both run (see `sql.py`).

    A backend gives it transactions: `_write()` (one writer at a time per community's rows),
    `_read()` (a consistent snapshot that never waits for a writer), and how `gseq` is assigned.
    Methods run their statements on `self.db`, the transaction in progress on this thread.
    """

    dialect = "sqlite"
    # Row locks a push takes on its gate (PostgreSQL; SQLite has one writer anyway).
    for_update = ""
    # Errors after which a push is tried again from the start (conflicting concurrent pushes).
    retryable: tuple[type[BaseException], ...] = ()

    def __init__(self) -> None:
        self._local = threading.local()
        self._policies = PolicyCache()
        with self._write() as db:
            db.execute(
                "insert into settings (key, value) values ('instance_id', ?) "
                "on conflict(key) do nothing",
                [secrets.token_hex(8)],
            )
            self._instance = str(
                self._one("select value from settings where key = 'instance_id'")[0]
            )

    # --- transactions (the backend's) -----------------------------------------------------------

    @abstractmethod
    def _begin_write(self) -> contextlib.AbstractContextManager[Tx]: ...

    @abstractmethod
    def _begin_read(self) -> contextlib.AbstractContextManager[Tx]: ...

    def reserve_gseqs(self, db: Tx, community_id: int, n: int) -> int | None:
        """The first of `n` gseqs for events about to be stored; None: the database assigns
        them (SQLite's rowid under its single writer)."""
        return None

    @contextlib.contextmanager
    def _write(self) -> Iterator[Tx]:
        """A write transaction (or the one this thread is in)."""
        current: Tx | None = getattr(self._local, "tx", None)
        if current is not None and getattr(self._local, "writing", False):
            yield current
            return
        with self._begin_write() as tx:
            self._local.tx, self._local.writing = tx, True
            try:
                yield tx
            finally:
                self._local.tx, self._local.writing = None, False

    @contextlib.contextmanager
    def _read(self) -> Iterator[Tx]:
        """A read-only snapshot (or the transaction this thread is in)."""
        current: Tx | None = getattr(self._local, "tx", None)
        if current is not None:
            yield current
            return
        with self._begin_read() as tx:
            self._local.tx = tx
            try:
                yield tx
            finally:
                self._local.tx = None

    @property
    def db(self) -> Tx:
        tx: Tx | None = getattr(self._local, "tx", None)
        if tx is None:
            raise RuntimeError("no transaction in progress")
        return tx

    def _one(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> Any:
        return self.db.execute(sql, list(params)).fetchone()

    def _rows(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        return self.db.rows(sql, list(params))

    def query(self, sql: str, params: list[Any] | tuple[Any, ...] = ()) -> list[dict[str, Any]]:
        """Rows of a read-only query (for checks, reports and tests), on a snapshot."""
        with self._read():
            return self._rows(sql, params)

    def instance_id(self) -> str:
        return self._instance

    def setting(self, key: str) -> str | None:
        with self._read():
            row = self._one("select value from settings where key = ?", [key])
            return None if row is None else str(row[0])

    def set_setting(self, key: str, value: str | None) -> None:
        with self._write() as db:
            if value is None:
                db.execute("delete from settings where key = ?", [key])
            else:
                db.execute(
                    "insert into settings (key, value) values (?, ?) "
                    "on conflict(key) do update set value = excluded.value",
                    [key, value],
                )

    # --- community and reference data -----------------------------------------------------------

    def ensure_community(
        self, community_id: int, name: str, *, now: datetime, home: str | None = None
    ) -> None:
        with self._write() as db:
            db.execute(
                "insert into communities (community_id, name, created_at, home, instance_id)"
                " values (?, ?, ?, ?, ?) on conflict(community_id) do update set"
                " name = excluded.name, home = coalesce(excluded.home, communities.home)",
                [community_id, name, iso(now), home, self._instance],
            )

    def list_communities(self) -> list[CommunityInfo]:
        """Every community this server holds, with what it holds of each."""
        with self._read():
            rows = self._rows(
                "select c.community_id, c.name, c.home, c.ref_version,"
                " (select count(*) from ref_households h where h.community_id = c.community_id"
                "  and h.deleted = 0) as households,"
                " (select count(*) from gates g where g.community_id = c.community_id) as gates,"
                " (select count(*) from events e where e.community_id = c.community_id)"
                "  as events,"
                " (select count(*) from anomalies a where a.community_id = c.community_id"
                "  and a.status = 'open') as anomalies_open"
                " from communities c order by c.community_id"
            )
        return [
            CommunityInfo(
                community_id=int(r["community_id"]),
                name=r["name"],
                home=r["home"],
                ref_version=int(r["ref_version"]),
                households=int(r["households"]),
                gates=int(r["gates"]),
                events=int(r["events"]),
                anomalies_open=int(r["anomalies_open"]),
            )
            for r in rows
        ]

    def community_homes(self) -> dict[int, str | None]:
        """Each community's committee home (None: its data came some other way)."""
        with self._read():
            return {
                int(r["community_id"]): r["home"]
                for r in self._rows("select community_id, home from communities")
            }

    def add_committee_token(self, community_id: int, *, now: datetime) -> str:
        """A read token for the committee of one community (only its hash is kept)."""
        token = secrets.token_urlsafe(32)
        with self._write() as db:
            self._community(community_id)
            db.execute(
                "insert into committee_tokens (token_hash, community_id, created_at)"
                " values (?, ?, ?)",
                [token_hash(token), community_id, iso(now)],
            )
        return token

    def committee_community(self, token: str) -> int:
        """The community a committee token reads; AuthRefused otherwise."""
        with self._read():
            row = self._one(
                "select community_id from committee_tokens where token_hash = ?"
                " and revoked_at is null",
                [token_hash(token)],
            )
        if row is None:
            raise AuthRefused("Unknown committee token.")
        return int(row[0])

    def _community(self, community_id: int) -> dict[str, Any]:
        rows = self._rows("select * from communities where community_id = ?", [community_id])
        if not rows:
            raise NotFound(f"This server does not serve community {community_id}.")
        return rows[0]

    def refresh_reference(self, community_id: int, data: ReferenceData, *, now: datetime) -> int:
        with self._write() as db:
            version = int(self._community(community_id)["ref_version"])
            new = version + 1
            changed = False
            stored = {
                int(r["household"]): r
                for r in self._rows(
                    "select * from ref_households where community_id = ?", [community_id]
                )
            }
            upserts: list[list[Any]] = []
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
                upserts.append([community_id, h.household, *values, new])
            if upserts:
                # One round trip for a whole roster (a district loads 150,000 households).
                db.executemany(
                    "insert into ref_households (community_id, household, building, unit, room,"
                    " building_group, members, category, contact, deleted, version)"
                    " values (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?) on conflict(community_id, household)"
                    " do update set building = excluded.building, unit = excluded.unit,"
                    " room = excluded.room, building_group = excluded.building_group,"
                    " members = excluded.members, category = excluded.category,"
                    " contact = excluded.contact, deleted = 0, version = excluded.version",
                    upserts,
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
        with self._write() as db:
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
        with self._read():
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
        token = new_enrollment_token()
        expires = iso(now + timedelta(hours=valid_for_hours))
        with self._write() as db:
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
            # A revoked gate comes back as a pending one: its old API token was cleared at the
            # revocation, so only the laptop that claims this new enrollment token gets in.
            db.execute(
                "update gates set enroll_hash = ?, enroll_expires_at = ?, enroll_used_at = null,"
                " token_hash = case when status = 'revoked' then null else token_hash end,"
                " status = case when status = 'revoked' then 'pending' else status end"
                " where gate_id = ?",
                [token_hash(token), expires, gate_id],
            )
        return EnrollmentToken(gate_id, name, token, expires)

    def revoke_gate(self, community_id: int, name: str, *, now: datetime) -> GateInfo:
        with self._write() as db:
            row = self._one(
                "select gate_id from gates where community_id = ? and (name = ? or gate_id = ?)",
                [community_id, name, name],
            )
            if row is None:
                raise NotFound(f"No gate named {name!r}.")
            db.execute(
                # The token hash goes for good: no later `gate add` can bring it back.
                "update gates set status = 'revoked', revoked_at = ?, enroll_hash = null,"
                " token_hash = null where gate_id = ?",
                [iso(now), row[0]],
            )
            db.execute(
                "update streams set revoked_at = ? where gate_id = ? and revoked_at is null",
                [iso(now), row[0]],
            )
        return next(g for g in self.list_gates(community_id) if g.gate_id == row[0])

    def list_gates(self, community_id: int) -> list[GateInfo]:
        with self._read():
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

    def enroll(
        self, community_id: int | None, request: EnrollRequest, *, now: datetime
    ) -> EnrollResponse:
        """`community_id` None: the token says which community (a district server)."""
        with self._write() as db:
            rows = self._rows(
                "select * from gates where enroll_hash = ?"
                + ("" if community_id is None else " and community_id = ?"),
                [token_hash(request.token)] + ([] if community_id is None else [community_id]),
            )
            if not rows:
                raise AuthRefused(
                    "This enrollment token is unknown: ask for a new one "
                    "(`menwei server gate add NAME` on the server).",
                    code="enroll_token_unknown",
                )
            gate = rows[0]
            community_id = int(gate["community_id"])
            c = self._community(community_id)
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
        with self._read():
            row = self._one(
                "select gate_id, community_id, name, epoch, status from gates where token_hash = ?",
                [token_hash(api_token)],
            )
        if row is None:
            raise AuthRefused("Unknown API token: enroll this gate again.")
        if row[4] != "active":
            # Only an enrolled, active gate speaks; a revoked one has no token hash any more.
            raise GateRevoked(
                "This gate was revoked by the committee: ask the IT person to enroll it again."
            )
        return GateAuth(gate_id=row[0], community_id=row[1], name=row[2], epoch=row[3])

    def gate_public_keys(self, community_id: int, gate_id: str) -> list[str]:
        with self._read():
            rows = self.db.execute(
                "select public_key from gates where community_id = ? and gate_id = ?"
                " and status = 'active'"
                " union select s.public_key from streams s join gates g using (gate_id)"
                " where g.community_id = ? and s.gate_id = ? and s.revoked_at is null",
                [community_id, gate_id, community_id, gate_id],
            ).fetchall()
        return [str(r[0]) for r in rows if r[0]]

    def _event_at(self, community_id: int, gseq: int) -> str | None:
        row = self._one(
            "select event_id from events where community_id = ? and gseq = ?", [community_id, gseq]
        )
        return None if row is None else str(row[0])

    def _head(self, community_id: int) -> int:
        """The community's last gseq (each community numbers its own events, in commit order)."""
        row = self._one(
            "select coalesce(max(gseq), 0) from events where community_id = ?", [community_id]
        )
        return int(row[0])

    def status(self, gate: GateAuth, *, now: datetime, cursor: int = 0) -> StatusResponse:
        with self._write() as db:
            db.execute(
                "update gates set last_seen_at = ? where gate_id = ?", [iso(now), gate.gate_id]
            )
        with self._read():
            g = self._rows("select * from gates where gate_id = ?", [gate.gate_id])[0]
            stream = load_stream(self.db, gate.gate_id, g["epoch"])
            c = self._community(gate.community_id)
            head = self._head(gate.community_id)
            return StatusResponse(
                server_time=iso(now),
                instance_id=c["instance_id"] or self._instance,
                community_id=gate.community_id,
                gate_id=gate.gate_id,
                gate_name=g["name"],
                epoch=g["epoch"],
                acked_through_seq=stream.through_seq if stream else 0,
                head_gseq=int(head),
                ref_version=int(c["ref_version"]),
                anomaly_seq=int(c["anomaly_seq"]),
                cursor_event_id=self._event_at(gate.community_id, cursor),
            )

    # --- events ---------------------------------------------------------------------------------

    def push(
        self, gate_id: str, batch: PushBatch, *, now: datetime, source: str = "push"
    ) -> PushResult:
        attempt = 0
        while True:
            try:
                with self._write() as db:
                    # The gate's row is locked first: its pushes take turns (PostgreSQL).
                    row = self._one(
                        f"select community_id, epoch from gates where gate_id = ?{self.for_update}",
                        [gate_id],
                    )
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
                        reserve=self.reserve_gseqs,
                    )
                    return ingest.run(batch)
            except self.retryable:
                # Another gate stored the same event id or won a lock race: start over.
                attempt += 1
                if attempt >= 8:
                    raise

    def reject_batch(
        self, gate_id: str, payload: bytes, reason: str, detail: str, *, now: datetime
    ) -> None:
        # Bounded and deduplicated: a gate sending the same bad batch again (or a flood of
        # them) costs at most MAX_REJECTED_BATCHES_PER_GATE rows of MAX_REJECTED_PAYLOAD_BYTES.
        text = (
            payload[:MAX_REJECTED_PAYLOAD_BYTES]
            .decode("utf-8", "replace")
            .replace("\x00", "\ufffd")
        )
        digest = hashlib.sha256(payload).hexdigest()
        with self._write() as db:
            row = self._one("select community_id from gates where gate_id = ?", [gate_id])
            if row is None:
                return
            if self._one(
                "select 1 from rejected where gate_id = ? and seq is null and payload_sha256 = ?",
                [gate_id, digest],
            ):
                return
            db.execute(
                "insert into rejected (community_id, gate_id, reason, detail, payload,"
                " payload_sha256, received_at, source) values (?, ?, ?, ?, ?, ?, ?, 'push')"
                " on conflict do nothing",
                [row[0], gate_id, reason, detail[:2000], text, digest, iso(now)],
            )
            db.execute(
                "delete from rejected where gate_id = ? and seq is null and id not in"
                " (select id from rejected where gate_id = ? and seq is null"
                " order by id desc limit ?)",
                [gate_id, gate_id, MAX_REJECTED_BATCHES_PER_GATE],
            )

    def _remote_events(self, sql: str, params: list[Any]) -> list[RemoteEvent]:
        # The body is stored canonical; it goes out as it is, inside the page (parsed by
        # pydantic's JSON reader: a snapshot holds tens of thousands).
        return [
            RemoteEvent.model_construct(
                gseq=r[0], gate_id=r[1], epoch=r[2], seq=r[3], body=from_json(r[4])
            )
            for r in self.db.execute(sql, params).fetchall()
        ]

    def events_page(
        self, gate: GateAuth, after: int, limit: int, *, now: datetime
    ) -> StoredEventsPage:
        with self._read():
            head = self._head(gate.community_id)
            rows = self.db.execute(
                "select gseq, gate_id, epoch, seq, body from events where community_id = ?"
                " and gseq > ? and not (gate_id = ? and orphan = 0) order by gseq limit ?",
                [gate.community_id, after, gate.gate_id, limit],
            ).fetchall()
            if len(rows) == limit:
                next_after, more = rows[-1][0], rows[-1][0] < head
            else:
                next_after, more = max(after, head), False
            at = self._event_at(gate.community_id, next_after)
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
        # One read transaction: the picture is consistent (and no writer waits for it).
        with self._read():
            c = self._community(cid)
            head = self._head(cid)
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
                "  order by okey desc) as n from events e"
                f" where community_id = ? and wall_time < ? and kind in {TRIP_KINDS_SQL}"
                " and household is not null and not exists (select 1 from events a"
                "  where a.ref = e.event_id and a.kind = 'annul')) as last_trips"
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
                cursor_event_id=self._event_at(cid, head),
                anomaly_seq=int(c["anomaly_seq"]),
                households=self._households(cid, None),
                revocations=self._revocations(cid, None),
                keys=self._keys(cid, None),
                policy=self._policy(cid, None),
                events=sorted(events, key=lambda e: e.gseq),
                anomalies=anomalies,
            )
        return snap

    def anomalies_page(
        self, community_id: int, after: int, limit: int, *, now: datetime
    ) -> AnomaliesPage:
        with self._read():
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
        with self._read():
            rows = self._rows(
                f"select * from anomalies where community_id = ?{where} order by aseq",
                [community_id],
            )
        return [_anomaly(r) for r in rows]

    def presence(self, community_id: int) -> dict[int, Presence]:
        with self._read():
            rows = self._rows("select * from presence where community_id = ?", [community_id])
        return {
            int(r["household"]): Presence(
                int(r["household"]), r["state"], r["since"], r["gate_id"], r["event_id"]
            )
            for r in rows
        }

    def event_ids(self, community_id: int) -> list[str]:
        with self._read():
            return [
                str(r[0])
                for r in self.db.execute(
                    "select event_id from events where community_id = ? order by gseq",
                    [community_id],
                ).fetchall()
            ]

    def events_in_order(
        self, community_id: int, *, household: int | None = None, limit: int | None = None
    ) -> list[dict[str, Any]]:
        """Every gate's events in the shared order (core/ordering.py), with whether each was
        annulled; the newest `limit` when given."""
        where, params = "community_id = ?", [community_id]
        if household is not None:
            where += " and household = ?"
            params.append(household)
        sql = (
            "select gseq, event_id, gate_id, epoch, seq, kind, direction, household, serial,"
            " reason, wall_time, ref, okey, orphan, exists (select 1 from events a where"
            " a.ref = e.event_id and a.kind = 'annul') as annulled"
            f" from events e where {where} order by okey desc"
        )
        if limit is not None:
            sql += f" limit {int(limit)}"
        with self._read():
            rows = self._rows(sql, params)
        rows.reverse()
        return rows

    def rejected(self, community_id: int) -> list[dict[str, Any]]:
        with self._read():
            return self._rows(
                "select id, gate_id, epoch, seq, event_id, reason, detail, received_at, source"
                " from rejected where community_id = ? order by id",
                [community_id],
            )


class SqliteStorage(SqlStorage):
    """SQLite (WAL, synchronous=FULL), the default: one writer connection behind a lock (with one
    writer, the rowid of `events` is the commit-ordered `gseq`); every thread reads on a
    connection of its own, so a snapshot or a long pull never holds the writer."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        make_private(path)
        self.path = path
        conn = self._connect()
        try:
            self.store = Store(sqlite_utils.Database(conn), path)
            self.store.migrate([schema.migrations])
        except BaseException:
            conn.close()
            raise
        self._lock = threading.RLock()
        self._readers: list[sqlite3.Connection] = []
        self._readers_lock = threading.Lock()
        self._reader = threading.local()
        super().__init__()

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=FULL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    @contextlib.contextmanager
    def _begin_write(self) -> Iterator[Tx]:
        with self._lock, self.store.write() as db:
            yield SqliteTx(db.conn)

    @contextlib.contextmanager
    def _begin_read(self) -> Iterator[Tx]:
        conn: sqlite3.Connection | None = getattr(self._reader, "conn", None)
        if conn is None:
            conn = self._connect()
            self._reader.conn = conn
            with self._readers_lock:
                self._readers.append(conn)
        conn.execute("begin")
        try:
            yield SqliteTx(conn)
        finally:
            conn.execute("rollback")

    def close(self) -> None:
        with self._lock:
            self.store.close()
        with self._readers_lock:
            for conn in self._readers:
                conn.close()
            self._readers.clear()


def _delta(community_id: int, since: int | None, *, tombstones: bool) -> tuple[str, list[Any]]:
    """The filter for reference rows: changed after `since` (deletions included), or, for a full
    copy, every row still alive (where the table keeps tombstones)."""
    if since is not None:
        return "community_id = ? and version > ?", [community_id, since]
    return "community_id = ?" + (" and deleted = 0" if tombstones else ""), [community_id]
