"""The decision order (DESIGN.md §5): a pass failing several checks gets the first one's reason.

Each case below fails two checks at once, so a check moved after another changes the answer.
Also the boundaries of each check, and the undo window's guard against a wall clock set back.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pytest

from menwei.core import eventlog, keys, ordering, passes, rules, state
from menwei.core.clock import FrozenClock
from menwei.core.errors import GateError
from menwei.core.gate import MAX_HEADCOUNT, UNDO_WINDOW, GateService
from menwei.core.issuing import revoke
from menwei.core.model import HouseholdState
from menwei.core.passes import PassData, sign
from tests.conftest import T0, Community

UNTIL = date(2027, 5, 1)  # valid at the test clock (T0 = 2026-11-24)


def code(c: Community, *, key: object = None, **fields: int | date) -> str:
    """A pass signed with this community's key 0 unless `key` says otherwise."""
    data: dict[str, int | date] = dict(
        kid=0, community=42, household=1203, serial=1, valid_until=UNTIL
    )
    data.update(fields)
    private = key if key is not None else keys.read_private(c.home.signing_key_path(0))
    return sign(PassData(**data), private)  # type: ignore[arg-type]


def last_event(c: Community) -> eventlog.Event:
    return list(eventlog.iter_events(c.store))[-1]


def mark_revoked(c: Community, household: int, min_serial: int) -> None:
    with c.store.write() as db:
        db.execute(
            "insert into revocations(household, min_serial, reason, revoked_at) values (?, ?, ?, ?)",
            [household, min_serial, "lost", "2026-11-01T00:00:00.000Z"],
        )


def test_foreign_community_comes_before_the_key_and_the_signature(c: Community) -> None:
    stranger = keys.generate()  # another committee's key, with a kid this gate also uses
    assert c.gate.decide(code(c, community=43, key=stranger), operator="t").reason == (
        "foreign_community"
    )
    assert c.gate.decide(code(c, community=43, kid=9), operator="t").reason == "foreign_community"
    assert c.gate.decide(code(c, community=43, kid=9, key=stranger), operator="t").reason == (
        "foreign_community"
    )


def test_unknown_key_comes_before_the_signature(c: Community) -> None:
    d = c.gate.decide(code(c, kid=9, key=keys.generate()), operator="t")
    assert (d.verdict, d.reason) == ("red", "unknown_key")


def test_a_retired_key_is_unknown(c: Community) -> None:
    with c.store.write() as db:
        db.execute("update keys set status = 'retired' where kid = 0")
    d = c.gate.decide(c.codes[1203], operator="t")
    assert d.reason == "unknown_key"


def test_forged_comes_before_expired_and_revoked(c: Community) -> None:
    mark_revoked(c, 1203, 2)
    d = c.gate.decide(
        code(c, key=keys.generate(), valid_until=date(2026, 1, 1), serial=1), operator="t"
    )
    assert (d.reason, d.overridable) == ("forged", False)


def test_expired_comes_before_revoked(c: Community) -> None:
    mark_revoked(c, 1203, 2)
    d = c.gate.decide(code(c, serial=1, valid_until=date(2026, 11, 1)), operator="t")
    assert (d.verdict, d.reason) == ("red", "expired")
    assert "2026-11-01" in d.message.zh and "2026-11-01" in d.message.en


def test_revoked_comes_before_unknown_household(c: Community) -> None:
    mark_revoked(c, 9999, 3)
    d = c.gate.decide(code(c, household=9999, serial=2), operator="t")
    assert (d.reason, d.household_number, d.serial) == ("revoked", 9999, 2)
    assert "3" in d.message.zh and "serial 3" in d.message.en
    d = c.gate.decide(code(c, household=9999, serial=3), operator="t")
    assert d.reason == "unknown_household"


def test_the_current_serial_passes_and_a_lower_one_does_not(c: Community) -> None:
    new = revoke(c.home, c.store, 1204, reason="lost", now=T0)
    assert new.serial == 2
    assert c.gate.decide(code(c, household=1204, serial=1), operator="t").reason == "revoked"
    assert c.gate.decide(code(c, household=1204, serial=2), operator="t").reason == "ok"
    # Another household's revocation does not touch this one.
    assert c.gate.decide(code(c, household=1203, serial=1), operator="t").reason == "ok"


def test_already_out_comes_before_the_policy(c: Community) -> None:
    c.gate.decide(c.codes[3301], operator="t")  # out
    c.set_policy('[levels]\n"12" = "sealed"\n')
    d = c.gate.decide(c.codes[3301], direction="exit", operator="t")
    assert (d.verdict, d.reason) == ("amber", "already_out")


def test_expiry_is_judged_on_the_local_date(c: Community) -> None:
    # 2026-11-24 17:00 UTC is already 11-25 01:00 in Shanghai: a pass valid through 11-24 expired.
    c.clock.set(datetime.fromisoformat("2026-11-24T17:00:00+00:00"))
    d = c.gate.decide(code(c, valid_until=date(2026, 11, 24)), operator="t")
    assert d.reason == "expired"
    assert c.gate.decide(code(c, valid_until=date(2026, 11, 25)), operator="t").reason == "ok"


def test_every_refusal_records_what_was_presented(c: Community) -> None:
    cases = [
        (code(c, community=43), "foreign_community", 1203, 1),
        (code(c, kid=9), "unknown_key", 1203, 1),
        (code(c, key=keys.generate(), serial=4), "forged", 1203, 4),
        (code(c, valid_until=date(2026, 11, 23), household=1204), "expired", 1204, 1),
        (code(c, household=9999, serial=7), "unknown_household", 9999, 7),
    ]
    for text, reason, household, serial in cases:
        d = c.gate.decide(text, operator="王阿姨", source="camera", headcount=2)
        assert (d.reason, d.recorded, d.household_number, d.serial) == (
            reason,
            True,
            household,
            serial,
        )
        e = last_event(c)
        assert (e.kind, e.reason, e.household, e.serial, e.operator, e.source, e.scan) == (
            "deny",
            reason,
            household,
            serial,
            "王阿姨",
            "camera",
            text,
        )
        assert e.wall_time == "2026-11-24T02:00:00.000Z"


def test_headcount_bounds(c: Community) -> None:
    for bad in (0, MAX_HEADCOUNT + 1):
        with pytest.raises(GateError, match=f"1-{MAX_HEADCOUNT}"):
            c.gate.decide(c.codes[1203], operator="t", headcount=bad)
    assert list(eventlog.iter_events(c.store)) == []
    assert c.gate.decide(c.codes[1203], operator="t", headcount=MAX_HEADCOUNT).recorded
    assert c.gate.decide(c.codes[1204], operator="t", headcount=1).recorded


def test_direction_auto_and_one_way_lanes(c: Community) -> None:
    d = c.gate.decide(c.codes[1203], operator="t")
    assert (d.direction, d.proposed) == ("exit", "exit")
    d = c.gate.decide(c.codes[1203], operator="t", direction="exit")
    assert (d.reason, d.direction, d.proposed) == ("already_out", "exit", "entry")
    d = c.gate.decide(c.codes[1203], operator="t", direction="entry")
    assert (d.reason, d.direction, d.kind) == ("ok", "entry", "entry")
    d = c.gate.decide(c.codes[1203], operator="t", direction="entry")
    assert (d.reason, d.direction, d.proposed) == ("already_in", "entry", "exit")
    assert [e.kind for e in eventlog.iter_events(c.store)] == ["exit", "deny", "entry", "deny"]


def test_manual_entry_records_no_serial(c: Community) -> None:
    d = c.gate.decide_household(1204, operator="t", headcount=2, source="keypad")
    assert (d.reason, d.serial, d.headcount, d.source) == ("ok", None, 2, "keypad")
    e = last_event(c)
    assert (e.household, e.serial, e.scan, e.headcount) == (1204, None, "manual:1204", 2)


def test_the_time_out_is_counted_from_the_exit(c: Community) -> None:
    c.set_policy('max_time_out = "2h"\n')
    c.gate.decide(c.codes[1203], operator="t")
    c.clock.advance(timedelta(hours=1, minutes=59))
    d = c.gate.decide(c.codes[1203], operator="t")
    assert (d.reason, d.overdue, d.rule) == ("ok", False, None)
    assert "1小时59分钟" in d.message.zh and "1 h 59 min" in d.message.en


class SkewedClock(FrozenClock):
    """A test clock whose wall time can jump (a user, a bad NTP) while monotonic time runs on."""

    def jump(self, delta: timedelta) -> None:
        self._at += delta


def skewed(c: Community) -> tuple[GateService, SkewedClock]:
    clock = SkewedClock(T0)
    return GateService(c.store, clock=clock), clock


def test_undo_window_edges(c: Community) -> None:
    gate, clock = skewed(c)
    gate.decide(c.codes[1203], operator="t")
    clock.advance(UNDO_WINDOW)
    assert gate.annul_last(operator="t").kind == "annul"  # exactly two minutes: still allowed
    gate.decide(c.codes[1204], operator="t")
    clock.advance(UNDO_WINDOW + timedelta(seconds=1))
    with pytest.raises(GateError, match="2 minutes"):
        gate.annul_last(operator="t")
    assert gate.state_of(1204).state == "out"


def test_undo_cannot_be_stretched_by_setting_the_wall_clock_back(c: Community) -> None:
    gate, clock = skewed(c)
    gate.decide(c.codes[1203], operator="t")
    clock.advance(timedelta(minutes=5))
    clock.jump(-timedelta(minutes=4))  # the wall says one minute passed; five did
    with pytest.raises(GateError, match="2 minutes"):
        gate.annul_last(operator="t")
    assert gate.state_of(1203).state == "out"
    assert [e.kind for e in eventlog.iter_events(c.store)] == ["exit"]


def test_undo_refused_when_the_wall_clock_jumped_forward(c: Community) -> None:
    gate, clock = skewed(c)
    gate.decide(c.codes[1203], operator="t")
    clock.advance(timedelta(seconds=30))
    clock.jump(timedelta(minutes=3))  # monotonic: 30 s; wall: 3.5 min
    with pytest.raises(GateError, match="2 minutes"):
        gate.annul_last(operator="t")


def test_undo_of_a_scan_from_another_boot_goes_by_the_wall_clock(
    c: Community, monkeypatch: pytest.MonkeyPatch
) -> None:
    c.gate.decide(c.codes[1203], operator="t")  # recorded with this boot's monotonic time
    # After a reboot the monotonic clock counts from another origin: its difference means nothing.
    monkeypatch.setattr("menwei.core.gate.boot_id", lambda: "another-boot")
    clock = SkewedClock(T0)
    clock.advance(timedelta(hours=5))
    clock.jump(-timedelta(hours=5) + timedelta(seconds=60))
    gate = GateService(c.store, clock=clock)
    d = gate.annul_last(operator="op2")
    assert (d.kind, d.verdict, d.household_number, d.operator) == ("annul", "amber", 1203, "op2")
    assert gate.state_of(1203).state == "in"


def test_undo_takes_the_last_trip_and_says_which(c: Community) -> None:
    gate, clock = skewed(c)
    gate.decide(c.codes[1203], operator="t")
    clock.advance(timedelta(seconds=10))
    gate.decide(c.codes[1204], operator="t")
    clock.advance(timedelta(seconds=10))
    gate.decide("not a pass", operator="t")  # a refusal is not a trip: not what undo takes
    d = gate.annul_last(operator="t")
    assert d.household_number == 1204 and d.headcount == 1
    assert (
        "1204" in d.message.zh
        and "10:00 外出1人" in d.message.zh
        and "out, 1 person, at 10:00" in d.message.en
    )
    annul = last_event(c)
    assert (annul.kind, annul.household, annul.direction, annul.operator) == (
        "annul",
        1204,
        "exit",
        "t",
    )
    assert gate.state_of(1204).state == "in" and gate.state_of(1203).state == "out"
    with pytest.raises(GateError, match="already undone"):
        gate.annul_last(operator="t")


def test_nothing_to_undo(c: Community) -> None:
    with pytest.raises(GateError, match="Nothing to undo"):
        c.gate.annul_last(operator="t")


# --- what a decision says and records, in both languages ------------------------------------------


def test_an_exit_in_a_window_in_full(c: Community) -> None:
    c.set_policy('[[windows]]\ngroups = ["3"]\nstart = "09:00"\nend = "11:00"\n')
    h = c.gate.household(1203)
    assert h is not None
    d = c.gate.decide(c.codes[1203], operator="王阿姨", headcount=2)
    assert (d.verdict, d.reason, d.kind, d.direction, d.proposed) == (
        "green",
        "ok",
        "exit",
        "exit",
        "exit",
    )
    assert (d.household_number, d.serial, d.headcount, d.operator, d.source) == (
        1203,
        1,
        2,
        "王阿姨",
        "cli",
    )
    assert d.message.zh == f"{h.address().zh} {h.group_name().zh} 外出2人"
    assert d.message.en == f"{h.address().en}, {h.group_name().en}: 2 going out"
    assert d.rule is not None
    assert (d.rule.zh, d.rule.en) == ("外出时段 09:00-11:00", "release window 09:00-11:00")
    assert (d.window, d.policy_version, d.recorded, d.overridable) == (
        "09:00-11:00",
        2,
        True,
        False,
    )
    e = last_event(c)
    assert (e.event_id, e.seq) == (d.event_id, d.seq)
    assert (e.kind, e.reason, e.direction, e.household, e.serial, e.verdict) == (
        "exit",
        "ok",
        "exit",
        1203,
        1,
        "green",
    )
    assert (e.operator, e.source, e.headcount, e.window, e.policy_version) == (
        "王阿姨",
        "cli",
        2,
        "09:00-11:00",
        2,
    )


def test_an_overdue_entry_in_full(c: Community) -> None:
    c.set_policy('max_time_out = "2h"\n')
    h = c.gate.household(1204)
    assert h is not None
    c.gate.decide(c.codes[1204], operator="t")
    c.clock.advance(timedelta(hours=2, minutes=1))
    d = c.gate.decide(c.codes[1204], operator="李伯", source="camera")
    assert (d.verdict, d.reason, d.kind, d.direction, d.overdue) == (
        "green",
        "overdue",
        "entry",
        "entry",
        True,
    )
    assert d.message.zh == f"{h.address().zh} 返回1人,外出2小时1分钟"
    assert d.message.en == f"{h.address().en}: 1 back after 2 h 1 min"
    assert d.rule is not None
    assert (d.rule.zh, d.rule.en) == (
        "超过外出时限2小时,已记录超时",
        "over the 2 h limit: recorded overdue",
    )
    e = last_event(c)
    assert (e.kind, e.reason, e.overdue, e.operator, e.source, e.serial) == (
        "entry",
        "overdue",
        True,
        "李伯",
        "camera",
        1,
    )


def test_refusal_messages_in_both_languages(c: Community) -> None:
    d = c.gate.decide(code(c, community=43), operator="t")
    assert (d.message.zh, d.message.en) == (
        "外小区的通行证(小区编号 43),本门岗不通行",
        "Pass of another community (#43), not valid here",
    )
    mark_revoked(c, 1203, 3)
    d = c.gate.decide(code(c, serial=2), operator="t")
    assert (d.message.zh, d.message.en) == (
        "此证已挂失作废(现行第3版),请留下证件,联系居委会",
        "Revoked pass (the current one is serial 3): keep the card and call the committee",
    )
    d = c.gate.decide(code(c, household=9999), operator="t")
    assert (d.message.zh, d.message.en) == (
        "户号 9999 不在花名册中",
        "Household 9999 is not in the roster",
    )
    with pytest.raises(GateError) as err:
        c.gate.decide(c.codes[1204], operator="t", headcount=0)
    assert (err.value.message, err.value.zh) == (
        "Headcount must be 1-20, not 0.",
        "人数应为1到20人",
    )


def test_amber_refusals_record_the_pass_and_the_household(c: Community) -> None:
    c.gate.decide(code(c, household=1204, serial=1), operator="t")
    c.gate.decide(code(c, household=1204, serial=1), operator="t", direction="exit", headcount=2)
    out = last_event(c)
    assert (out.reason, out.household, out.serial, out.headcount, out.direction) == (
        "already_out",
        1204,
        1,
        2,
        "exit",
    )
    c.gate.decide(c.codes[1203], operator="t", direction="entry")
    inside = last_event(c)
    assert (inside.reason, inside.household, inside.serial, inside.direction) == (
        "already_in",
        1203,
        1,
        "entry",
    )


def test_an_undo_in_full_and_its_hooks(c: Community) -> None:
    seen: list[tuple[object, str | None, str]] = []
    c.gate.hooks.append(lambda db, d, e: seen.append((db, d.kind, e.kind)))
    first = c.gate.decide(c.codes[1203], operator="t", headcount=3)
    c.clock.advance(timedelta(seconds=30))
    d = c.gate.annul_last(operator="李伯")
    assert (d.verdict, d.reason, d.kind, d.direction, d.operator) == (
        "amber",
        "ok",
        "annul",
        "exit",
        "李伯",
    )
    assert (d.household_number, d.serial, d.headcount, d.at, d.policy_version) == (
        1203,
        1,
        3,
        c.clock.now(),
        1,
    )
    assert d.household == c.gate.household(1203)
    assert (d.title.zh, d.title.en) == ("已撤销", "Undone")
    assert (d.message.zh, d.message.en) == (
        "已撤销户号 1203 的上一条记录:10:00 外出3人",
        "Undid household 1203's last record: out, 3 people, at 10:00",
    )
    e = last_event(c)
    assert (d.recorded, d.event_id, d.seq) == (True, e.event_id, e.seq)
    assert (e.kind, e.ref, e.reason, e.serial, e.direction, e.policy_version, e.operator) == (
        "annul",
        first.event_id,
        "ok",
        1,
        "exit",
        1,
        "李伯",
    )
    assert [(k, ek) for _, k, ek in seen] == [("exit", "exit"), ("annul", "annul")]
    assert all(db is not None and hasattr(db, "execute") for db, _, _ in seen)


def test_undo_errors_in_both_languages(c: Community) -> None:
    def said() -> tuple[str, str]:
        with pytest.raises(GateError) as err:
            c.gate.annul_last(operator="t")
        return (err.value.message, err.value.zh or "")

    assert said() == ("Nothing to undo.", "没有可撤销的记录")
    c.gate.decide(c.codes[1203], operator="t")
    c.gate.annul_last(operator="t")
    assert said() == ("The last scan was already undone.", "上一条记录已撤销过了")
    c.gate.decide(c.codes[1204], operator="t")
    c.clock.advance(timedelta(minutes=3))
    assert said() == ("Undo works only within 2 minutes of a scan.", "只能撤销2分钟内的记录")


def test_the_monotonic_age_is_counted_to_the_microsecond(c: Community) -> None:
    gate, clock = skewed(c)
    gate.decide(c.codes[1203], operator="t")
    clock.advance(UNDO_WINDOW + timedelta(milliseconds=100))
    clock.jump(-(UNDO_WINDOW + timedelta(milliseconds=100)))  # the wall says no time passed
    with pytest.raises(GateError, match="2 minutes"):
        gate.annul_last(operator="t")


def test_amber_messages_say_when_and_where_the_pass_was_last_used(c: Community) -> None:
    c.gate.decide(c.codes[1203], operator="t")  # out at 10:00 (Shanghai), gate-1
    c.clock.advance(timedelta(minutes=7))
    d = c.gate.decide(c.codes[1203], operator="t", direction="exit")
    assert (d.message.zh, d.message.en) == (
        "该户 11-24 10:00 已从gate-1外出,未回:可能是复印件,请核实身份",
        "Household already out since 11-24 10:00 (gate-1): possible copy, check who this is",
    )
    assert d.last_use is not None
    assert (d.last_use.at, d.last_use.gate_id) == ("2026-11-24T02:00:00.000Z", "gate-1")
    c.gate.decide(c.codes[1203], operator="t")  # back at 10:07
    d = c.gate.decide(c.codes[1203], operator="t", direction="entry")
    assert (d.message.zh, d.message.en) == (
        "该户 11-24 10:07 已从gate-1返回:可能是复印件,请核实身份",
        "Household already came in at 11-24 10:07 (gate-1): possible copy, check who this is",
    )
    assert d.last_use is not None and d.last_use.at == "2026-11-24T02:07:00.000Z"
    d = c.gate.decide(c.codes[1204], operator="t", direction="entry")  # never went out
    assert (d.reason, d.last_use) == ("already_in", None)
    assert (d.message.zh, d.message.en) == (
        "该户没有外出记录:返回的居民请登记",
        "No exit on record: register a returning resident",
    )


def test_only_amber_decisions_carry_a_last_use_and_only_entries_are_overdue(c: Community) -> None:
    for text in (code(c, community=43), code(c, kid=9), code(c, household=9999)):
        d = c.gate.decide(text, operator="t")
        assert d.verdict == "red" and d.last_use is None and d.overdue is False
    d = c.gate.decide(c.codes[1203], operator="t")
    assert (d.reason, d.overdue, d.last_use) == ("ok", False, None)


# --- a household that left the roster; the pure rules without a state ----------------------------


def test_a_moved_out_household_is_said_so_for_its_pass_and_its_number(c: Community) -> None:
    from menwei.core.roster import remove_households

    # 16:30 UTC on the 20th is already the 21st in Shanghai: the day is said in local time.
    remove_households(c.store, [1204], now="2026-11-20T16:30:00.000Z", reason="moved")
    words = (
        "户号 1204 已于 2026-11-21 迁出,不在花名册中:请收回此证,联系居委会",
        "Household 1204 moved out on 2026-11-21 and left the roster: "
        "keep the card and call the committee",
    )
    d = c.gate.decide(c.codes[1204], operator="t", headcount=2)
    assert (d.verdict, d.reason, d.kind, d.household_number, d.serial, d.headcount) == (
        "red",
        "moved_out",
        "deny",
        1204,
        1,
        2,
    )
    assert (d.message.zh, d.message.en) == words and d.overridable is False
    e = last_event(c)
    assert (e.kind, e.reason, e.household, e.serial) == ("deny", "moved_out", 1204, 1)
    typed = c.gate.decide_household(1204, operator="t", source="keypad")
    assert (typed.reason, typed.household_number, typed.serial) == ("moved_out", 1204, None)
    assert (typed.message.zh, typed.message.en) == words
    # Before it: the pass's own checks (an expired copy is expired, whoever holds it).
    expired = c.gate.decide(code(c, household=1204, valid_until=date(2026, 11, 1)), operator="t")
    assert expired.reason == "expired"
    # A number never in the roster is unknown, not moved out.
    assert c.gate.decide_household(9999, operator="t").reason == "unknown_household"


def test_a_refusal_by_the_policy_names_the_household(c: Community) -> None:
    c.set_policy('[[windows]]\ngroups = ["3"]\nstart = "08:00"\nend = "09:00"\n')
    h = c.gate.household(1203)
    assert h is not None
    d = c.gate.decide(code(c, serial=1), operator="t")
    assert (d.verdict, d.reason, d.kind, d.direction, d.serial) == (
        "red",
        "outside_window",
        "deny",
        "exit",
        1,
    )
    assert (d.message.zh, d.message.en) == (
        f"{h.address().zh} {h.group_name().zh}",
        f"{h.address().en}, {h.group_name().en}",
    )


def test_an_exit_in_an_open_policy_names_no_window(c: Community) -> None:
    d = c.gate.decide(c.codes[1203], operator="t")
    assert (d.reason, d.window, d.rule) == ("ok", "open", None)


def test_the_rules_alone_take_a_household_without_a_state_as_in(c: Community) -> None:
    scanned = passes.parse(c.codes[2101])
    assert isinstance(scanned, passes.ParsedPass)
    facts = replace(c.gate.facts_for(scanned, T0), state=None)
    asked_in = rules.decide(scanned, facts, rules.Presented(T0, "t", "cli", 1, "entry"))
    assert (asked_in.verdict, asked_in.reason, asked_in.household_number) == (
        "amber",
        "already_in",
        2101,
    )
    assert asked_in.message.en == "No exit on record: register a returning resident"
    # A state out with no time (only the pure rules can be handed one): back after 0 min.
    out = replace(facts, state=HouseholdState(2101, "out", None, None, None))
    back = rules.decide(scanned, out, rules.Presented(T0, "t", "cli"))
    assert (back.verdict, back.reason, back.direction) == ("green", "ok", "entry")
    assert back.message.en.endswith("1 back after 0 min")
    auto = rules.decide(scanned, facts, rules.Presented(T0, "t", "cli"))
    assert (auto.verdict, auto.reason, auto.direction, auto.proposed) == (
        "green",
        "ok",
        "exit",
        "exit",
    )


def test_the_quota_period_is_the_one_the_exit_is_recorded_in(c: Community) -> None:
    # One trip a day. 1203 went out here at 10:00 and came back in through another gate whose
    # clock runs fast: its entry is stamped 00:05 tomorrow. At 23:50 by this gate's clock the
    # next exit falls after that entry in the shared order, so tomorrow: tomorrow's quota.
    c.set_policy("[quota]\ntrips = 1\ndays = 1\n")
    assert c.gate.decide(c.codes[1203], operator="t").reason == "ok"
    ahead = datetime.fromisoformat("2026-11-24T16:05:00+00:00")  # 00:05 on the 25th, local
    okey = ordering.order_key(ordering.wall_ms(ahead), "gate-9", 1, "r-entry")
    with c.store.write() as db:
        db.execute(
            "insert into remote_events (event_id, gate_id, epoch, seq, kind, direction, household,"
            " reason, headcount, wall_time, ref, body, okey)"
            " values ('r-entry', 'gate-9', 1, 1, 'entry', 'entry', 1203, 'ok', 1,"
            " '2026-11-24T16:05:00.000Z', null, '{}', ?)",
            [okey],
        )
        state.rebuild(db, [1203])
    c.clock.set(datetime.fromisoformat("2026-11-24T15:50:00+00:00"))  # 23:50 on the 24th, local
    d = c.gate.decide(c.codes[1203], operator="t")
    assert (d.verdict, d.reason, d.direction) == ("green", "ok", "exit")
    recorded = c.store.one("select hlc_ms from events where event_id = ?", [d.event_id])
    assert recorded is not None and recorded["hlc_ms"] == ordering.wall_ms(ahead) + 1
    # Back in and out again the same night: now tomorrow's one trip is used.
    assert c.gate.decide(c.codes[1203], operator="t").direction == "entry"
    assert c.gate.decide(c.codes[1203], operator="t").reason == "quota_exceeded"
