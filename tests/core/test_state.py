"""Where each household is: the fold of every known event in time order, minus the annulled.

Events come from this gate (through the gate service) and from other gates (rows of
`remote_events`, as a pull writes them); the cached `household_state` must equal a rebuild.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from menwei.core import ordering, state
from menwei.core.model import HouseholdState
from tests.conftest import Community

_gseq = itertools.count(1)


def remote(
    c: Community,
    kind: str,
    household: int | None,
    wall_time: str,
    *,
    direction: str | None = None,
    event_id: str | None = None,
    ref: str | None = None,
    gate_id: str = "gate-9",
    headcount: int | None = 1,
    window: str | None = None,
) -> str:
    """Another gate's event, as a pull stores it."""
    n = next(_gseq)
    eid = event_id or f"r-{n:04d}"
    body = json.dumps({"window": window} if window else {})
    okey = ordering.order_key_of(dict(wall_time=wall_time, gate_id=gate_id, seq=n, event_id=eid))
    with c.store.write() as db:
        db.execute(
            "insert into remote_events (event_id, gate_id, epoch, seq, kind, direction, household,"
            " reason, headcount, wall_time, ref, body, okey)"
            " values (?, ?, 1, ?, ?, ?, ?, 'ok', ?, ?, ?, ?, ?)",
            [eid, gate_id, n, kind, direction, household, headcount, wall_time, ref, body, okey],
        )
    return eid


def rebuilt(c: Community, *households: int) -> dict[int, tuple[str, str | None, str | None]]:
    with c.store.write() as db:
        state.rebuild(db, households)
    return {h: (s.state, s.since, s.event_id) for h in households for s in [c.gate.state_of(h)]}


def test_direction_of_each_kind() -> None:
    assert state.direction_of("exit", None) == "exit"
    assert state.direction_of("exit", "entry") == "exit"
    assert state.direction_of("entry", None) == "entry"
    assert state.direction_of("register", None) == "entry"
    assert state.direction_of("override", "exit") == "exit"
    assert state.direction_of("override", "entry") == "entry"
    for kind in ("deny", "annul", "shift_start", "shift_end"):
        assert state.direction_of(kind, "exit") is None


def test_a_household_never_seen_is_in(c: Community) -> None:
    assert state.get(c.store.db, 1203) == HouseholdState(1203, "in", None, None, None)


def test_state_follows_time_order_not_arrival_order(c: Community) -> None:
    # Pulled late: an exit at 10:05 and an entry at 10:01 (another gate, clocks apart).
    late_exit = remote(c, "exit", 1203, "2026-11-24T02:05:00.000Z", direction="exit")
    remote(c, "entry", 1203, "2026-11-24T02:01:00.000Z", direction="entry")
    assert rebuilt(c, 1203) == {1203: ("out", "2026-11-24T02:05:00.000Z", late_exit)}


def test_equal_times_are_ordered_by_gate_and_sequence(c: Community) -> None:
    # The shared order breaks a tie of times by gate, then sequence (then event id): the
    # event a gate recorded later wins, whatever its id.
    t = "2026-11-24T02:05:00.000Z"
    remote(c, "entry", 1204, t, event_id="b-entry")
    remote(c, "exit", 1204, t, event_id="a-exit")
    assert rebuilt(c, 1204)[1204] == ("out", t, "a-exit")
    remote(c, "exit", 1203, t, event_id="d-exit", gate_id="gate-8")
    remote(c, "entry", 1203, t, event_id="c-entry", gate_id="gate-9")
    assert rebuilt(c, 1203)[1203] == ("in", t, "c-entry")


def test_annulled_events_do_not_count_wherever_the_annul_is(c: Community) -> None:
    first = remote(c, "exit", 1203, "2026-11-24T02:01:00.000Z", direction="exit")
    second = remote(c, "entry", 1203, "2026-11-24T02:02:00.000Z", direction="entry")
    remote(c, "annul", 1203, "2026-11-24T02:03:00.000Z", ref=second)
    assert rebuilt(c, 1203)[1203] == ("out", "2026-11-24T02:01:00.000Z", first)
    # An annul recorded at this gate hides a remote event too.
    c.gate.decide(c.codes[1204], operator="t")
    own = c.gate.annul_last(operator="t")
    assert own.household_number == 1204
    assert rebuilt(c, 1204)[1204] == ("in", None, None)
    # A deny or a shift event never moves anyone.
    remote(c, "deny", 2101, "2026-11-24T02:04:00.000Z", direction="exit")
    assert rebuilt(c, 2101)[2101] == ("in", None, None)


def test_overrides_and_registrations_move_households(c: Community) -> None:
    remote(
        c, "override", 2101, "2026-11-24T02:01:00.000Z", direction="exit", window="override:medical"
    )
    remote(c, "register", 2102, "2026-11-24T02:01:00.000Z", direction="entry")
    remote(c, "exit", 2102, "2026-11-24T01:00:00.000Z", direction="exit")
    out = rebuilt(c, 2101, 2102)
    assert out[2101][0] == "out" and out[2102][0] == "in"
    row = c.store.one("select * from household_state where household = 2101")
    assert row is not None
    assert (row["gate_id"], row["headcount"], row["window"]) == ("gate-9", 1, "override:medical")


def test_apply_keeps_every_field_of_the_moving_event(c: Community) -> None:
    event: dict[str, Any] = dict(
        kind="exit",
        direction="exit",
        wall_time="2026-11-24T02:00:00.000Z",
        gate_id="gate-3",
        event_id="e-1",
        headcount=3,
        window="09:00-10:00",
    )
    with c.store.write() as db:
        state.apply(db, 1203, event)
        state.apply(db, 1204, dict(event, kind="deny", event_id="e-2"))
    row = c.store.one("select * from household_state where household = 1203")
    assert row == dict(
        household=1203,
        state="out",
        since="2026-11-24T02:00:00.000Z",
        gate_id="gate-3",
        event_id="e-1",
        headcount=3,
        window="09:00-10:00",
        okey=None,
    )
    assert c.store.one("select * from household_state where household = 1204") is None
    assert state.get(c.store.db, 1203) == HouseholdState(
        1203, "out", "2026-11-24T02:00:00.000Z", "gate-3", "e-1", 3
    )
    with c.store.write() as db:
        state.apply(db, 1203, dict(event, kind="entry", direction="entry", event_id="e-3"))
    assert state.get(c.store.db, 1203).state == "in"


def test_the_cache_equals_a_rebuild_of_everything(c: Community) -> None:
    c.gate.decide(c.codes[1203], operator="t")
    c.gate.decide(c.codes[3301], operator="t")
    remote(c, "exit", 2101, "2026-11-24T02:30:00.000Z", direction="exit")
    remote(c, "entry", 3301, "2026-11-24T03:00:00.000Z", direction="entry")
    with c.store.write() as db:
        db.execute("delete from household_state")
        db.execute(
            "insert into household_state (household, state, since, gate_id, event_id)"
            " values (1204, 'out', 'x', 'x', 'x')"
        )
        state.rebuild_all(db)
    rows = {r["household"]: r["state"] for r in c.store.query("select * from household_state")}
    assert rows == {1203: "out", 2101: "out", 3301: "in"}


def _key(c: Community, event_id: str) -> str:
    row = c.store.one("select okey from all_events where event_id = ?", [event_id])
    assert row is not None
    return str(row["okey"])


def test_apply_moves_by_a_newer_key_and_rebuilds_for_an_older_one(c: Community) -> None:
    logged = remote(c, "exit", 1203, "2026-11-24T02:05:00.000Z", direction="exit")
    rebuilt(c, 1203)
    held = _key(c, logged)
    held_ms = ordering.hlc_of_key(held)
    assert held_ms is not None
    assert state.get(c.store.db, 1203) == HouseholdState(
        1203, "out", "2026-11-24T02:05:00.000Z", "gate-9", logged, 1, held
    )
    event: dict[str, Any] = dict(
        kind="entry", direction="entry", gate_id="gate-3", headcount=2, window=None
    )
    # A newer event (not in the log yet: apply trusts its key) moves the household at once.
    newer = ordering.order_key(held_ms + 1, "gate-3", 1, "n-1")
    with c.store.write() as db:
        state.apply(
            db, 1203, dict(event, event_id="n-1", wall_time="2026-11-24T02:06:00.000Z", okey=newer)
        )
    assert state.get(c.store.db, 1203) == HouseholdState(
        1203, "in", "2026-11-24T02:06:00.000Z", "gate-3", "n-1", 2, newer
    )
    # An older event, an equal key and an event without a key are not appended: the log
    # decides (a rebuild), and the log holds only the exit.
    older = ordering.order_key(held_ms - 1, "gate-3", 2, "o-1")
    for okey in (older, newer, None):
        with c.store.write() as db:
            state.apply(db, 1203, dict(event, event_id="o-1", wall_time="x", okey=okey))
        assert state.get(c.store.db, 1203).event_id == logged, okey
        with c.store.write() as db:  # back to the newer state for the next case
            state.apply(db, 1203, dict(event, event_id="n-1", wall_time="y", okey=newer))
        assert state.get(c.store.db, 1203).event_id == "n-1"


def test_apply_reads_an_overrides_direction(c: Community) -> None:
    with c.store.write() as db:
        state.apply(
            db,
            2101,
            dict(kind="override", direction="exit", wall_time="t", gate_id="g", event_id="o-1"),
        )
        state.apply(
            db,
            2102,
            dict(kind="override", direction=None, wall_time="t", gate_id="g", event_id="o-2"),
        )
    assert state.get(c.store.db, 2101).state == "out"
    assert c.store.one("select * from household_state where household = 2102") is None
