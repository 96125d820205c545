"""Moving a server's data to PostgreSQL, and checking a server's database.

`migrate(source, target)` copies everything a SQLite server holds into a PostgreSQL one (a
community that started on a laptop joins the district server). It is idempotent and resumable:
rows are copied by primary key with `ON CONFLICT DO NOTHING`, events in chunks of one
transaction each, so a run that was cut off is simply run again. Each event keeps its `gseq`
(per community, the same order), so the gates' pull cursors stay valid. At the end it verifies
the row counts of every table per community and every gate's chain (each event's hash over its
body and link, and the whole run of (seq, hash) of every stream, against the source).

`doctor(storage)` checks a server's database: reachable, schema up to date, the settings that
matter, and that the data keeps the storage rules (gseq order, streams, chains).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from menwei.core.eventlog import chain_hash
from menwei.sync.server.sqlite import SqliteStorage, SqlStorage

# Table, its key columns (for idempotent copies), the columns copied. Order: references first.
_TABLES: list[tuple[str, str]] = [
    ("communities", "community_id"),
    ("gates", "gate_id"),
    ("streams", "gate_id, epoch"),
    ("aliases", "gate_id, epoch, seq"),
    ("presence", "community_id, household"),
    ("anomalies", "anomaly_id"),
    ("ref_households", "community_id, household"),
    ("ref_revocations", "community_id, household"),
    ("revocation_history", "community_id, household, min_serial"),
    ("ref_keys", "community_id, kid"),
    ("ref_policies", "community_id, home_version"),
    ("committee_tokens", "token_hash"),
]
_EVENT_COLUMNS = (
    "gseq, community_id, event_id, gate_id, epoch, seq, kind, direction, household, serial,"
    " reason, wall_time, ref, overdue, clock_offset_ms, body, prev_hash, hash, received_at,"
    " source, orphan, okey"
)
_REJECTED_COLUMNS = (
    "community_id, gate_id, epoch, seq, event_id, hash, reason, detail, payload,"
    " payload_sha256, received_at, source"
)
CHUNK = 5000


@dataclass
class Check:
    name: str
    ok: bool
    detail: str

    def as_dict(self) -> dict[str, object]:
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass
class MigrationReport:
    communities: list[int] = field(default_factory=list)
    copied: dict[str, int] = field(default_factory=dict)  # rows new in the target, per table
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    def as_dict(self) -> dict[str, object]:
        return {
            "ok": self.ok,
            "communities": self.communities,
            "copied": self.copied,
            "checks": [c.as_dict() for c in self.checks],
        }


def _columns(source: SqlStorage, table: str) -> list[str]:
    with source._read() as db:
        cur = db.execute(f"select * from {table} limit 0")
        return [d[0] for d in cur.description]  # type: ignore[attr-defined]


def _where_community(table: str) -> str:
    if table in ("streams", "aliases"):
        return "gate_id in (select gate_id from gates where community_id = ?)"
    return "community_id = ?"


def migrate(
    source: SqliteStorage,
    target: SqlStorage,
    *,
    communities: list[int] | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> MigrationReport:
    """Copy the source server's communities into the target; verify; a report."""
    report = MigrationReport()
    with source._read() as db:
        everyone = [
            int(r[0]) for r in db.execute("select community_id from communities").fetchall()
        ]
    chosen = [c for c in everyone if communities is None or c in communities]
    report.communities = chosen
    for cid in chosen:
        for table, key in _TABLES:
            columns = _columns(source, table)
            with source._read() as db:
                rows = [
                    tuple(r)
                    for r in db.execute(
                        f"select {', '.join(columns)} from {table} where {_where_community(table)}",
                        [cid],
                    ).fetchall()
                ]
            marks = ", ".join("?" for _ in columns)
            with target._write() as tx:
                before = _count(tx, table, cid)
                tx.executemany(
                    f"insert into {table} ({', '.join(columns)}) values ({marks})"
                    f" on conflict ({key}) do nothing",
                    rows,
                )
                report.copied[table] = report.copied.get(table, 0) + _count(tx, table, cid) - before
            progress(f"community {cid}: {table} {len(rows)}")
        # Events in chunks, by gseq: each chunk one transaction; a re-run skips what is there.
        after, copied = 0, 0
        while True:
            with source._read() as db:
                rows = [
                    tuple(r)
                    for r in db.execute(
                        f"select {_EVENT_COLUMNS} from events where community_id = ? and gseq > ?"
                        " order by gseq limit ?",
                        [cid, after, CHUNK],
                    ).fetchall()
                ]
            if not rows:
                break
            marks = ", ".join("?" for _ in _EVENT_COLUMNS.split(","))
            with target._write() as tx:
                before = _count(tx, "events", cid)
                tx.executemany(
                    f"insert into events ({_EVENT_COLUMNS}) values ({marks}) on conflict do nothing",
                    rows,
                )
                copied += _count(tx, "events", cid) - before
            after = int(rows[-1][0])
            progress(f"community {cid}: events through gseq {after}")
        report.copied["events"] = report.copied.get("events", 0) + copied
        # Rejected batches have no natural key: copy those the target does not hold yet.
        with source._read() as db:
            rows = [
                tuple(r)
                for r in db.execute(
                    f"select {_REJECTED_COLUMNS} from rejected where community_id = ? order by id",
                    [cid],
                ).fetchall()
            ]
        with target._write() as tx:
            held = {
                (r[0], r[1], r[2], r[3])
                for r in tx.execute(
                    "select gate_id, payload_sha256, received_at, reason from rejected"
                    " where community_id = ?",
                    [cid],
                ).fetchall()
            }
            new = [r for r in rows if (r[1], r[9], r[10], r[6]) not in held]
            marks = ", ".join("?" for _ in _REJECTED_COLUMNS.split(","))
            if new:
                tx.executemany(
                    f"insert into rejected ({_REJECTED_COLUMNS}) values ({marks})"
                    " on conflict do nothing",
                    new,
                )
            report.copied["rejected"] = report.copied.get("rejected", 0) + len(new)
            # The community's next gseq continues after the copied ones.
            if target.dialect == "postgresql":
                tx.execute(
                    "update communities set event_seq = greatest(event_seq, (select"
                    " coalesce(max(gseq), 0) from events where community_id = ?))"
                    " where community_id = ?",
                    [cid, cid],
                )
        report.checks += verify(source, target, cid)
    return report


def _count(db: Any, table: str, cid: int) -> int:
    return int(
        db.execute(
            f"select count(*) from {table} where {_where_community(table)}", [cid]
        ).fetchone()[0]
    )


def stream_digests(storage: SqlStorage, cid: int) -> dict[tuple[str, int], tuple[int, str]]:
    """Per (gate, epoch): how many events, and a digest of its run of (seq, hash)."""
    out: dict[tuple[str, int], Any] = {}
    with storage._read() as db:
        for gate, epoch, seq, h in db.execute(
            "select gate_id, epoch, seq, hash from events where community_id = ?"
            " order by gate_id, epoch, seq",
            [cid],
        ).fetchall():
            key = (str(gate), int(epoch))
            if key not in out:
                out[key] = [0, hashlib.sha256()]
            out[key][0] += 1
            out[key][1].update(f"{seq}:{h}\n".encode())
    return {k: (n, d.hexdigest()) for k, (n, d) in out.items()}


def chain_problems(storage: SqlStorage, cid: int) -> list[str]:
    """Events whose body does not hash to their hash, or whose link does not match the event
    before them in the same stream."""
    problems: list[str] = []
    last: dict[tuple[str, int], tuple[int, str]] = {}
    with storage._read() as db:
        for gate, epoch, seq, body, prev, h in db.execute(
            "select gate_id, epoch, seq, body, prev_hash, hash from events where community_id = ?"
            " order by gate_id, epoch, seq",
            [cid],
        ).fetchall():
            if chain_hash(prev, body) != h:
                problems.append(f"{gate} epoch {epoch} event {seq}: body does not match its hash")
            before = last.get((gate, epoch))
            if before is not None and before[0] == seq - 1 and before[1] != prev:
                problems.append(f"{gate} epoch {epoch} event {seq}: does not follow {seq - 1}")
            last[(gate, epoch)] = (seq, h)
    return problems


def verify(source: SqlStorage, target: SqlStorage, cid: int) -> list[Check]:
    checks: list[Check] = []
    for table in [t for t, _ in _TABLES] + ["events", "rejected"]:
        with source._read() as a:
            n = _count(a, table, cid)
        with target._read() as b:
            m = _count(b, table, cid)
        checks.append(Check(f"community {cid}: {table} rows", n == m, f"source {n}, target {m}"))
    a_streams, b_streams = stream_digests(source, cid), stream_digests(target, cid)
    differ = sorted(k for k in a_streams if a_streams[k] != b_streams.get(k))
    checks.append(
        Check(
            f"community {cid}: every gate's chain",
            not differ,
            f"{len(a_streams)} streams identical"
            if not differ
            else "differ: " + ", ".join(f"{g} epoch {e}" for g, e in differ[:10]),
        )
    )
    before, after = chain_problems(source, cid), chain_problems(target, cid)
    checks.append(
        Check(
            f"community {cid}: hashes and links",
            before == after,
            f"{len(after)} broken links (source: {len(before)})"
            + (f"; first: {after[0]}" if after else ""),
        )
    )
    return checks


def doctor(storage: SqlStorage) -> list[Check]:
    """Checks of a server's database; each with what it found."""
    checks: list[Check] = []
    with storage._read() as db:
        if storage.dialect == "sqlite":
            result = db.execute("pragma integrity_check").fetchone()[0]
            checks.append(Check("sqlite integrity", result == "ok", str(result)))
            mode = db.execute("pragma journal_mode").fetchone()[0]
            checks.append(Check("sqlite journal", mode == "wal", f"journal_mode={mode}"))
        else:
            version = db.execute("show server_version").fetchone()[0]
            checks.append(Check("postgresql", True, f"server {version}"))
            for name, wanted in (("fsync", "on"), ("synchronous_commit", "on")):
                value = db.execute(f"show {name}").fetchone()[0]
                checks.append(
                    Check(
                        f"postgresql {name}",
                        value == wanted,
                        f"{name}={value}"
                        + (
                            ""
                            if value == wanted
                            else f" (an acknowledged push may be lost: {wanted})"
                        ),
                    )
                )
            conns = db.execute("show max_connections").fetchone()[0]
            checks.append(Check("postgresql max_connections", True, str(conns)))
        communities = [
            (int(r[0]), str(r[1]))
            for r in db.execute("select community_id, name from communities").fetchall()
        ]
        checks.append(Check("communities", bool(communities), f"{len(communities)} held"))
        for cid, name in communities:
            dup = db.execute(
                "select count(*) - count(distinct gseq) from events where community_id = ?", [cid]
            ).fetchone()[0]
            checks.append(
                Check(f"community {cid} ({name}): gseq unique", dup == 0, f"{dup} repeated")
            )
            if storage.dialect == "postgresql":
                top, seq = db.execute(
                    "select coalesce(max(gseq), 0), (select event_seq from communities"
                    " where community_id = ?) from events where community_id = ?",
                    [cid, cid],
                ).fetchone()
                checks.append(
                    Check(
                        f"community {cid}: gseq counter",
                        int(seq) >= int(top),
                        f"counter {seq}, highest gseq {top}",
                    )
                )
            ahead = db.execute(
                "select count(*) from streams s join gates g using (gate_id)"
                " where g.community_id = ? and s.through_seq < (select coalesce(max(seq), 0)"
                " from events e where e.gate_id = s.gate_id and e.epoch = s.epoch)",
                [cid],
            ).fetchone()[0]
            checks.append(
                Check(
                    f"community {cid}: streams cover their events",
                    ahead == 0,
                    f"{ahead} streams hold events past their high-water mark",
                )
            )
    for cid, _ in communities:
        broken = [p for p in chain_problems(storage, cid) if "body does not match" in p]
        checks.append(
            Check(
                f"community {cid}: event hashes",
                not broken,
                "every stored body matches its hash" if not broken else broken[0],
            )
        )
    return checks
