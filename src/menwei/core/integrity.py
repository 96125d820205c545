"""Is this database file sound? Found and said in words, never recorded over.

Three checks, from cheap to thorough:

- `classify_file()` before opening: an empty file, a file that is not SQLite, or a SQLite file of
  another program is named as such; menwei never initialises over it or adds its tables to it.
- `quick_check()` at the start of the gate app and `menwei check`: SQLite's `quick_check` and the
  hash chain of the newest events. `require_sound()` refuses to record on a damaged file.
- `full_check()` for `menwei log verify`: SQLite's `integrity_check`, the whole chain, and the
  anchor: the head of the log the community server acknowledged at the last sync, kept in a file
  beside the database (`menwei.db.anchor`). A log shorter than the anchor lost its tail (a deleted
  WAL, a restored copy); a different event at the anchored position means rewritten history.
"""

from __future__ import annotations

import json
import os
import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from menwei.core.errors import MenweiError

SQLITE_HEADER = b"SQLite format 3\x00"
MIGRATIONS_TABLE = "_sqlite_migrations"
TAIL_EVENTS = 200  # events whose chain the quick check walks

WAY_OUT = (
    "恢复最近的备份(menwei restore),或从社区服务器重新登记本门岗:服务器保存着所有已同步的记录。",
    "Restore the latest backup (menwei restore), or enrol this gate again from the community "
    "server: the server holds a copy of every event this gate pushed.",
)


class DatabaseProblem(MenweiError):
    """The home's database file cannot be trusted; the message says why and the way out."""

    code = "damaged_database"

    def __init__(self, en: str, zh: str) -> None:
        super().__init__(en)  # `message` is English, `zh` Chinese, as every MenweiError's
        self.en = en
        self.zh = zh

    def __str__(self) -> str:
        return f"{self.zh}\n{self.en}"


class DamagedDatabase(DatabaseProblem):
    code = "damaged_database"


class EmptyDatabase(DatabaseProblem):
    code = "empty_database"


class ForeignDatabase(DatabaseProblem):
    code = "foreign_database"


def damaged(path: Path | str | None, what: str, what_zh: str) -> DamagedDatabase:
    where = str(path) if path else "the database"
    return DamagedDatabase(
        f"{where} is damaged ({what}): nothing was recorded. {WAY_OUT[1]}",
        f"数据库文件 {where} 已损坏({what_zh}),本次没有记录。{WAY_OUT[0]}",
    )


def classify_file(path: Path) -> None:
    """Raise when an existing file is empty or not SQLite at all (before opening it)."""
    # Never open() the file itself: closing any descriptor of a database releases every POSIX
    # lock this process holds on it, SQLite's included (the gate app opens the store again from
    # its background threads); the header is read through SQLite in `classify_schema`.
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return
    except OSError as exc:
        raise damaged(path, f"cannot be read: {exc.strerror}", "无法读取") from None
    if not os.access(path, os.R_OK):
        raise damaged(path, "cannot be read: permission denied", "无法读取")
    if size == 0:
        raise EmptyDatabase(
            f"{path} is empty (0 bytes): the gate's records are gone from it. It is not "
            f"initialised again. {WAY_OUT[1]}",
            f"数据库文件 {path} 是空的(0 字节):门岗记录已不在其中。不会重新初始化。{WAY_OUT[0]}",
        )


def classify_schema(conn: sqlite3.Connection, path: Path | None) -> None:
    """Raise when an open SQLite database has no tables at all, or another program's."""
    try:
        names = [r[0] for r in conn.execute("select name from sqlite_master where type = 'table'")]
    except sqlite3.DatabaseError as exc:
        if "not a database" in str(exc):
            raise damaged(path, "it is not a SQLite database", "不是 SQLite 数据库") from None
        raise damaged(path, str(exc), "无法读取表结构") from None
    if MIGRATIONS_TABLE in names:
        return
    if not names:
        raise EmptyDatabase(
            f"{path} holds no tables: it is an empty database, not this gate's. It is not "
            f"initialised over. {WAY_OUT[1]}",
            f"数据库文件 {path} 没有任何表:是一个空数据库,不是本门岗的。不会在其上初始化。"
            f"{WAY_OUT[0]}",
        )
    shown = ", ".join(sorted(names)[:5])
    raise ForeignDatabase(
        f"{path} is another program's SQLite database (tables: {shown}); menwei does not "
        "touch it. Point MENWEI_HOME at the gate's home.",
        f"数据库文件 {path} 属于别的程序(表:{shown}),门卫不会改动它。请把 MENWEI_HOME 指向门岗的目录。",
    )


# --- checks -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Anchor:
    """The head of this gate's log the community server acknowledged at a sync."""

    seq: int
    hash: str
    epoch: int
    gate_id: str
    acknowledged_at: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IntegrityReport:
    """What `log verify` found: SQLite's own check, the chain, and the anchor."""

    ok: bool
    sqlite: list[str] = field(default_factory=list)  # empty when SQLite says ok
    chain_ok: bool = True
    count: int = 0
    head_seq: int = 0
    first_break: int | None = None
    chain_problem: str | None = None
    anchor: Anchor | None = None
    missing_tail: tuple[int, int] | None = None  # seqs the server acknowledged that are gone
    rewritten_at: int | None = None

    def problems(self) -> list[tuple[str, str]]:
        """Each problem in (English, Chinese)."""
        found: list[tuple[str, str]] = []
        if self.sqlite:
            en, zh = summary(self.sqlite)
            found.append((f"SQLite finds the file damaged: {en}", f"SQLite 检查发现文件损坏:{zh}"))
        if not self.chain_ok:
            found.append(
                (
                    f"the log's chain breaks at event {self.first_break}: {self.chain_problem}",
                    f"日志链在第 {self.first_break} 条断开(记录缺失或被改动)",
                )
            )
        if self.missing_tail is not None:
            a, b = self.missing_tail
            found.append(
                (
                    f"events {a}-{b} are missing: the server acknowledged them at the sync of "
                    f"{self.anchor.acknowledged_at if self.anchor else '?'} and this file no "
                    "longer holds them (lost tail)",
                    f"第 {a}-{b} 条记录丢失:服务器在同步时已确认收到,但本文件里已经没有(尾部丢失)",
                )
            )
        if self.rewritten_at is not None:
            found.append(
                (
                    f"event {self.rewritten_at} differs from the one the server acknowledged: "
                    "the log's history was rewritten",
                    f"第 {self.rewritten_at} 条与服务器确认的不同:日志历史被改写",
                )
            )
        return found

    def as_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["problems"] = [{"en": en, "zh": zh} for en, zh in self.problems()]
        return d


def anchor_path(db_path: Path) -> Path:
    return db_path.with_name(db_path.name + ".anchor")


def read_anchor(db_path: Path | None) -> Anchor | None:
    if db_path is None:
        return None
    try:
        data = json.loads(anchor_path(db_path).read_text())
        return Anchor(
            int(data["seq"]),
            str(data["hash"]),
            int(data["epoch"]),
            str(data["gate_id"]),
            str(data["acknowledged_at"]),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_anchor(db_path: Path, anchor: Anchor) -> None:
    """Write the anchor durably and atomically (a crash leaves the old one or the new one)."""
    path = anchor_path(db_path)
    tmp = path.with_name(path.name + ".tmp")
    with tmp.open("w") as fh:
        json.dump(anchor.as_dict(), fh)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
    try:
        fd = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def summary(found: list[str], keep: int = 2) -> tuple[str, str]:
    """SQLite's findings in a few words (English: the first lines and how many more; Chinese:
    how many)."""
    lines = [
        ln.strip()
        for row in found
        for ln in row.splitlines()
        if ln.strip() and not ln.startswith("*** in database")
    ]
    head = "; ".join(lines[:keep])
    more = len(lines) - keep
    zh = f"{len(lines)} 处问题"  # SQLite's own words are English: only counted in the Chinese
    return (head if more <= 0 else f"{head} (and {more} more)"), zh


def _sqlite_check(conn: sqlite3.Connection, pragma: str) -> list[str]:
    try:
        rows = [str(r[0]) for r in conn.execute(f"PRAGMA {pragma}").fetchall()]
    except sqlite3.DatabaseError as exc:
        return [str(exc)]
    return [] if rows == ["ok"] else rows


def _chain(conn: sqlite3.Connection, after_seq: int) -> tuple[int, int, int | None, str | None]:
    """Walk the chain from `after_seq`: (count, head seq, first break, problem)."""
    from menwei.core.eventlog import GENESIS, canonical, chain_hash, event_from_row

    conn_rows = conn.execute(
        "select * from events where seq >= ? order by seq", [max(after_seq, 1)]
    )
    names = [d[0] for d in conn_rows.description]
    prev: str | None = None
    if after_seq <= 1:
        prev = GENESIS
    expected = max(after_seq, 1)
    count = 0
    for values in conn_rows:
        row = dict(zip(names, values, strict=True))
        seq = int(row["seq"])
        count += 1
        if seq != expected:
            return count, seq, expected, f"event {expected} is missing"
        body = canonical(event_from_row(row).body_dict())
        if body != row["body"]:
            return count, seq, seq, f"event {seq} was altered"
        if prev is not None and row["prev_hash"] != prev:
            return count, seq, seq, f"event {seq} does not follow event {seq - 1}"
        if chain_hash(str(row["prev_hash"]), body) != row["hash"]:
            return count, seq, seq, f"event {seq} has a wrong hash"
        prev = str(row["hash"])
        expected += 1
    return count, expected - 1, None, None


# Up to this size the start-up check runs SQLite's whole `quick_check` (a 64 MB file takes well
# under a second); a bigger log would hold the gate up for minutes (16 s for 0.6 GB measured on a
# loaded 2-core machine), so there the tables a decision reads are walked in full and the log's
# newest events checked, and the whole file is left to `menwei log verify` (the nightly cron).
QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024
_DECISION_TABLES = (
    "meta",
    "keys",
    "households",
    "revocations",
    "policy_versions",
    "household_state",
    "sync_state",
    "operators",
)


def _walk_tables(conn: sqlite3.Connection) -> list[str]:
    found: list[str] = []
    for table in _DECISION_TABLES:
        try:
            conn.execute(
                f"select count(*), max(rowid) from (select rowid, * from {table})"
            ).fetchone()
        except sqlite3.OperationalError as exc:
            if "no such table" not in str(exc):
                found.append(f"{table}: {exc}")
        except sqlite3.DatabaseError as exc:
            found.append(f"{table}: {exc}")
    return found


def quick_check(conn: sqlite3.Connection, path: Path | None = None) -> list[tuple[str, str]]:
    """SQLite's quick check (or, for a large file, a walk of the tables a decision reads) and
    the chain of the newest events: the problems, as (English, Chinese)."""
    size = path.stat().st_size if path is not None and path.exists() else 0
    found = (
        _sqlite_check(conn, "quick_check") if size <= QUICK_CHECK_MAX_BYTES else _walk_tables(conn)
    )
    if found:
        en, zh = summary(found)
        return [(f"SQLite finds the file damaged: {en}", f"SQLite 检查发现文件损坏:{zh}")]
    try:
        head = conn.execute("select coalesce(max(seq), 0) from events").fetchone()[0]
        _, _, brk, problem = _chain(conn, int(head) - TAIL_EVENTS + 1)
    except sqlite3.DatabaseError as exc:
        return [(f"reading the log failed: {exc}", "读取日志失败")]
    if brk is not None:
        return [
            (
                f"the log's chain breaks at event {brk}: {problem}",
                f"日志链在第 {brk} 条断开(记录缺失或被改动)",
            )
        ]
    return []


def require_sound(conn: sqlite3.Connection, path: Path | None) -> None:
    """Refuse to go on with a damaged file (raise `DamagedDatabase` with the way out)."""
    found = quick_check(conn, path)
    if found:
        en = "; ".join(p[0] for p in found)
        zh = ";".join(p[1] for p in found)
        raise damaged(path, en, zh)


def full_check(conn: sqlite3.Connection, path: Path | None) -> IntegrityReport:
    """Everything `log verify` says: SQLite's integrity check, the whole chain, the anchor."""
    sqlite_found = _sqlite_check(conn, "integrity_check")
    try:
        count, head, brk, problem = _chain(conn, 1)
    except sqlite3.DatabaseError as exc:
        count, head, brk, problem = 0, 0, 0, f"the log cannot be read: {exc}"
    anchor = read_anchor(path)
    missing = rewritten = None
    if anchor is not None and anchor.seq > 0:
        try:
            row = conn.execute("select hash from events where seq = ?", [anchor.seq]).fetchone()
            top = int(conn.execute("select coalesce(max(seq), 0) from events").fetchone()[0])
        except sqlite3.DatabaseError:
            row, top = None, 0
        if row is None and top < anchor.seq:
            missing = (top + 1, anchor.seq)
        elif row is not None and row[0] != anchor.hash:
            rewritten = anchor.seq
    ok = not sqlite_found and brk is None and missing is None and rewritten is None
    return IntegrityReport(
        ok=ok,
        sqlite=sqlite_found,
        chain_ok=brk is None,
        count=count,
        head_seq=head,
        first_break=brk,
        chain_problem=problem,
        anchor=anchor,
        missing_tail=missing,
        rewritten_at=rewritten,
    )


def verify_file(path: Path) -> IntegrityReport:
    """`log verify` on a home's database: classified first, only read."""
    if not path.exists():
        from menwei.core.errors import NotInitialised

        raise NotInitialised(
            f"No menwei database at {path}. Run `menwei init --community ID --name NAME` "
            "first (or set MENWEI_HOME to the right home)."
        )
    classify_file(path)
    try:
        # Read-write mode only so that SQLite can rebuild a lost `-shm` file; nothing is written.
        conn = sqlite3.connect(path, timeout=10)
    except sqlite3.DatabaseError as exc:
        raise damaged(path, str(exc), "无法打开") from None
    try:
        classify_schema(conn, path)
        return full_check(conn, path)
    finally:
        conn.close()
