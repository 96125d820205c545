"""The board says today or tomorrow, the log takes a group as it is shown and marks undone trips."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from textual.widgets import DataTable, Input

from menwei.gateapp.words import group_key, next_window
from menwei.screens.log import LogScreen
from tests.conftest import Community
from tests.tui.helpers import gate_app, scan, type_text

SH = ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(
    ("typed", "key"),
    [
        ("第5楼组", "5"),
        ("5楼组", "5"),
        ("5", "5"),
        ("group 5", "5"),
        (" 第 8 楼组 ", "8"),
        ("返岗人员", "返岗人员"),
        ("", None),
    ],
)
def test_a_group_is_found_as_it_is_shown(typed: str, key: str | None) -> None:
    assert group_key(typed) == key


def test_the_next_window_says_today_or_tomorrow() -> None:
    now = datetime(2026, 11, 24, 16, 30, tzinfo=SH)
    assert next_window("zh", now, now.replace(hour=17, minute=0)) == "今天 17:00(还有31分钟)"
    assert next_window("en", now, now.replace(hour=18, minute=45)) == "today 18:45 (in 2 h 16 min)"
    assert next_window("zh", now, now + timedelta(hours=16)) == "明天 08:30"
    assert next_window("en", now, now + timedelta(hours=16)) == "tomorrow 08:30"
    assert next_window("en", now, now + timedelta(days=3)) == "11-27 16:30"


@pytest.mark.anyio
async def test_log_group_filter_takes_the_shown_name_and_marks_undone_trips(
    community: Community,
) -> None:
    app = gate_app(community)
    async with app.run_test(size=(120, 40)) as pilot:
        await scan(pilot, community.codes[2101])  # group 5
        await pilot.press("f4")
        await pilot.pause()
        await pilot.press("enter")  # undone
        await pilot.pause()
        await scan(pilot, community.codes[2102])  # group 5
        await scan(pilot, community.codes[1203])  # group 3
        await pilot.press("f7")
        await pilot.pause()
        assert isinstance(app.screen, LogScreen)
        app.screen.query_one("#log-group", Input).focus()
        await type_text(pilot, "第5楼组")
        await pilot.press("enter")
        await pilot.pause()
        assert {e.household for e in app.screen.events} == {2101, 2102}
        table = app.screen.query_one(DataTable)
        kinds = [str(table.get_row_at(i)[1]) for i in range(table.row_count)]
        assert "外出(已撤销)" in kinds and "外出" in kinds and "撤销" in kinds
