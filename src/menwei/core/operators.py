"""The volunteers the committee lists for the gates: names, optional PINs, and whether only
listed volunteers may sign in. Also the names that signed in lately, offered at sign-in."""

from __future__ import annotations

from dataclasses import dataclass

from menwei.core.clock import SystemClock, iso
from menwei.core.errors import MenweiError
from menwei.core.shift import hash_pin
from menwei.core.store import Store

LISTED_ONLY_KEY = "operators_listed_only"
MAX_NAME = 40


@dataclass(frozen=True)
class Operator:
    name: str
    has_pin: bool
    role: str
    created_at: str


def _clean(name: str) -> str:
    name = name.strip()
    if not name:
        raise MenweiError("A volunteer needs a name. / 请写名字。")
    if len(name) > MAX_NAME:
        raise MenweiError(f"A name has at most {MAX_NAME} characters. / 名字最多 {MAX_NAME} 个字。")
    return name


def list_operators(store: Store) -> list[Operator]:
    rows = store.query("select name, pin_hash, role, created_at from operators order by name")
    return [Operator(r["name"], bool(r["pin_hash"]), r["role"], r["created_at"]) for r in rows]


def add_operator(store: Store, name: str, pin: str | None = None) -> Operator:
    """List `name` (or change their PIN when listed already). An empty PIN removes it."""
    name = _clean(name)
    if pin is not None and pin and not (pin.isdigit() and 4 <= len(pin) <= 12):
        raise MenweiError("A PIN is 4 to 12 digits. / 密码(PIN)是4到12位数字。")
    now = iso(SystemClock().now())
    with store.write() as db:
        if pin is None:
            db.execute(
                "insert into operators(name, pin_hash, created_at) values (?, null, ?) "
                "on conflict(name) do nothing",
                [name, now],
            )
        else:
            db.execute(
                "insert into operators(name, pin_hash, created_at) values (?, ?, ?) "
                "on conflict(name) do update set pin_hash = excluded.pin_hash",
                [name, hash_pin(pin) if pin else None, now],
            )
    found = [o for o in list_operators(store) if o.name == name]
    return found[0]


def remove_operator(store: Store, name: str) -> bool:
    """Unlist `name`; their past events keep their name. False when they were not listed."""
    name = _clean(name)
    with store.write() as db:
        cursor = db.execute("delete from operators where name = ?", [name])
        return bool(cursor.rowcount)


def is_listed(store: Store, name: str) -> bool:
    return store.one("select 1 from operators where name = ?", [name.strip()]) is not None


def listed_only(store: Store) -> bool:
    """Whether only listed volunteers may sign in at this gate."""
    return store.meta(LISTED_ONLY_KEY) == "1"


def set_listed_only(store: Store, on: bool) -> None:
    store.set_meta(LISTED_ONLY_KEY, "1" if on else "0")


def recent_names(store: Store, limit: int = 8) -> list[str]:
    """Who signed in at this gate lately, the latest first (offered at sign-in, never prefilled)."""
    rows = store.query(
        "select operator, max(seq) as last from events where kind = 'shift_start' "
        "group by operator order by last desc limit ?",
        [limit],
    )
    return [r["operator"] for r in rows]
