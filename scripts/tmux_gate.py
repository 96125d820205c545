"""Drive the real gate app in tmux as a volunteer would, and show what the screen said.

    python scripts/tmux_gate.py [--lang zh|en] [--size 80x24] [--keep]

It makes a small community in a temporary home, starts `menwei gate` in a tmux session (80x24 by
default), signs in, lets a USB "scanner" type a pass code and Enter (tmux send-keys), reads the
verdict with capture-pane, lets the scanner read the same pass again 0.3 s later (the same
presentation: not recorded twice), scans it again after the repeat window (a return right after
the exit: confirmed with Enter), hands the shift over, and quits (Ctrl+Q asks; Ctrl+Q again just
closes). It prints each screen, the time from the command to the sign-in screen and from the
scanner's Enter to the verdict, the app's memory and the events in the log. Exits non-zero when a
step does not show what it should or the log holds anything else.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

SESSION = f"menwei-gate-{os.getpid()}"
WORDS = {
    "zh": {
        "signin": "值班签到",
        "signed": "值班:{name}",
        "out": "放 行",
        "repeat": "不重复记录",
        "confirm": "是回来了吗",
        "home": "欢 迎 回 家",
        "quit": "退出门岗程序",
        "handover": "接班人签到",
        "idle": "请 出 示 通 行 证",
    },
    "en": {
        "signin": "Sign in for your shift",
        "signed": "on duty: {name}",
        "out": "GO  AHEAD",
        "repeat": "not recorded twice",
        "confirm": "are they really back",
        "home": "WELCOME  HOME",
        "quit": "Quit the gate app",
        "handover": "The next volunteer signs in",
        "idle": "SHOW  THE  PASS",
    },
}


def tmux(*args: str) -> str:
    done = subprocess.run(["tmux", *args], capture_output=True, text=True, check=True)
    return done.stdout


def screen() -> str:
    return tmux("capture-pane", "-p", "-t", SESSION)


def wait_for(text: str, timeout: float = 10.0) -> float:
    """Seconds until `text` is on the screen (polling every 2 ms); raises on timeout."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if text in screen():
            return time.monotonic() - start
        time.sleep(0.002)
    print(screen())
    raise SystemExit(f"FAILED: {text!r} did not appear within {timeout} s")


def show(title: str) -> None:
    print(f"--- {title} " + "-" * max(0, 76 - len(title)))
    print(screen().rstrip())


def make_home(root: Path) -> dict[int, str]:
    """A community of three households with passes; returns the codes by household."""
    from menwei.core.community import init_community
    from menwei.core.home import Home
    from menwei.core.issuing import issue
    from menwei.core.store import Store

    home = Home(root)
    now = datetime.now(UTC)
    init_community(home, community=4201, name="钟楼居民区", gate="东门", now=now)
    store = Store.open(home.db_path)
    try:
        with store.write() as db:
            for row in [
                (1203, "3", "2", "301", "3", 3, "normal"),
                (1204, "3", "2", "302", "3", 2, "normal"),
                (2101, "7", "1", "101", "5", 1, "elderly_alone"),
            ]:
                db.execute(
                    "insert into households (household, building, unit, room, building_group,"
                    " members, category, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
                    [*row, "2026-01-01T00:00:00.000Z"],
                )
        issued = issue(home, store, households=None, now=now, valid_until=date(2099, 12, 31))
    finally:
        store.close()
    return {p.household.number: p.code for p in issued}


def log_kinds(root: Path) -> list[str]:
    from menwei.core.home import Home
    from menwei.core.store import Store

    store = Store.open(Home(root).db_path)
    try:
        return [r["kind"] for r in store.query("select kind from events order by seq")]
    finally:
        store.close()


def rss_mb(pane_pid: int) -> float | None:
    """Peak resident memory of the app (the pane runs it directly)."""
    try:
        for line in Path(f"/proc/{pane_pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lang", choices=["zh", "en"], default="zh")
    parser.add_argument("--size", default="80x24", help="terminal size, e.g. 60x20")
    parser.add_argument("--keep", action="store_true", help="keep the home directory")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is not installed (apt-get install tmux)")
        return 2
    words = WORDS[args.lang]
    root = Path(tempfile.mkdtemp(prefix="menwei-tmux-"))
    codes = make_home(root / "home")
    # A short repeat window, so that the walk need not wait 30 s to scan the pass again.
    (root / "home" / "gate-settings.json").write_text('{"repeat_window_s": 2}')
    width, height = args.size.split("x")
    menwei = [sys.executable, "-m", "menwei", "gate", "--camera", "none", "--no-sound"]
    menwei += ["--lang", args.lang]
    # COLUMNS/LINES inherited from a parent terminal would override the tmux size.
    command = " ".join(
        ["exec", "env", "-u", "COLUMNS", "-u", "LINES", f"MENWEI_HOME={root / 'home'}", *menwei]
    )
    started = time.monotonic()
    tmux("new-session", "-d", "-s", SESSION, "-x", width, "-y", height, command)
    try:
        pane_pid = int(tmux("list-panes", "-t", SESSION, "-F", "#{pane_pid}").split()[0])
        wait_for(words["signin"])
        ready = time.monotonic() - started
        show("sign-in")

        name = "王阿姨" if args.lang == "zh" else "Wang"
        tmux("send-keys", "-t", SESSION, "-l", name)
        tmux("send-keys", "-t", SESSION, "Enter")
        wait_for(words["signed"].format(name=name))

        # The USB scanner: the whole code typed in one go, then Enter.
        tmux("send-keys", "-t", SESSION, "-l", codes[1203])
        tmux("send-keys", "-t", SESSION, "Enter")
        to_verdict = wait_for(words["out"])
        show("scan: going out")

        time.sleep(0.3)  # a cheap scanner reads the same pass twice
        tmux("send-keys", "-t", SESSION, "-l", codes[1203])
        tmux("send-keys", "-t", SESSION, "Enter")
        wait_for(words["repeat"])
        show("the same pass 0.3 s later: not recorded twice")

        time.sleep(2.5)  # past the repeat window: presented again, seconds after going out
        tmux("send-keys", "-t", SESSION, "-l", codes[1203])
        tmux("send-keys", "-t", SESSION, "Enter")
        wait_for(words["confirm"])
        show("a return seconds after the exit: asks first")
        tmux("send-keys", "-t", SESSION, "Enter")
        back = wait_for(words["home"])
        show("confirmed: coming home")

        tmux("send-keys", "-t", SESSION, "Escape")
        wait_for(words["idle"])
        tmux("send-keys", "-t", SESSION, "F8")
        wait_for(words["handover"])
        show("handover")
        nxt = "李师傅" if args.lang == "zh" else "Li"
        tmux("send-keys", "-t", SESSION, "-l", nxt)
        tmux("send-keys", "-t", SESSION, "Enter")
        wait_for(words["signed"].format(name=nxt))
        show("next volunteer signed in")
        memory = rss_mb(pane_pid)

        tmux("send-keys", "-t", SESSION, "C-q")
        wait_for(words["quit"])
        show("quit: hand over, end the shift, or just close")
        tmux("send-keys", "-t", SESSION, "C-q")
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline and Path(f"/proc/{pane_pid}").exists():
            time.sleep(0.05)
        print()
        print(f"ready (command to sign-in screen):     {ready * 1000:7.0f} ms")
        print(f"scanner Enter to verdict on screen:    {to_verdict * 1000:7.0f} ms")
        print(f"Enter on the question to verdict:      {back * 1000:7.0f} ms")
        if memory is not None:
            print(f"peak memory of the app:                {memory:7.0f} MB")
        kinds = log_kinds(root / "home")
        print("events in the log:", ", ".join(kinds))
        expected = ["shift_start", "exit", "entry", "shift_end", "shift_start"]
        if kinds != expected:
            print(f"FAILED: the log should hold exactly {expected}")
            return 1
        print("OK: signed in, out, one event for a double read, back home, handed over")
        return 0
    finally:
        subprocess.run(["tmux", "kill-session", "-t", SESSION], capture_output=True)
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
