"""Issuing passes (一户一证) and revoking them: only on the committee's machine, which holds the
private signing key. Revoking reissues with serial+1; lower serials are refused from then on.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from menwei.core import keys as keymod
from menwei.core.clock import iso
from menwei.core.community import community_info
from menwei.core.errors import MenweiError
from menwei.core.home import Home
from menwei.core.model import Household
from menwei.core.passes import PassData, sign
from menwei.core.store import Store

DEFAULT_VALIDITY = timedelta(days=180)


@dataclass(frozen=True)
class IssuedPass:
    household: Household
    serial: int
    kid: int
    valid_until: date
    code: str


def _load_households(store: Store, numbers: list[int] | None) -> list[Household]:
    from menwei.core.gate import household_from_row

    if numbers is None:
        rows = store.query("select * from households order by household")
        if not rows:
            raise MenweiError(
                "The roster is empty: run `menwei roster import FILE` first.",
                zh="花名册是空的:请先运行 menwei roster import 文件。",
                code="empty_roster",
            )
        return [household_from_row(r) for r in rows]
    found = {
        int(r["household"]): household_from_row(r)
        for r in store.query(
            f"select * from households where household in ({','.join('?' * len(numbers))})",
            numbers,
        )
    }
    missing = [n for n in numbers if n not in found]
    if missing:
        listed = ", ".join(str(n) for n in missing)
        raise MenweiError(
            f"Not in the roster: {listed}; no pass was issued.",
            zh=f"花名册里没有这些户号:{listed};没有签发通行证。",
            code="unknown_household",
        )
    return [found[n] for n in numbers]


def issue(
    home: Home,
    store: Store,
    *,
    households: list[int] | None,
    valid_until: date | None = None,
    now: datetime | None = None,
    bump: bool = False,
    kid: int = 0,
) -> list[IssuedPass]:
    """Sign passes for the given households (None: all) at their current serial.

    The current serial is the revocation floor (or 1); `bump` reissues at serial+1.
    """
    now = now or datetime.now(UTC)
    valid_until = valid_until or (now.date() + DEFAULT_VALIDITY)
    if valid_until < now.date():
        raise MenweiError(f"--valid-until {valid_until} is already past.")
    key = keymod.read_private(home.signing_key_path(kid))
    info = community_info(store)
    chosen = _load_households(store, households)
    floors = {
        int(r["household"]): int(r["min_serial"])
        for r in store.query("select household, min_serial from revocations")
    }
    issued = []
    stamp = iso(now)
    with store.write() as db:
        for h in chosen:
            serial = floors.get(h.number, 1)
            if bump:
                serial += 1
            if serial > 255:
                raise MenweiError(f"Household {h.number} has used all 255 pass serials.")
            code = sign(PassData(kid, info.community, h.number, serial, valid_until), key)
            db.execute(
                "insert into passes(household, serial, kid, valid_until, issued_at, code) "
                "values (?, ?, ?, ?, ?, ?) on conflict(household, serial) do update set "
                "kid = excluded.kid, valid_until = excluded.valid_until, "
                "issued_at = excluded.issued_at, code = excluded.code",
                [h.number, serial, kid, valid_until.isoformat(), stamp, code],
            )
            issued.append(IssuedPass(h, serial, kid, valid_until, code))
    return issued


def prepare_reissue(
    home: Home,
    store: Store,
    household: int,
    *,
    valid_until: date | None = None,
    now: datetime | None = None,
) -> IssuedPass:
    """Sign the household's next pass (serial+1) without recording anything: print it first,
    then `record_reissue`, so an unwritable output folder leaves the old pass valid."""
    now = now or datetime.now(UTC)
    valid_until = valid_until or (now.date() + DEFAULT_VALIDITY)
    if valid_until < now.date():
        raise MenweiError(
            f"--valid-until {valid_until} is already past.",
            zh=f"--valid-until {valid_until} 已经过去了。",
        )
    [h] = _load_households(store, [household])
    floor = store.one("select min_serial from revocations where household = ?", [household])
    top = store.one("select max(serial) as s from passes where household = ?", [household])
    serial = max(int(floor["min_serial"]) if floor else 1, int(top["s"] or 1) if top else 1) + 1
    if serial > 255:
        raise MenweiError(
            f"Household {household} has used all 255 pass serials.",
            zh=f"户号 {household} 的 255 个证号已用完。",
        )
    key = keymod.read_private(home.signing_key_path(0))
    info = community_info(store)
    code = sign(PassData(0, info.community, h.number, serial, valid_until), key)
    return IssuedPass(h, serial, 0, valid_until, code)


def record_reissue(
    store: Store, new: IssuedPass, *, reason: str | None, now: datetime | None = None
) -> None:
    """Record a printed reissue: the pass, and the household's older serials revoked."""
    stamp = iso(now or datetime.now(UTC))
    with store.write() as db:
        db.execute(
            "insert into passes(household, serial, kid, valid_until, issued_at, code) "
            "values (?, ?, ?, ?, ?, ?) on conflict(household, serial) do update set "
            "kid = excluded.kid, valid_until = excluded.valid_until, "
            "issued_at = excluded.issued_at, code = excluded.code",
            [
                new.household.number,
                new.serial,
                new.kid,
                new.valid_until.isoformat(),
                stamp,
                new.code,
            ],
        )
        db.execute(
            "insert into revocations(household, min_serial, reason, revoked_at) values (?, ?, ?, ?)"
            " on conflict(household) do update set min_serial = excluded.min_serial, "
            "reason = excluded.reason, revoked_at = excluded.revoked_at",
            [new.household.number, new.serial, reason, stamp],
        )


def revoke(
    home: Home,
    store: Store,
    household: int,
    *,
    reason: str | None,
    valid_until: date | None = None,
    now: datetime | None = None,
) -> IssuedPass:
    """Revoke the household's pass and issue serial+1 in one transaction."""
    new = prepare_reissue(home, store, household, valid_until=valid_until, now=now)
    record_reissue(store, new, reason=reason, now=now)
    return new
