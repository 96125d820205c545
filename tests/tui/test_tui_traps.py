"""The volunteer's traps, each driven through the real app with Pilot and counted in the log:
a double read, a copy in an exit lane, Caps Lock, a payment code, a name left from the last shift,
digits typed at the scan screen, a slow override, a database that refuses the write."""

from __future__ import annotations

import sqlite3
from datetime import timedelta

import pytest
from textual import events
from textual.widgets import Input, OptionList, Static

from menwei.core.operators import add_operator, set_listed_only
from menwei.gateapp.messages import CodeScanned
from menwei.gateapp.settings import GateSettings, load_settings
from menwei.screens.dialogs import (
    LookupScreen,
    NotSavedScreen,
    OverrideScreen,
    PresentScreen,
    QuitScreen,
    RegisterScreen,
)
from menwei.screens.shift import SignInScreen
from tests.conftest import Community
from tests.tui.helpers import (
    KEY_SETTLE_S,
    gate_app,
    plain,
    press_digit,
    scan,
    type_text,
)

pytestmark = pytest.mark.anyio


def trips(community: Community) -> list[tuple[str, str, int | None, int | None]]:
    """(kind, reason, household, headcount) of every event but shift changes, oldest first."""
    rows = community.store.query(
        "select kind, reason, household, headcount from events "
        "where kind not in ('shift_start', 'shift_end') order by seq"
    )
    return [(r["kind"], r["reason"], r["household"], r["headcount"]) for r in rows]


def panel_text(app: object) -> str:
    screen = app.scan_screen  # type: ignore[attr-defined]
    return "\n".join(plain(w) for w in screen.panel.query(Static))


# --- one presentation, one decision -----------------------------------------------------------


async def test_a_double_read_0_3_s_apart_is_one_event(community: Community) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[1203])
        community.clock.advance(timedelta(seconds=0.3))
        await scan(pilot, community.codes[1203])
        d = app.scan_screen.panel.decision
        assert d is not None and d.direction == "exit"  # still the first decision
        assert "不重复记录" in panel_text(app)
        # The camera sees the same card too: still the same presentation.
        app.post_message(CodeScanned(community.codes[1203], "camera", 0.0))
        await pilot.pause()
        community.clock.advance(timedelta(seconds=25))
        app.post_message(CodeScanned(community.codes[1203], "camera", 0.0))
        await pilot.pause()
    assert trips(community) == [("exit", "ok", 1203, 1)]
    assert community.gate.state_of(1203).state == "out"


async def test_the_repeat_window_comes_from_the_settings(community: Community) -> None:
    app = gate_app(community, settings=GateSettings(repeat_window_s=5, return_confirm_s=0))
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[1203])
        community.clock.advance(timedelta(seconds=6))
        await scan(pilot, community.codes[1203])
    assert [t[0] for t in trips(community)] == ["exit", "entry"]


async def test_a_return_seconds_after_its_exit_waits_for_enter(community: Community) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[1203])
        community.clock.advance(timedelta(seconds=40))
        await scan(pilot, community.codes[1203])
        assert app.session.desk.pending is not None
        assert "刚外出 40秒 又扫码:是回来了吗?" in panel_text(app)
        assert trips(community) == [("exit", "ok", 1203, 1)]
        await pilot.press("escape")  # not back: nothing recorded
        await pilot.pause()
        assert trips(community) == [("exit", "ok", 1203, 1)]
        community.clock.advance(timedelta(seconds=40))
        await scan(pilot, community.codes[1203])
        await pilot.press("enter")
        await pilot.pause()
        d = app.scan_screen.panel.decision
        assert d is not None and d.direction == "entry" and d.recorded
    assert [t[0] for t in trips(community)] == ["exit", "entry"]


# --- lanes ------------------------------------------------------------------------------------


async def test_a_copy_in_an_exit_lane_is_amber_with_where_and_when(community: Community) -> None:
    app = gate_app(community, settings=GateSettings(lanes={community.gate.gate_id: "exit"}))
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[1203])
        community.clock.advance(timedelta(minutes=30))
        await scan(pilot, community.codes[1203])  # the copy, while the owner is out
        d = app.scan_screen.panel.decision
        assert d is not None and d.verdict == "amber" and d.reason == "already_out"
        assert app.scan_screen.panel.has_class("-amber")
        text = panel_text(app)
        assert "请 核 实" in text and "可能是复印件" in text and "11-24 10:00" in text
        # F2 still flips one scan: the owner really coming back.
        await pilot.press("f2")
        await pilot.pause()
        d = app.scan_screen.panel.decision
        assert d is not None and d.verdict == "green" and d.direction == "entry"
        assert app.session.desk.next_direction == "exit"
    assert [t[:2] for t in trips(community)] == [
        ("exit", "ok"),
        ("deny", "already_out"),
        ("entry", "ok"),
    ]


async def test_the_lane_is_chosen_at_sign_in_and_remembered(community: Community) -> None:
    app = gate_app(community, operator=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SignInScreen)
        await pilot.press("f2")  # both ways -> exit lane
        await type_text(pilot, "王阿姨")
        await pilot.press("enter")
        await pilot.pause()
        assert app.session.desk.lane == "exit"
    assert load_settings(community.home).lane(community.gate.gate_id) == "exit"
    again = gate_app(community)
    assert again.session.desk.lane == "exit"


# --- scanner quirks ---------------------------------------------------------------------------


async def test_a_pass_read_in_lower_case_is_green(community: Community) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[1203].lower())
        d = app.scan_screen.panel.decision
        assert d is not None and d.verdict == "green" and d.household_number == 1203
        # ...and it is the same pass as the upper-case one: a double read, one event.
        await scan(pilot, community.codes[1203])
    assert trips(community) == [("exit", "ok", 1203, 1)]


async def test_a_payment_code_is_calm_grey_not_a_red_alarm(community: Community) -> None:
    app = gate_app(community)
    bells: list[int] = []
    app.bell = lambda: bells.append(1)  # type: ignore[method-assign]
    async with app.run_test(size=(80, 24)) as pilot:
        app.post_message(CodeScanned("https://qr.alipay.com/fkx12345abcde", "camera", 0.0))
        await pilot.pause(0.8)
        d = app.scan_screen.panel.decision
        assert d is not None and d.reason == "not_a_pass" and d.verdict != "red"
        panel = app.scan_screen.panel
        assert panel.has_class("-grey") and not panel.has_class("-red")
        assert "不 是 通 行 证" in panel_text(app)
        assert len(bells) == 1  # one tone, not three
    assert trips(community) == [("deny", "not_a_pass", None, None)]


# --- no input traps ---------------------------------------------------------------------------


async def test_sign_in_after_an_open_shift_records_the_new_name_exactly(
    community: Community,
) -> None:
    community.gate.start_shift("王阿姨")  # the last shift was never handed over
    app = gate_app(community, operator=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert isinstance(app.screen, SignInScreen)
        name = app.screen.query_one("#signin-name", Input)
        assert name.value == ""  # nothing to append to
        names = app.screen.query_one("#signin-recent", OptionList)
        assert names.option_count == 1 and names.get_option_at_index(0).id == "王阿姨"
        await type_text(pilot, "张三")
        await pilot.press("enter")
        await pilot.pause()
        assert app.session.desk.operator == "张三"
    rows = community.store.query(
        "select kind, operator from events where kind like 'shift%' order by seq"
    )
    assert [(r["kind"], r["operator"]) for r in rows] == [
        ("shift_start", "王阿姨"),
        ("shift_end", "王阿姨"),
        ("shift_start", "张三"),
    ]


async def test_a_recent_name_is_picked_from_the_list(community: Community) -> None:
    community.gate.start_shift("李师傅")
    community.gate.end_shift("李师傅")
    app = gate_app(community, operator=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await pilot.press("down")
        await pilot.press("enter")
        await pilot.pause()
        assert app.session.desk.operator == "李师傅"


async def test_only_listed_volunteers_may_sign_in_when_the_committee_says_so(
    community: Community,
) -> None:
    add_operator(community.store, "王阿姨")
    set_listed_only(community.store, True)
    app = gate_app(community, operator=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await type_text(pilot, "路人甲")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, SignInScreen)
        assert "不在居委会的值班名单上" in plain(app.screen.query_one("#signin-error", Static))
        assert app.session.desk.operator is None


async def test_typed_digits_look_up_and_never_change_the_headcount(community: Community) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        # At a person's speed: the first digit opens the lookup, the rest go into it.
        await press_digit(pilot, "1")
        assert isinstance(app.screen, LookupScreen)
        await type_text(pilot, "203")
        await pilot.pause()
        assert app.screen.query_one(Input).value == "1203"
        assert app.session.desk.next_headcount == 1
        await pilot.press("enter")
        await pilot.pause()
        assert app.session.desk.pending is not None  # shown, not recorded
        assert trips(community) == []
        await pilot.press("escape")  # changed their mind: nothing recorded
        await pilot.pause()
        assert trips(community) == []

        # Fast typing (every 20 ms, like a practised hand) opens the lookup with all the digits.
        for c in "2101":
            app.post_message(events.Key(c, c))
        await pilot.pause(KEY_SETTLE_S)
        await pilot.pause()
        assert isinstance(app.screen, LookupScreen)
        assert app.screen.query_one(Input).value == "2101"
        assert app.session.desk.next_headcount == 1
        await pilot.press("escape")
        await pilot.pause()
    assert trips(community) == []


async def test_f5_shows_where_the_household_is_and_records_manual_on_enter(
    community: Community,
) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[2102])
        community.clock.advance(timedelta(minutes=30))
        await pilot.press("escape")
        await pilot.press("f5")
        await type_text(pilot, "2102")
        await pilot.press("enter")
        await pilot.pause()
        text = panel_text(app)
        assert "手动登记:没有看到通行证" in text and "返回" in text
        assert len(trips(community)) == 1
        await pilot.press("enter")
        await pilot.pause()
    last = community.store.one("select * from events order by seq desc limit 1")
    assert last is not None and last["kind"] == "entry" and last["source"] == "manual"
    assert last["scan"] == "manual:2102"  # no pass seen


async def test_f11_and_f9_start_empty(community: Community) -> None:
    from menwei.gateapp.camera import SimulatedCamera

    community.home.passes_dir.mkdir(parents=True, exist_ok=True)
    app = gate_app(community, camera=SimulatedCamera(community.home.passes_dir))
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[1203])
        await pilot.press("f11")
        await pilot.pause()
        assert isinstance(app.screen, RegisterScreen)
        assert app.screen.query_one("#register-household", Input).value == ""
        await pilot.press("escape")
        app.session.last_presented = 1203
        await pilot.press("f9")
        await pilot.pause()
        assert isinstance(app.screen, PresentScreen)
        assert app.screen.query_one(Input).value == ""


# --- headcount and undo -----------------------------------------------------------------------


async def test_headcount_capped_at_members_and_a_return_takes_its_exits(
    community: Community,
) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        for _ in range(4):
            await press_digit(pilot, "plus")
        assert app.session.desk.next_headcount == 5
        await scan(pilot, community.codes[1204])  # two live there
        d = app.scan_screen.panel.decision
        assert d is not None and d.headcount == 2
        await press_digit(pilot, "plus")  # on screen: no more than live there
        assert app.scan_screen.panel.decision is not None
        assert app.scan_screen.panel.decision.headcount == 2
        community.clock.advance(timedelta(minutes=45))
        await pilot.press("escape")
        await scan(pilot, community.codes[1204])
        d = app.scan_screen.panel.decision
        assert d is not None and d.direction == "entry" and d.headcount == 2
    assert [(t[0], t[3]) for t in trips(community)] == [("exit", 2), ("entry", 2)]


async def test_undo_has_its_own_look_and_the_real_count(community: Community) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await press_digit(pilot, "plus")
        await press_digit(pilot, "plus")
        await scan(pilot, community.codes[1203])
        await pilot.press("f4")
        await pilot.pause()
        await pilot.press("enter")
        await pilot.pause()
        panel = app.scan_screen.panel
        assert panel.has_class("-undone") and not panel.has_class("-amber")
        text = panel_text(app)
        assert "已撤销:外出 3人" in text
        assert "exit" not in text  # no English in the Chinese words


# --- slow hands -------------------------------------------------------------------------------


async def test_a_40_s_override_keeps_its_refusal(community: Community) -> None:
    app = gate_app(community, verdict_seconds=5)  # the refusal's countdown: 15 s
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[1203])
        await pilot.press("escape")
        await pilot.press("f2")
        await scan(pilot, community.codes[1203])  # already out: amber, overridable
        await pilot.press("f3")
        await pilot.pause()
        assert isinstance(app.screen, OverrideScreen)
        community.clock.advance(timedelta(seconds=40))  # the volunteer reads, asks, thinks
        await pilot.pause(0.6)  # the screen's timer runs meanwhile
        assert isinstance(app.screen, OverrideScreen)
        await press_digit(pilot, "1")  # medical
        await pilot.press("enter")
        await pilot.pause()
        d = app.scan_screen.panel.decision
        assert d is not None and d.kind == "override" and d.verdict == "green"
    assert [t[0] for t in trips(community)] == ["exit", "deny", "override"]


# --- faults never crash -----------------------------------------------------------------------


async def test_a_held_write_lock_says_not_recorded_and_the_next_scan_retries(
    community: Community,
) -> None:
    community.store.db.conn.execute("PRAGMA busy_timeout = 200")
    other = sqlite3.connect(community.home.db_path)
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        other.execute("BEGIN IMMEDIATE")  # another program holds the write lock
        await scan(pilot, community.codes[1203])
        assert isinstance(app.screen, NotSavedScreen)
        assert "未 记 录" in plain(app.screen.query_one("#notsaved-big", Static)) or (
            "▄" in plain(app.screen.query_one("#notsaved-big", Static))
        )
        assert "纸上登记" in plain(app.screen.query_one("#notsaved-what", Static))
        assert trips(community) == []
        other.execute("ROLLBACK")  # the fault clears
        await pilot.press("enter")
        await pilot.pause()
        await scan(pilot, community.codes[1203])  # read again: recorded this time
        d = app.scan_screen.panel.decision
        assert d is not None and d.recorded and d.direction == "exit"
        assert app.is_running
    other.close()
    assert trips(community) == [("exit", "ok", 1203, 1)]


async def test_a_full_disk_says_not_recorded_and_the_app_goes_on(community: Community) -> None:
    db = community.store.db.conn
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await scan(pilot, community.codes[3301])
        db.execute(f"PRAGMA max_page_count = {pages + 1}")  # the disk is full now
        for number in (1203, 1204, 2101, 2102):
            await scan(pilot, community.codes[number])
            if isinstance(app.screen, NotSavedScreen):
                break
        assert isinstance(app.screen, NotSavedScreen)
        db.execute("PRAGMA max_page_count = 1073741823")  # space again
        await pilot.press("escape")
        await pilot.pause()
        await scan(pilot, community.codes[number])
        d = app.scan_screen.panel.decision
        assert d is not None and d.recorded and d.household_number == number
        assert app.is_running


async def test_sign_in_while_the_log_is_held_says_not_recorded(community: Community) -> None:
    community.store.db.conn.execute("PRAGMA busy_timeout = 200")
    other = sqlite3.connect(community.home.db_path)
    other.execute("BEGIN IMMEDIATE")
    app = gate_app(community, operator=None)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        await type_text(pilot, "王阿姨")
        await pilot.press("enter")
        await pilot.pause()
        assert isinstance(app.screen, NotSavedScreen)
        assert app.is_running and app.session.desk.operator is None
        other.execute("ROLLBACK")
        await pilot.press("enter")  # close the notice: the sign-in is still there
        await pilot.pause()
        assert isinstance(app.screen, SignInScreen)
        await pilot.press("enter")  # the name is still typed: try again
        await pilot.pause()
        assert app.session.desk.operator == "王阿姨"
    other.close()


# --- the shift, start to end ------------------------------------------------------------------


@pytest.mark.parametrize(("lang", "words"), [("zh", "退出门岗程序"), ("en", "Quit the gate app")])
async def test_ctrl_c_and_ctrl_q_ask_about_handover_in_the_ui_language(
    community: Community, lang: str, words: str
) -> None:
    app = gate_app(community, lang=lang)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("ctrl+c")
        await pilot.pause()
        assert isinstance(app.screen, QuitScreen)
        assert words in plain(app.screen.query_one("#quit-title", Static))
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, QuitScreen) and app.is_running
        await pilot.press("ctrl+q")
        await pilot.pause()
        await pilot.press("f2")  # end the shift and quit
        await pilot.pause()
    last = community.store.one("select kind, operator from events order by seq desc limit 1")
    assert last is not None and (last["kind"], last["operator"]) == ("shift_end", "王阿姨")


async def test_a_read_only_log_says_not_recorded(community: Community) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        community.store.db.conn.execute("PRAGMA query_only = ON")  # the file cannot be written
        await scan(pilot, community.codes[1203])
        assert isinstance(app.screen, NotSavedScreen)
        community.store.db.conn.execute("PRAGMA query_only = OFF")
        await pilot.press("enter")
        await pilot.pause()
        await scan(pilot, community.codes[1203])
        d = app.scan_screen.panel.decision
        assert d is not None and d.recorded
    assert trips(community) == [("exit", "ok", 1203, 1)]


async def test_handover_names_overdue_time_in_words(community: Community) -> None:
    community.set_policy('timezone = "Asia/Shanghai"\nmax_time_out = "2h"\n')
    app = gate_app(community, lang="en")
    async with app.run_test(size=(120, 40)) as pilot:
        await scan(pilot, community.codes[1203])
        community.clock.advance(timedelta(hours=2, minutes=30))
        await pilot.press("escape")
        await pilot.press("f8")
        await pilot.pause()
        summary = plain(app.screen.query_one("#handover-summary", Static))
        assert "for 2 h 30 min" in summary


async def test_plus_and_minus_change_a_household_typed_in_before_it_is_recorded(
    community: Community,
) -> None:
    app = gate_app(community)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.press("f5")
        await type_text(pilot, "1203")
        await pilot.press("enter")
        await pilot.pause()
        await press_digit(pilot, "plus")
        await press_digit(pilot, "plus")
        await press_digit(pilot, "plus")  # three live there: no fourth
        pending = app.session.desk.pending
        assert pending is not None and pending.headcount == 3
        assert "按回车将记录:外出 3人" in panel_text(app)
        await pilot.press("enter")
        await pilot.pause()
    assert trips(community) == [("exit", "ok", 1203, 3)]
