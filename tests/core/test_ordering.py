"""The shared order (core/ordering.py), as pure functions: exact values and their edges.

Gates and the server place every event by these functions; a wrong digit here is a household
said to be out when it is in, on one side and not the other. Each test pins exact values.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from menwei.core import ordering

# 2026-11-24 02:00:00.123 UTC (10:00 in Shanghai), in milliseconds since 1970.
AT = datetime(2026, 11, 24, 2, 0, 0, 123_456, tzinfo=UTC)
AT_MS = 1_795_485_600_123


# --- wall time and its correction -------------------------------------------------------------


def test_wall_ms_counts_days_seconds_and_whole_milliseconds() -> None:
    assert ordering.wall_ms(AT) == AT_MS
    assert type(ordering.wall_ms(AT)) is int
    # The same instant as the log writes it, and in another time zone.
    assert ordering.wall_ms("2026-11-24T02:00:00.123Z") == AT_MS
    assert ordering.wall_ms("2026-11-24T10:00:00.123456+08:00") == AT_MS
    assert ordering.wall_ms(AT.astimezone(timezone(timedelta(hours=8)))) == AT_MS
    # Each part on its own: days, seconds within a day, microseconds cut (never rounded).
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert ordering.wall_ms(epoch) == 0
    assert ordering.wall_ms(epoch + timedelta(days=1)) == 86_400_000
    assert ordering.wall_ms(epoch + timedelta(seconds=1)) == 1000
    assert ordering.wall_ms(epoch + timedelta(microseconds=999)) == 0
    assert ordering.wall_ms(epoch + timedelta(microseconds=1999)) == 1
    assert ordering.wall_ms(epoch + timedelta(days=2, seconds=3, microseconds=4_999)) == (
        2 * 86_400_000 + 3000 + 4
    )
    # Before 1970 (days negative, seconds positive): still exact.
    assert ordering.wall_ms(epoch - timedelta(milliseconds=1)) == -1
    assert ordering.wall_ms(epoch - timedelta(days=1, seconds=-1)) == -86_399_000


def test_corrected_ms_adds_the_measured_offset_and_never_goes_below_zero() -> None:
    assert ordering.corrected_ms(AT, None) == AT_MS
    assert ordering.corrected_ms(AT, 0) == AT_MS
    assert ordering.corrected_ms(AT, 90_000) == AT_MS + 90_000
    assert ordering.corrected_ms(AT, -90_000) == AT_MS - 90_000
    assert ordering.corrected_ms("2026-11-24T02:00:00.123Z", -1) == AT_MS - 1
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    assert ordering.corrected_ms(epoch, None) == 0
    assert ordering.corrected_ms(epoch, 0) == 0
    assert ordering.corrected_ms(epoch, 1) == 1
    assert ordering.corrected_ms(epoch, -1) == 0
    assert ordering.corrected_ms(epoch + timedelta(seconds=1), -999) == 1
    assert ordering.corrected_ms(epoch + timedelta(seconds=1), -1000) == 0
    assert ordering.corrected_ms(epoch + timedelta(seconds=1), -1001) == 0


# --- the hybrid logical clock of a new event ---------------------------------------------------


def test_next_hlc_without_floors_is_the_corrected_wall_time() -> None:
    assert ordering.next_hlc(AT, None, gate_last=None, household_last=None) == AT_MS
    assert ordering.next_hlc(AT, 500, gate_last=None, household_last=None) == AT_MS + 500
    assert ordering.next_hlc(AT, -500, gate_last=None, household_last=None) == AT_MS - 500


def test_next_hlc_stays_after_the_gates_last_event() -> None:
    def hlc(gate_last: int) -> int:
        return ordering.next_hlc(AT, None, gate_last=gate_last, household_last=None)

    assert hlc(AT_MS - 2) == AT_MS
    assert hlc(AT_MS - 1) == AT_MS  # one past the floor is the wall time itself
    assert hlc(AT_MS) == AT_MS + 1
    assert hlc(AT_MS + 5_000) == AT_MS + 5_001  # a clock set back: still after
    assert hlc(0) == AT_MS
    assert ordering.next_hlc(AT, -AT_MS, gate_last=0, household_last=None) == 1


def test_next_hlc_stays_after_the_households_last_event() -> None:
    def hlc(household_last: int) -> int:
        return ordering.next_hlc(AT, None, gate_last=None, household_last=household_last)

    assert hlc(AT_MS - 2) == AT_MS
    assert hlc(AT_MS - 1) == AT_MS
    assert hlc(AT_MS) == AT_MS + 1
    assert hlc(AT_MS + 7_000) == AT_MS + 7_001  # a pulled exit stamped by a fast clock
    assert ordering.next_hlc(AT, -AT_MS, gate_last=None, household_last=0) == 1


def test_next_hlc_takes_the_highest_of_both_floors() -> None:
    both = ordering.next_hlc
    assert both(AT, None, gate_last=AT_MS + 10, household_last=AT_MS + 20) == AT_MS + 21
    assert both(AT, None, gate_last=AT_MS + 20, household_last=AT_MS + 10) == AT_MS + 21
    assert both(AT, None, gate_last=AT_MS - 10, household_last=AT_MS - 20) == AT_MS
    assert both(AT, None, gate_last=AT_MS + 3, household_last=AT_MS + 3) == AT_MS + 4
    assert both(AT, 100, gate_last=AT_MS + 50, household_last=AT_MS + 99) == AT_MS + 100
    assert both(AT, 100, gate_last=AT_MS + 50, household_last=AT_MS + 100) == AT_MS + 101


# --- the logical time of a stored event ----------------------------------------------------------


def _body() -> dict[str, Any]:
    return dict(wall_time="2026-11-24T02:00:00.123Z", gate_id="gate-1", seq=7, event_id="e-7")


def test_hlc_of_reads_hlc_ms_when_it_is_a_non_negative_int() -> None:
    body = _body()
    assert ordering.hlc_of(dict(body, hlc_ms=AT_MS + 42)) == AT_MS + 42
    assert ordering.hlc_of(dict(body, hlc_ms=1)) == 1
    assert ordering.hlc_of(dict(body, hlc_ms=0)) == 0  # zero is a time, not an absence
    # The offset is the gate's business once hlc_ms is written: not added twice.
    assert ordering.hlc_of(dict(body, hlc_ms=5, clock_offset_ms=1000)) == 5


@pytest.mark.parametrize(
    "hlc_ms",
    [-1, -AT_MS, None, True, False, 5.0, "5", str(AT_MS + 9)],
    ids=["minus-one", "very-negative", "null", "true", "false", "float", "text", "numeric-text"],
)
def test_hlc_of_falls_back_to_the_corrected_wall_time(hlc_ms: object) -> None:
    body = dict(_body(), hlc_ms=hlc_ms)
    assert ordering.hlc_of(body) == AT_MS
    assert ordering.hlc_of(dict(body, clock_offset_ms=-3000)) == AT_MS - 3000


def test_hlc_of_an_older_event_without_hlc_ms() -> None:
    body = _body()
    assert ordering.hlc_of(body) == AT_MS
    assert ordering.hlc_of(dict(body, clock_offset_ms=None)) == AT_MS
    assert ordering.hlc_of(dict(body, clock_offset_ms=0)) == AT_MS
    assert ordering.hlc_of(dict(body, clock_offset_ms=90_000)) == AT_MS + 90_000
    assert ordering.hlc_of(dict(body, clock_offset_ms=-90_000)) == AT_MS - 90_000
    assert ordering.hlc_of(dict(body, clock_offset_ms=-AT_MS - 1)) == 0
    # An offset that is not an int (a float, text, a bool) is no measured offset at all.
    for odd in (1.5, 90_000.0, "90000", True, [1]):
        assert ordering.hlc_of(dict(body, clock_offset_ms=odd)) == AT_MS, odd


def test_hlc_of_needs_a_wall_time_when_hlc_ms_is_unusable() -> None:
    with pytest.raises(KeyError):
        ordering.hlc_of({"hlc_ms": -1})
    assert ordering.hlc_of({"hlc_ms": 3}) == 3  # no wall time needed


# --- order keys ---------------------------------------------------------------------------------


def test_order_key_is_zero_padded_and_separated_by_bars() -> None:
    assert ordering.order_key(5, "gate-1", 7, "e-7") == "000000000000005|gate-1|000000000007|e-7"
    assert ordering.order_key(0, "g", 0, "") == "000000000000000|g|000000000000|"
    assert ordering.order_key(AT_MS, "gate-12", 123_456_789_012, "x|y") == (
        "001795485600123|gate-12|123456789012|x|y"
    )
    assert len(ordering.order_key(AT_MS, "g", 1, "e").split("|")[0]) == 15
    assert len(ordering.order_key(AT_MS, "g", 1, "e").split("|")[2]) == 12


def test_order_key_of_a_body() -> None:
    body = dict(_body(), hlc_ms=AT_MS + 1)
    assert ordering.order_key_of(body) == "001795485600124|gate-1|000000000007|e-7"
    assert ordering.order_key_of(_body()) == "001795485600123|gate-1|000000000007|e-7"
    text = dict(_body(), seq="7", gate_id=3, event_id=9)  # fields coerced as the wire has them
    assert ordering.order_key_of(text) == "001795485600123|3|000000000007|9"


def test_keys_sort_by_time_then_gate_then_sequence_then_event_id() -> None:
    k = ordering.order_key
    chain = [
        k(99, "gate-9", 999, "z"),
        k(100, "gate-1", 1, "a"),
        k(100, "gate-1", 1, "b"),  # same gate and sequence: the event id decides
        k(100, "gate-1", 2, "a"),  # a later sequence of the same gate
        k(100, "gate-1", 10, "a"),  # 10 after 2: padded, not compared as text
        k(100, "gate-2", 1, "a"),  # another gate at the same time
        k(101, "gate-1", 0, "a"),
        k(1000, "gate-0", 0, "a"),  # 1000 after 101: padded
        k(AT_MS, "a", 0, "a"),
    ]
    shuffled = chain[:]
    random.Random(16).shuffle(shuffled)
    assert sorted(shuffled) == chain
    # Time decides before the gate: the earlier time sorts first whatever its gate.
    assert k(5, "gate-9", 1, "e") < k(6, "gate-1", 1, "e")


def test_hlc_of_key_reads_the_front_of_a_key() -> None:
    assert ordering.hlc_of_key(None) is None
    assert ordering.hlc_of_key("") is None
    assert ordering.hlc_of_key("000000000000005|gate-1|000000000007|e-7") == 5
    assert ordering.hlc_of_key(ordering.order_key(AT_MS, "g", 1, "a|b")) == AT_MS
    assert ordering.hlc_of_key("000000000000000|g|000000000000|e") == 0
    assert ordering.hlc_of_key(ordering.key_floor(42)) == 42


def test_key_floor_is_the_smallest_key_at_a_time() -> None:
    assert ordering.key_floor(0) == "000000000000000"
    assert ordering.key_floor(AT_MS) == "001795485600123"
    floor = ordering.key_floor(AT_MS)
    assert ordering.order_key(AT_MS - 1, "zzz", 999_999, "zzz") < floor
    assert floor < ordering.order_key(AT_MS, "", 0, "")
    assert ordering.order_key(AT_MS, "gate-1", 1, "a") < ordering.key_floor(AT_MS + 1)


def test_time_of_ms_is_an_aware_utc_time() -> None:
    at = ordering.time_of_ms(AT_MS)
    assert at == datetime(2026, 11, 24, 2, 0, 0, 123_000, tzinfo=UTC)
    assert at.tzinfo is UTC
    assert ordering.time_of_ms(0) == datetime(1970, 1, 1, tzinfo=UTC)
    assert ordering.time_of_ms(1) == datetime(1970, 1, 1, 0, 0, 0, 1000, tzinfo=UTC)
    assert ordering.wall_ms(ordering.time_of_ms(AT_MS + 777)) == AT_MS + 777


# --- where a household is -------------------------------------------------------------------------


def test_way_of_every_kind() -> None:
    assert ordering.way_of("exit", None) == "exit"
    assert ordering.way_of("exit", "entry") == "exit"  # the kind decides, not the field
    assert ordering.way_of("entry", None) == "entry"
    assert ordering.way_of("entry", "exit") == "entry"
    assert ordering.way_of("register", None) == "entry"
    assert ordering.way_of("register", "exit") == "entry"
    assert ordering.way_of("override", "exit") == "exit"
    assert ordering.way_of("override", "entry") == "entry"
    assert ordering.way_of("override", None) is None
    for kind in ("deny", "annul", "shift_start", "shift_end", "clock_jump", "", "EXIT", "Entry"):
        for direction in ("exit", "entry", None):
            assert ordering.way_of(kind, direction) is None, (kind, direction)


def _trip(okey: str, kind: str, direction: str | None = None, **more: Any) -> dict[str, Any]:
    return dict(okey=okey, kind=kind, direction=direction, **more)


def test_settle_of_nothing_is_none() -> None:
    assert ordering.settle([]) is None
    assert ordering.settle(iter([])) is None
    assert ordering.settle([_trip("1", "deny", "exit"), _trip("2", "annul")]) is None
    assert ordering.settle([_trip("1", "override", None)]) is None


def test_settle_picks_the_last_moving_event_in_key_order_whatever_the_input_order() -> None:
    k = ordering.order_key
    trips = [
        _trip(k(100, "gate-1", 1, "a"), "exit", "exit", name="first exit"),
        _trip(k(200, "gate-2", 1, "a"), "entry", "entry", name="entry"),
        _trip(k(200, "gate-2", 2, "a"), "exit", "exit", name="second exit"),
        _trip(k(300, "gate-1", 2, "a"), "deny", "exit", name="deny"),  # moves nobody
        _trip(k(301, "gate-1", 3, "a"), "annul", None, name="annul"),
    ]
    for seed in range(12):
        shuffled = trips[:]
        random.Random(seed).shuffle(shuffled)
        last = ordering.settle(shuffled)
        assert last is not None and last["name"] == "second exit", seed
    assert ordering.settle(reversed(trips)) is trips[2]
    assert ordering.settle(trips[:2]) is trips[1]
    assert ordering.settle(trips[:1]) is trips[0]
    assert ordering.settle([trips[3], trips[0]]) is trips[0]


def test_settle_breaks_ties_of_time_by_gate_then_sequence_then_event_id() -> None:
    k = ordering.order_key
    by_gate = [
        _trip(k(100, "gate-2", 1, "a"), "exit", "exit"),
        _trip(k(100, "gate-1", 9, "z"), "entry", "entry"),
    ]
    assert ordering.settle(by_gate) is by_gate[0]
    assert ordering.settle(by_gate[::-1]) is by_gate[0]
    by_seq = [
        _trip(k(100, "gate-1", 10, "a"), "entry", "entry"),
        _trip(k(100, "gate-1", 9, "z"), "exit", "exit"),
    ]
    assert ordering.settle(by_seq) is by_seq[0]
    assert ordering.settle(by_seq[::-1]) is by_seq[0]
    by_id = [
        _trip(k(100, "gate-1", 1, "b"), "override", "exit"),
        _trip(k(100, "gate-1", 1, "a"), "register", None),
    ]
    assert ordering.settle(by_id) is by_id[0]
    assert ordering.settle(by_id[::-1]) is by_id[0]


def test_settle_reads_an_overrides_direction_and_compares_keys_as_text() -> None:
    override_in = _trip("0002", "override", "entry")
    override_none = _trip("0003", "override", None)  # no direction: moves nobody
    out = _trip("0001", "exit", "exit")
    assert ordering.settle([override_none, override_in, out]) is override_in
    # okey compared as text: "10" sorts before "9", as every side's index does.
    nine = _trip("9", "exit", "exit")
    ten = _trip("10", "entry", "entry")
    assert ordering.settle([nine, ten]) is nine
    assert ordering.settle([ten, nine]) is nine
    # A key stored as a number is compared by its text too.
    last = ordering.settle([dict(nine, okey=9), dict(ten, okey=10)])
    assert last is not None and last["okey"] == 9
