"""Whole shifts in the real app in tmux (80x24 and 60x20, Chinese and English), traps included,
counted in the log afterwards: it must hold exactly what happened and nothing else."""

from __future__ import annotations

import json
import shutil
import sqlite3
import time
from pathlib import Path

import pytest

from menwei.core.home import Home
from menwei.core.store import Store
from tests.tui.tmux_helpers import Tmux, gate_command, make_home

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed"),
]


def log_of(home: Path) -> list[tuple[str, str, str, int | None, int | None]]:
    """(kind, reason, operator, household, headcount) of every event, oldest first."""
    store = Store.open(Home(home).db_path)
    try:
        rows = store.query(
            "select kind, reason, operator, household, headcount from events order by seq"
        )
    finally:
        store.close()
    return [(r["kind"], r["reason"], r["operator"], r["household"], r["headcount"]) for r in rows]


def test_a_chinese_shift_at_80x24_with_its_traps(tmp_path: Path) -> None:
    home = tmp_path / "home"
    codes = make_home(home)
    store = Store.open(Home(home).db_path)
    from menwei.core.gate import GateService

    GateService(store).start_shift("王阿姨")  # the last shift was never handed over
    store.close()
    app = Tmux("i9-zh", gate_command(home, "zh", log=tmp_path / "exit.txt"), 80, 24)
    try:
        shown = app.wait_for("值班签到")
        assert "王阿姨" in shown  # offered in the list, not typed into the field
        app.type("张三")
        app.key("Enter")
        app.wait_for("值班:张三")

        app.scan(codes[1203])  # a cheap scanner reads twice, 0.3 s apart
        time.sleep(0.3)
        app.scan(codes[1203])
        shown = app.wait_for("不重复记录")
        assert "放 行" in shown and "█" in shown  # the word drawn large, and in plain words

        app.scan(codes[1204].lower())  # Caps Lock on
        app.wait_for("3栋2单元302室")
        app.scan("https://qr.alipay.com/fkx0123456789")  # a payment code
        shown = app.wait_for("不 是 通 行 证")
        assert "禁 止 通 行" not in shown

        app.key("Escape")
        time.sleep(0.3)  # a terminal reads Esc and a key right after it as one Alt+key
        app.slowly("2101")  # a household number typed at the scan screen
        app.wait_for("查找住户")
        app.wait_for("7栋1单元101室")  # found as it was typed; nothing recorded
        app.key("Escape")
        app.wait_for("人数:1(+/-)")

        app.key("C-c")  # in the UI's language, never a traceback
        app.wait_for("退出门岗程序?")
        app.key("Escape")

        second = Tmux("i9-zh2", gate_command(home, "zh", log=tmp_path / "second.txt"), 80, 24)
        try:
            second.wait_for("已经在运行")
            deadline = time.monotonic() + 10
            while not (tmp_path / "second.txt").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert (tmp_path / "second.txt").read_text().strip() == "EXIT=1"
        finally:
            second.kill()
        assert "值班:张三" in app.screen()  # the first app goes on

        app.key("C-q")
        app.wait_for("F2 结束值班并退出")
        app.key("F2")
        deadline = time.monotonic() + 10
        while not (tmp_path / "exit.txt").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert (tmp_path / "exit.txt").read_text().strip() == "EXIT=0"
    finally:
        app.kill()
    assert log_of(home) == [
        ("shift_start", "ok", "王阿姨", None, None),
        ("shift_end", "ok", "王阿姨", None, None),
        ("shift_start", "ok", "张三", None, None),
        ("exit", "ok", "张三", 1203, 1),
        ("exit", "ok", "张三", 1204, 1),
        ("deny", "not_a_pass", "张三", None, None),
        ("shift_end", "ok", "张三", None, None),
    ]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_an_exit_lane_at_60x20_with_a_copy_and_a_held_log(tmp_path: Path, lang: str) -> None:
    home = tmp_path / "home"
    codes = make_home(home)
    from menwei.core.community import community_info

    store = Store.open(Home(home).db_path)
    gate_id = community_info(store).gate_id
    store.close()
    (home / "gate-settings.json").write_text(
        json.dumps({"repeat_window_s": 2, "lanes": {gate_id: "exit"}})
    )
    words = {
        "en": ("on duty: Li", "GO  AHEAD", "CHECK", "possible copy", "F3", "NOT  SAVED"),
        "zh": ("值班:李师傅", "放 行", "请 核 实", "可能是复印件", "F3", "未 记 录"),
    }[lang]
    name = "Li" if lang == "en" else "李师傅"
    app = Tmux(f"i9-{lang}", gate_command(home, lang), 60, 20)
    try:
        app.wait_for("F2")
        app.type(name)
        app.key("Enter")
        app.wait_for(words[0])
        app.scan(codes[1203])
        app.wait_for(words[1])
        time.sleep(2.5)  # past the repeat window: a second presentation
        app.scan(codes[1203])  # a copy while the owner is out, in an exit lane
        shown = app.wait_for(words[2])
        assert words[3] in shown and words[4] in shown  # reason and the F3 hint at 60x20
        assert "1203" in shown  # the household number is never cut

        app.key("Escape")
        held = sqlite3.connect(home / "menwei.db")
        held.execute("BEGIN IMMEDIATE")  # another program holds the log
        app.scan(codes[2101])
        shown = app.wait_for("█", timeout=10) and app.wait_for(
            "NOT recorded" if lang == "en" else "没有存进日志", timeout=10
        )
        held.execute("ROLLBACK")
        held.close()
        app.key("Enter")
        app.wait_gone("disk full" if lang == "en" else "磁盘满")  # the notice is closed
        app.scan(codes[2101])  # the next scan tries again
        app.wait_for("Bldg 7, unit 1, room 101" if lang == "en" else "7栋1单元101室")
        assert app.alive()
    finally:
        app.kill()
    trips = [(k, r, h) for k, r, _, h, _ in log_of(home) if not k.startswith("shift")]
    assert trips == [("exit", "ok", 1203), ("deny", "already_out", 1203), ("exit", "ok", 2101)]
