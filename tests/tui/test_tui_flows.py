"""The volunteer's flows, driven through the real app with Pilot: keys in, screen state out."""

from __future__ import annotations

from datetime import timedelta

import pytest
from textual.widgets import DataTable, Input, OptionList, Static

from menwei.core.policy import Policy
from menwei.gateapp.feed import FeedStatus
from menwei.gateapp.messages import CameraChanged, CodeScanned
from menwei.screens.board import BoardScreen
from menwei.screens.dialogs import LookupScreen, OverrideScreen, UndoScreen
from menwei.screens.log import LogScreen
from menwei.screens.shift import HandoverScreen, SignInScreen
from menwei.screens.widgets import KeyBar, StatusBar
from tests.conftest import Community
from tests.tui.helpers import (
    forged,
    gate_app,
    plain,
    press_digit,
    scan,
    type_text,
    wait_until,
)

pytestmark = pytest.mark.anyio

WINDOWED_POLICY = """\
timezone = "Asia/Shanghai"
override_reasons = ["medical", "emergency", "work", "other"]

[[windows]]
groups = ["3"]
start = "10:23"
end = "11:00"

[[windows]]
groups = ["5", "8"]
start = "08:00"
end = "12:00"
"""


def panel_text(app: object) -> str:
    """Every word on the verdict panel, for asserting on what the volunteer reads."""
    screen = app.scan_screen  # type: ignore[attr-defined]
    parts = [plain(w) for w in screen.panel.query(Static)]
    return "\n".join(parts)


def events_of(community: Community) -> list[tuple[str, str, int | None]]:
    """(kind, reason, household) of every event, oldest first."""
    rows = community.store.query("select kind, reason, household from events order by seq")
    return [(r["kind"], r["reason"], r["household"]) for r in rows]


async def test_scan_lets_a_household_out_then_welcomes_it_home(community: Community) -> None:
    app = gate_app(community)
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[1203])
        d = app.scan_screen.panel.decision
        assert d is not None and d.verdict == "green" and d.direction == "exit"
        assert d.source == "wedge" and d.recorded and d.operator == "王阿姨"
        assert "放 行" in panel_text(app)
        assert "3栋2单元301室" in panel_text(app)
        assert app.scan_screen.panel.has_class("-green")
        assert len(bells) == 1

        community.clock.advance(timedelta(minutes=40))
        await scan(pilot, community.codes[1203])
        d = app.scan_screen.panel.decision
        assert d is not None and d.verdict == "green" and d.direction == "entry"
        assert "欢 迎 回 家" in panel_text(app)
    assert [e[0] for e in events_of(community)] == ["shift_start", "exit", "entry"]


async def test_a_forged_pass_is_red_and_cannot_be_overridden(community: Community) -> None:
    app = gate_app(community)
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, forged(community.codes[1203]))
        await wait_until(pilot, lambda: len(bells) >= 3)  # the three bells are spaced out
        d = app.scan_screen.panel.decision
        assert d is not None and d.verdict == "red" and d.reason == "forged"
        assert "禁 止 通 行" in panel_text(app)
        assert "伪造" in panel_text(app)
        assert app.scan_screen.panel.has_class("-red")
        assert len(bells) == 3
        await pilot.press("f3")
        await pilot.pause()
        assert not isinstance(app.screen, OverrideScreen)
    assert events_of(community)[-1] == ("deny", "forged", 1203)


async def test_already_out_is_amber_and_override_lets_them_out(community: Community) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[1203])  # out
        await pilot.press("escape")
        await pilot.press("f2")  # nothing on screen: the next scan is forced out
        assert app.session.desk.next_direction == "exit"
        await scan(pilot, community.codes[1203])  # out again: a copy?
        d = app.scan_screen.panel.decision
        assert d is not None and d.verdict == "amber" and d.reason == "already_out"
        assert "请 核 实" in panel_text(app)
        assert "可能是复印件" in panel_text(app)
        assert app.scan_screen.panel.has_class("-amber")

        await pilot.press("f3")
        await pilot.pause()
        assert isinstance(app.screen, OverrideScreen)
        await press_digit(pilot, "4")  # other: needs words
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, OverrideScreen)
        assert app.focused is app.screen.query_one(Input)
        await type_text(pilot, "son")
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, OverrideScreen)
        d = app.scan_screen.panel.decision
        assert d is not None and d.kind == "override" and d.verdict == "green"
    override = community.store.one("select * from events where kind = 'override'")
    assert override is not None
    assert override["override_reason"] == "other" and override["note"] == "son"


async def test_override_of_a_closed_window_for_a_medical_trip(community: Community) -> None:
    community.set_policy(WINDOWED_POLICY)
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[1203])
        d = app.scan_screen.panel.decision
        assert d is not None and d.verdict == "red" and d.reason == "outside_window"
        assert "第3楼组 10:23 起可外出(还有23分钟)" in panel_text(app)
        assert "F3 特批" in panel_text(app)
        await pilot.press("f3")
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        assert options.option_count == 4
        await pilot.press("enter")  # the first reason: medical
        await pilot.pause()
        d = app.scan_screen.panel.decision
        assert d is not None and d.kind == "override" and "就医" in d.message.zh
    assert community.gate.state_of(1203).state == "out"


async def test_undo_asks_then_annuls_the_last_trip(community: Community) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[2101])
        await pilot.press("f4")
        await pilot.pause()
        assert isinstance(app.screen, UndoScreen)
        assert "2101" in plain(app.screen.query_one("#undo-what", Static))
        await pilot.press("escape")  # keep it
        await pilot.pause()
        assert community.gate.state_of(2101).state == "out"
        await pilot.press("f4")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        d = app.scan_screen.panel.decision
        assert d is not None and d.kind == "annul"
        assert "已 撤 销" in panel_text(app)
    assert community.gate.state_of(2101).state == "in"
    # Too late: two minutes later there is nothing to undo.
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[2101])
        community.clock.advance(timedelta(minutes=3))
        await pilot.press("f4")
        await pilot.pause()
        assert not isinstance(app.screen, UndoScreen)
    assert community.gate.state_of(2101).state == "out"


async def test_manual_lookup_by_number_and_by_address(community: Community) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await pilot.pause()
        assert isinstance(app.screen, LookupScreen)
        await type_text(pilot, "3-302")
        await pilot.pause()
        assert app.screen.query_one(OptionList).option_count == 1
        await pilot.press("enter")
        await pilot.pause()
        # Nothing is recorded yet: the household and where it is, then Enter records it.
        pending = app.session.desk.pending
        assert pending is not None and pending.preview.household_number == 1204
        assert app.scan_screen.panel.decision is None
        assert "在小区内" in panel_text(app) or "1204" in panel_text(app)
        assert [e[0] for e in events_of(community)] == ["shift_start"]
        await pilot.press("enter")
        await pilot.pause()
        d = app.scan_screen.panel.decision
        assert d is not None and d.household_number == 1204 and d.source == "manual"
        assert d.verdict == "green" and d.direction == "exit"
        assert "手动·未见通行证" in panel_text(app)

        await pilot.press("f5")
        await type_text(pilot, "9999")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, LookupScreen)
        assert "没有找到" in plain(app.screen.query_one("#lookup-message", Static))
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, LookupScreen)


async def test_headcount_for_the_next_scan_and_for_the_one_on_screen(
    community: Community,
) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await press_digit(pilot, "plus")
        await press_digit(pilot, "plus")
        assert app.session.desk.next_headcount == 3
        assert "下一位:自动(按该户状态) 3人" in panel_text(app)  # shown large until the scan
        await scan(pilot, community.codes[1203])
        d = app.scan_screen.panel.decision
        assert d is not None and d.headcount == 3 and d.verdict == "green"
        await press_digit(pilot, "minus")  # the verdict on screen: decided again for 2
        d = app.scan_screen.panel.decision
        assert d is not None and d.headcount == 2 and d.kind == "exit"
        assert "外出 2人" in panel_text(app)
        # A scanner's burst never sets the headcount, though passes are full of digits.
        await scan(pilot, community.codes[1204])
        assert app.scan_screen.panel.decision is not None
        assert app.scan_screen.panel.decision.headcount == 1
    kinds = [e[0] for e in events_of(community)]
    assert kinds == ["shift_start", "exit", "annul", "exit", "exit"]
    assert community.gate.state_of(1203).headcount == 2


async def test_direction_key_changes_the_verdict_on_screen(community: Community) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[1203])
        await pilot.press("f2")  # it was really someone coming back
        await pilot.pause()
        d = app.scan_screen.panel.decision
        assert d is not None and d.reason == "already_in" and d.verdict == "amber"
        await pilot.press("f2")
        await pilot.pause()
        d = app.scan_screen.panel.decision
        assert d is not None and d.verdict == "green" and d.direction == "exit"


async def test_the_verdict_clears_after_its_countdown(community: Community) -> None:
    app = gate_app(community, verdict_seconds=5)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[1203])
        assert "5秒后清除" in panel_text(app)
        community.clock.advance(timedelta(seconds=3))
        await wait_until(pilot, lambda: "2秒后清除" in panel_text(app))
        community.clock.advance(timedelta(seconds=3))
        await wait_until(pilot, lambda: app.scan_screen.panel.decision is None)
        assert "请 出 示 通 行 证" in panel_text(app)


async def test_a_scanner_burst_in_a_dialog_becomes_a_scan(community: Community) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await type_text(pilot, "12")
        await scan(pilot, community.codes[2102])
        assert not isinstance(app.screen, LookupScreen)
        d = app.scan_screen.panel.decision
        assert d is not None and d.household_number == 2102 and d.source == "wedge"


async def test_a_camera_code_shows_from_any_screen(community: Community) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f6")
        await pilot.pause()
        assert isinstance(app.screen, BoardScreen)
        app.post_message(CodeScanned(community.codes[3301], "camera", 0.0))
        await pilot.pause()
        assert app.current_mode == "scan"
        d = app.scan_screen.panel.decision
        assert d is not None and d.household_number == 3301 and d.source == "camera"


async def test_sign_in_with_a_pin_then_hand_over(community: Community) -> None:
    community.gate.set_pin("李师傅", "2468")
    app = gate_app(community, operator=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SignInScreen)
        app.post_message(CodeScanned(community.codes[1203], "camera", 0.0))  # not yet
        await pilot.pause()
        assert community.gate.state_of(1203).state == "in"
        await type_text(pilot, "李师傅")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SignInScreen)  # asks for the PIN
        await type_text(pilot, "1111")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SignInScreen)  # wrong
        await type_text(pilot, "2468")
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, SignInScreen)
        assert app.session.desk.operator == "李师傅"

        await scan(pilot, community.codes[1203])
        community.clock.advance(timedelta(hours=5))
        await pilot.press("f8")
        await pilot.pause()
        assert isinstance(app.screen, HandoverScreen)
        summary = plain(app.screen.query_one("#handover-summary", Static))
        assert "现在外出 1 户" in summary and "李师傅" in summary
        await type_text(pilot, "张阿姨")
        await pilot.press("enter")
        await pilot.pause()
        assert not isinstance(app.screen, HandoverScreen)
        assert app.session.desk.operator == "张阿姨"
        status = plain(app.scan_screen.query_one(StatusBar))
        assert "张阿姨" in status
    kinds = [(e[0], e[1]) for e in events_of(community)]
    assert kinds[-2:] == [("shift_end", "ok"), ("shift_start", "ok")]
    assert community.gate.current_operator() == "张阿姨"


async def test_language_switch_redraws_every_word(community: Community) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[1203])
        assert "放 行" in panel_text(app)
        await pilot.press("f10")
        await pilot.pause()
        assert app.session.lang == "en"
        assert "GO  AHEAD" in panel_text(app)
        assert "Bldg 3, unit 2, room 301" in panel_text(app)
        keys = plain(app.scan_screen.query_one(KeyBar))
        assert "Override" in keys and "中文" in keys
        await pilot.press("f6")
        await pilot.pause()
        table = app.screen.query_one("#board-out", DataTable)
        assert next(str(c.label) for c in table.columns.values()) == "Household"
        await pilot.press("f10")
        await pilot.pause()
        assert next(str(c.label) for c in table.columns.values()) == "户号"
        await pilot.press("escape")
        await pilot.pause()
        assert "放 行" in panel_text(app)


async def test_log_filters_and_verifies_the_chain(community: Community) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[1203])
        await scan(pilot, community.codes[1204])
        await pilot.press("f7")
        await pilot.pause()
        assert isinstance(app.screen, LogScreen)
        assert len(app.screen.events) == 3  # sign-in and two exits
        app.screen.query_one("#log-household", Input).focus()
        await type_text(pilot, "1204")
        await pilot.press("enter")
        await pilot.pause()
        assert [e.household for e in app.screen.events] == [1204]
        await pilot.press("f2")
        await app.workers.wait_for_complete()
        await pilot.pause()
        report = app.screen.report
        assert report is not None and report.ok and report.count == 3
        assert "日志完整" in plain(app.screen.query_one("#log-status", Static))


async def test_out_now_board_puts_overdue_first(community: Community) -> None:
    community.set_policy('timezone = "Asia/Shanghai"\nmax_time_out = "2h"\n')
    app = gate_app(community)
    async with app.run_test(size=(120, 40)) as pilot:
        await scan(pilot, community.codes[1203])
        community.clock.advance(timedelta(hours=3))
        await scan(pilot, community.codes[2101])
        await pilot.press("f6")
        await pilot.pause()
        table = app.screen.query_one("#board-out", DataTable)
        assert table.row_count == 2
        first = table.get_row_at(0)
        assert str(first[0]) == "1203" and "超时" in str(first[4])
        groups = app.screen.query_one("#board-groups", DataTable)
        assert groups.row_count == 3


async def test_status_bar_shows_the_sync_state_and_the_camera(community: Community) -> None:
    app = gate_app(community, sync_status=lambda lang: "12 条待传")
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        status = plain(app.scan_screen.query_one(StatusBar))
        assert "同步:12 条待传" in status and "摄像头:无" in status
        assert "测试小区" in status and "王阿姨" in status and "11-24 10:00" in status
        app.post_message(CameraChanged(FeedStatus("open", "camera 0", 29.7)))
        await pilot.pause()
        assert "摄像头:30帧/秒" in plain(app.scan_screen.query_one(StatusBar))


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_help_lists_every_key(community: Community, lang: str) -> None:
    app = gate_app(community, lang=lang)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f1")
        await pilot.pause()
        body = plain(app.screen.query_one("#help-body", Static))
        for key in ("F2", "F3", "F4", "F5", "F6", "F7", "F8", "F10", "F11", "+ -", "Ctrl+Q"):
            assert key in body
        await pilot.press("escape")
        await pilot.pause()
        assert app.screen is app.scan_screen


def test_policy_used_by_the_tests_parses() -> None:
    from menwei.core.policy import parse_policy

    assert isinstance(parse_policy(WINDOWED_POLICY), Policy)


async def test_register_a_returning_resident(community: Community) -> None:
    from menwei.screens.dialogs import RegisterScreen

    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f11")
        await pilot.pause()
        assert isinstance(app.screen, RegisterScreen)
        await type_text(pilot, "7-1-102")
        await pilot.press("tab")
        await type_text(pilot, "外地返岗,已查验")
        await pilot.press("enter")
        await pilot.pause()
        d = app.scan_screen.panel.decision
        assert d is not None and d.kind == "register" and d.household_number == 2102
        assert d.verdict == "green" and d.title.zh == "欢迎回家"
        assert community.gate.state_of(2102).state == "in"
        [event] = [e for e in community.gate.recent_events() if e.kind == "register"]
        assert event.note == "外地返岗,已查验" and event.operator == "王阿姨"
