"""The gate service: every reason code, every flow, all recorded in the same transaction."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from menwei.core import eventlog, keys
from menwei.core.community import policy_version
from menwei.core.errors import GateError
from menwei.core.issuing import revoke
from menwei.core.passes import PassData, sign
from tests.conftest import Community


def own_key_code(c: Community, **fields: int | date) -> str:
    key = keys.read_private(c.home.signing_key_path(0))
    data = dict(kid=0, community=42, household=1203, serial=1, valid_until=date(2027, 5, 1))
    data.update(fields)
    return sign(PassData(**data), key)  # type: ignore[arg-type]


def test_exit_then_entry(community: Community) -> None:
    c = community
    d = c.gate.decide(c.codes[1203], operator="王阿姨")
    assert (d.verdict, d.reason, d.direction, d.kind) == ("green", "ok", "exit", "exit")
    assert d.title.zh == "放行" and d.recorded and d.event_id
    assert d.household is not None and d.household.building == "3"
    c.clock.advance(timedelta(minutes=40))
    d2 = c.gate.decide(c.codes[1203], operator="王阿姨")
    assert (d2.verdict, d2.reason, d2.direction) == ("green", "ok", "entry")
    assert d2.title.zh == "欢迎回家"
    assert "40分钟" in d2.message.zh
    events = list(eventlog.iter_events(c.store))
    assert [e.kind for e in events] == ["exit", "entry"]
    assert all(e.operator == "王阿姨" for e in events)
    assert events[0].window == "open"
    assert all(e.policy_version == 1 for e in events)


def test_not_a_pass_and_malformed_are_recorded_without_the_text(community: Community) -> None:
    c = community
    d = c.gate.decide("https://qr.alipay.com/fkx19999", operator="t")
    assert (d.verdict, d.reason, d.recorded) == ("amber", "not_a_pass", True)
    d2 = c.gate.decide("MW:" + "Z" * 30, operator="t")
    assert d2.reason == "malformed"
    scans = [e.scan for e in eventlog.iter_events(c.store)]
    assert scans[0] is not None and scans[0].startswith("sha256:")
    assert "alipay" not in str(scans)


def test_foreign_community(community: Community) -> None:
    d = community.gate.decide(own_key_code(community, community=43), operator="t")
    assert (d.verdict, d.reason) == ("red", "foreign_community")
    assert "43" in d.message.zh


def test_unknown_key(community: Community) -> None:
    d = community.gate.decide(own_key_code(community, kid=3), operator="t")
    assert (d.verdict, d.reason) == ("red", "unknown_key")


def test_forged_with_another_key(community: Community) -> None:
    other = keys.generate()
    code = sign(PassData(0, 42, 1203, 1, date(2027, 5, 1)), other)
    d = community.gate.decide(code, operator="t")
    assert (d.verdict, d.reason, d.overridable) == ("red", "forged", False)
    assert "居委会" in d.message.zh


def test_forged_by_editing_a_field(community: Community) -> None:
    from menwei.core import base45

    raw = bytearray(base45.decode(community.codes[1203][3:]))
    raw[4] ^= 0x01  # the household number's low byte: 1203 -> 1202
    d = community.gate.decide("MW:" + base45.encode(bytes(raw)), operator="t")
    assert d.reason == "forged"


def test_expired(community: Community) -> None:
    d = community.gate.decide(own_key_code(community, valid_until=date(2026, 11, 23)), operator="t")
    assert (d.verdict, d.reason) == ("red", "expired")
    assert "2026-11-23" in d.message.zh
    d = community.gate.decide(own_key_code(community, valid_until=date(2026, 11, 24)), operator="t")
    assert d.reason == "ok"  # valid through its last day


def test_revoked_then_reissued(community: Community) -> None:
    c = community
    new = revoke(c.home, c.store, 1203, reason="遗失", now=c.clock.now())
    assert new.serial == 2
    d = c.gate.decide(c.codes[1203], operator="t")
    assert (d.verdict, d.reason) == ("red", "revoked")
    assert d.overridable is False
    d2 = c.gate.decide(new.code, operator="t")
    assert d2.reason == "ok"


def test_unknown_household(community: Community) -> None:
    d = community.gate.decide(own_key_code(community, household=9999), operator="t")
    assert (d.verdict, d.reason, d.overridable) == ("red", "unknown_household", True)


def test_already_out_is_amber_with_last_use(community: Community) -> None:
    c = community
    c.gate.decide(c.codes[1203], operator="t")
    c.clock.advance(timedelta(minutes=5))
    d = c.gate.decide(c.codes[1203], direction="exit", operator="t")
    assert (d.verdict, d.reason, d.title.zh) == ("amber", "already_out", "请核实")
    assert d.last_use is not None and d.last_use.gate_id == "gate-1"
    assert "复印件" in d.message.zh and "10:00" in d.message.zh
    assert c.gate.state_of(1203).state == "out"


def test_already_in(community: Community) -> None:
    d = community.gate.decide(community.codes[1203], direction="entry", operator="t")
    assert (d.verdict, d.reason) == ("amber", "already_in")


SEALED = """
[levels]
"12" = "sealed"
"7" = "controlled"
"""


def test_sealed_and_controlled(community: Community) -> None:
    c = community
    c.set_policy(SEALED)
    d = c.gate.decide(c.codes[3301], operator="t")
    assert (d.verdict, d.reason) == ("red", "sealed")
    assert d.rule is not None and "封控" in d.rule.zh
    d2 = c.gate.decide(c.codes[2101], operator="t")
    assert d2.reason == "sealed" and d2.rule is not None and "管控" in d2.rule.zh
    with pytest.raises(GateError):
        c.gate.override(d.event_id or "", reason="work", operator="t")
    o = c.gate.override(d.event_id or "", reason="medical", operator="t", note="透析")
    assert (o.verdict, o.kind, o.window) == ("green", "override", "override:medical")
    assert c.gate.state_of(3301).state == "out"


WINDOWS = """
[[windows]]
groups = ["3"]
start = "11:00"
end = "12:00"

[[windows]]
groups = ["5"]
weekdays = ["wed"]
start = "08:00"
end = "09:00"

[[windows]]
categories = ["返岗"]
start = "09:30"
end = "10:30"
"""


def test_outside_window_explains_the_rule(community: Community) -> None:
    c = community
    c.set_policy(WINDOWS)
    d = c.gate.decide(c.codes[1203], operator="t")
    assert (d.verdict, d.reason) == ("red", "outside_window")
    assert d.rule is not None
    assert d.rule.zh == "第3楼组 11:00 起可外出(还有1小时)"
    assert d.rule.en == "group 3 may leave from 11:00 (in 1 h)"
    c.clock.advance(timedelta(minutes=37))
    d = c.gate.decide(c.codes[1203], operator="t")
    assert d.rule is not None and d.rule.zh == "第3楼组 11:00 起可外出(还有23分钟)"
    c.clock.advance(timedelta(minutes=23))
    d = c.gate.decide(c.codes[1203], operator="t")
    assert (d.reason, d.window) == ("ok", "11:00-12:00")
    # Group 5 has a window only on Wednesdays; its returning worker may go by category.
    d5 = c.gate.decide(c.codes[2101], operator="t")
    assert d5.reason == "outside_window"
    assert d5.rule is not None and d5.rule.zh == "第5楼组 明天(周三) 08:00 起可外出"
    c.clock.set(c.clock.now() - timedelta(minutes=60))  # back to 10:00, inside 09:30-10:30
    worker = c.gate.decide(c.codes[2102], operator="t")
    assert (worker.reason, worker.window) == ("ok", "09:30-10:30")


def test_coming_home_is_never_refused_for_policy(community: Community) -> None:
    c = community
    c.gate.decide(c.codes[3301], operator="t")
    c.set_policy(SEALED + WINDOWS + "\n[quota]\ntrips = 0\ndays = 1\n")
    d = c.gate.decide(c.codes[3301], operator="t")
    assert (d.verdict, d.direction, d.reason) == ("green", "entry", "ok")


def test_quota_and_persons(community: Community) -> None:
    c = community
    c.set_policy("[quota]\ntrips = 1\ndays = 2\npersons = 2\n")
    d = c.gate.decide(c.codes[1203], operator="t", headcount=3)
    assert d.reason == "quota_exceeded" and d.rule is not None and "限2人" in d.rule.zh
    assert c.gate.decide(c.codes[1203], operator="t", headcount=2).reason == "ok"
    c.clock.advance(timedelta(hours=1))
    assert c.gate.decide(c.codes[1203], operator="t").direction == "entry"
    c.clock.advance(timedelta(days=1))
    d = c.gate.decide(c.codes[1203], operator="t")
    assert d.reason == "quota_exceeded"
    assert d.rule is not None and d.rule.zh == "每户每2天限外出1次,已用1次"
    c.clock.advance(timedelta(days=1))
    assert c.gate.decide(c.codes[1203], operator="t").reason == "ok"


def test_overdue_return_is_let_in_and_flagged(community: Community) -> None:
    c = community
    c.set_policy('max_time_out = "2h"\n')
    c.gate.decide(c.codes[1203], operator="t")
    c.clock.advance(timedelta(hours=3, minutes=5))
    d = c.gate.decide(c.codes[1203], operator="t")
    assert (d.verdict, d.reason, d.direction, d.overdue) == ("green", "overdue", "entry", True)
    assert d.rule is not None and "2小时" in d.rule.zh
    [_, entry] = list(eventlog.iter_events(c.store))
    assert entry.overdue is True


def test_override_needs_a_reason_and_is_its_own_event(community: Community) -> None:
    c = community
    c.set_policy(WINDOWS)
    d = c.gate.decide(c.codes[1203], operator="t")
    with pytest.raises(GateError):
        c.gate.override(d.event_id or "", reason="other", operator="t")
    with pytest.raises(GateError):
        c.gate.override(d.event_id or "", reason="bribe", operator="t")
    o = c.gate.override(d.event_id or "", reason="other", note="送孩子就学", operator="t")
    assert o.kind == "override" and o.recorded
    with pytest.raises(GateError):
        c.gate.override(d.event_id or "", reason="medical", operator="t")
    kinds = [(e.kind, e.ref) for e in eventlog.iter_events(c.store)]
    assert kinds == [("deny", None), ("override", d.event_id)]
    forged = c.gate.decide(
        sign(PassData(0, 42, 1203, 1, date(2027, 1, 1)), keys.generate()), operator="t"
    )
    with pytest.raises(GateError, match="forged"):
        c.gate.override(forged.event_id or "", reason="emergency", operator="t")


def test_override_too_late(community: Community) -> None:
    c = community
    c.set_policy(WINDOWS)
    d = c.gate.decide(c.codes[1203], operator="t")
    c.clock.advance(timedelta(minutes=11))
    with pytest.raises(GateError):
        c.gate.override(d.event_id or "", reason="medical", operator="t")


def test_undo_within_two_minutes(community: Community) -> None:
    c = community
    c.set_policy("[quota]\ntrips = 1\ndays = 1\n")
    c.gate.decide(c.codes[1203], operator="t")
    c.clock.advance(timedelta(seconds=90))
    u = c.gate.annul_last(operator="t")
    assert u.kind == "annul" and u.recorded
    assert c.gate.state_of(1203).state == "in"
    # The annulled exit does not use up the quota.
    assert c.gate.decide(c.codes[1203], operator="t").reason == "ok"
    c.clock.advance(timedelta(minutes=3))
    with pytest.raises(GateError, match="2 minutes"):
        c.gate.annul_last(operator="t")
    assert eventlog.verify(c.store).ok


def test_undo_twice_is_refused(community: Community) -> None:
    c = community
    c.gate.decide(c.codes[1203], operator="t")
    c.gate.annul_last(operator="t")
    with pytest.raises(GateError):
        c.gate.annul_last(operator="t")


def test_headcount_per_trip(community: Community) -> None:
    c = community
    d = c.gate.decide(c.codes[1203], operator="t", headcount=2)
    assert d.headcount == 2 and "外出2人" in d.message.zh
    [e] = list(eventlog.iter_events(c.store))
    assert e.headcount == 2
    with pytest.raises(GateError):
        c.gate.decide(c.codes[1204], operator="t", headcount=0)


def test_register_returning_resident(community: Community) -> None:
    c = community
    with pytest.raises(GateError):
        c.gate.register_return(2102, note=" ", operator="t")
    d = c.gate.register_return(2102, note="外地返岗,已查验健康码", operator="t", headcount=1)
    assert (d.verdict, d.kind, d.direction) == ("green", "register", "entry")
    assert c.gate.state_of(2102).state == "in"
    c.gate.decide(c.codes[2102], operator="t")
    with pytest.raises(GateError):
        c.gate.register_return(2102, note="x", operator="t")


def test_manual_entry_by_household_number(community: Community) -> None:
    d = community.gate.decide_household(1204, operator="t")
    assert (d.reason, d.source, d.direction) == ("ok", "manual", "exit")
    assert community.gate.decide_household(777, operator="t").reason == "unknown_household"


def test_dry_run_records_nothing(community: Community) -> None:
    d = community.gate.decide(community.codes[1203], operator="t", dry_run=True)
    assert d.reason == "ok" and not d.recorded and d.event_id is None
    assert list(eventlog.iter_events(community.store)) == []
    assert community.gate.state_of(1203).state == "in"


def test_every_event_names_its_policy_version(community: Community) -> None:
    c = community
    c.gate.decide(c.codes[1203], operator="t")
    c.set_policy(WINDOWS)
    d = c.gate.decide(c.codes[1204], operator="t")
    versions = [e.policy_version for e in eventlog.iter_events(c.store)]
    assert versions == [1, 2]
    assert d.policy_version == 2
    old = policy_version(c.store, 1)
    assert old is not None and old[1].windows == ()


def test_shifts_and_pins(community: Community) -> None:
    g = community.gate
    g.set_pin("李伯", "2468")
    assert g.needs_pin("李伯")
    with pytest.raises(GateError):
        g.start_shift("李伯", pin="0000")
    g.start_shift("李伯", pin="2468")
    assert g.current_operator() == "李伯"
    g.end_shift("李伯")
    assert g.current_operator() is None


def test_a_failing_hook_leaves_nothing_half_written(community: Community) -> None:
    c = community

    def boom(*_: object) -> None:
        raise RuntimeError("outbox full")

    c.gate.hooks.append(boom)
    with pytest.raises(RuntimeError):
        c.gate.decide(c.codes[1203], operator="t")
    assert list(eventlog.iter_events(c.store)) == []
    assert c.gate.state_of(1203).state == "in"


def test_a_full_disk_loses_nothing(community: Community) -> None:
    from menwei.core.store import StoreError

    c = community
    c.gate.decide(c.codes[1203], operator="t")
    pages = c.store.db.execute("pragma page_count").fetchone()[0]
    c.store.db.execute(f"pragma max_page_count = {pages}")
    with pytest.raises(StoreError):
        for i in range(200):
            c.gate.decide("garbage " * 50 + str(i), operator="t")
    c.store.db.execute("pragma max_page_count = 1073741823")
    report = eventlog.verify(c.store)
    assert report.ok
    assert c.gate.decide(c.codes[1203], operator="t").recorded


def test_out_now_and_group_windows(community: Community) -> None:
    c = community
    c.set_policy('max_time_out = "2h"\n' + WINDOWS)
    c.clock.advance(timedelta(hours=1))  # 11:00
    c.gate.decide(c.codes[1203], operator="t")
    c.clock.advance(timedelta(hours=3))
    out = c.gate.out_now()
    assert [(o.household.number, o.overdue) for o in out] == [(1203, True)]
    groups = {g.group: g for g in c.gate.group_windows()}
    assert groups["3"].out_count == 1 and groups["3"].households == 2
    assert groups["3"].open_now is None and groups["3"].next_start is not None
