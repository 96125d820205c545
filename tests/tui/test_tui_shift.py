"""What a shift needs beside single decisions: handover summary, undo preview, clock check."""

from __future__ import annotations

from datetime import timedelta

import pytest

from menwei.core.errors import GateError
from menwei.core.shift import (
    clock_warning,
    hand_over,
    last_undoable,
    shift_summary,
    today_start,
    verify_home_log,
)
from tests.conftest import T0, Community


def test_handover_summary_counts_this_shift_and_lists_the_overdue(community: Community) -> None:
    community.set_policy('timezone = "Asia/Shanghai"\nmax_time_out = "2h"\n')
    gate = community.gate
    gate.start_shift("王阿姨")
    gate.decide(community.codes[1203], operator="王阿姨")
    community.clock.advance(timedelta(hours=3))
    gate.decide(community.codes[2101], operator="王阿姨")
    gate.decide(community.codes[2101], direction="exit", operator="王阿姨")  # already out
    summary = shift_summary(gate, "王阿姨")
    assert summary.started_at == T0
    assert (summary.counts.exits, summary.counts.refusals) == (2, 1)
    assert [e.household.number for e in summary.overdue] == [1203]
    assert len(summary.out_now) == 2


def test_hand_over_checks_the_pin_before_closing_the_shift(community: Community) -> None:
    gate = community.gate
    gate.set_pin("李师傅", "2468")
    hand_over(gate, "王阿姨")
    with pytest.raises(GateError):
        hand_over(gate, "李师傅", pin="0000")
    assert gate.current_operator() == "王阿姨"
    hand_over(gate, "李师傅", pin="2468")
    assert gate.current_operator() == "李师傅"


def test_undo_preview_is_the_last_trip_within_two_minutes(community: Community) -> None:
    gate = community.gate
    assert last_undoable(gate) is None
    gate.decide(community.codes[1203], operator="w")
    gate.decide("not a pass", operator="w")
    event = last_undoable(gate)
    assert event is not None and event.household == 1203 and event.kind == "exit"
    community.clock.advance(timedelta(minutes=3))
    assert last_undoable(gate) is None


def test_clock_warning(community: Community) -> None:
    gate = community.gate
    assert clock_warning(gate) is None
    gate.decide(community.codes[1203], operator="w")
    community.clock.set(T0 - timedelta(hours=1))
    warning = clock_warning(gate)
    assert warning is not None and "倒退" in warning.zh
    community.clock.set(T0.replace(year=2020))
    warning = clock_warning(gate)
    assert warning is not None and "too early" in warning.en


def test_today_and_a_log_check_on_its_own_connection(community: Community) -> None:
    gate = community.gate
    assert today_start(gate).hour == 0
    gate.decide(community.codes[1203], operator="w")
    report = verify_home_log(community.home)
    assert report.ok and report.count == 1
