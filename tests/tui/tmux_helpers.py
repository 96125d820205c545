"""Driving the real `menwei gate` in tmux, as a volunteer (or a USB scanner) would."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

HOUSEHOLDS = [
    (1203, "3", "2", "301", "3", 3, "normal"),
    (1204, "3", "2", "302", "3", 2, "normal"),
    (2101, "7", "1", "101", "5", 1, "elderly_alone"),
]


def make_home(root: Path) -> dict[int, str]:
    """A community of three households with passes, on the real clock; codes by household."""
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
            for row in HOUSEHOLDS:
                db.execute(
                    "insert into households (household, building, unit, room, building_group,"
                    " members, category, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
                    [*row, "2026-01-01T00:00:00.000Z"],
                )
        issued = issue(home, store, households=None, now=now, valid_until=date(2099, 12, 31))
    finally:
        store.close()
    return {p.household.number: p.code for p in issued}


class Tmux:
    """One tmux session running one command; `screen()` is what the terminal shows.

    Each test process has a tmux server of its own (`-S`, a socket of its own): a session never
    lands on a server someone else started, whose environment (a clock shifted by faketime, or
    not) it would take. The server ends with its last session; `kill` then removes the socket.
    """

    def __init__(self, name: str, command: str, width: int, height: int) -> None:
        self.name = f"{name}-{os.getpid()}"
        self.socket = Path(tempfile.gettempdir()) / f"menwei-tmux-{os.getpid()}"
        self.tmux = ["tmux", "-S", str(self.socket)]
        subprocess.run(
            [
                *self.tmux,
                "new-session",
                "-d",
                "-s",
                self.name,
                "-x",
                str(width),
                "-y",
                str(height),
                command,
            ],
            check=True,
            env={k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")},
        )

    def screen(self) -> str:
        done = subprocess.run(
            [*self.tmux, "capture-pane", "-p", "-t", self.name], capture_output=True, text=True
        )
        return done.stdout

    def alive(self) -> bool:
        done = subprocess.run([*self.tmux, "has-session", "-t", self.name], capture_output=True)
        return done.returncode == 0

    def wait_for(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text in shown:
                return shown
            time.sleep(0.02)
        raise AssertionError(f"{text!r} not on screen after {timeout} s:\n{self.screen()}")

    def wait_gone(self, text: str, timeout: float = 15.0) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            shown = self.screen()
            if text not in shown:
                return shown
            time.sleep(0.02)
        raise AssertionError(f"{text!r} still on screen after {timeout} s:\n{self.screen()}")

    def type(self, text: str) -> None:
        """Literal text in one go (a USB scanner's burst)."""
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, "-l", text], check=True)

    def key(self, *keys: str) -> None:
        subprocess.run([*self.tmux, "send-keys", "-t", self.name, *keys], check=True)

    def slowly(self, text: str, gap: float = 0.15) -> None:
        """A person typing: one key at a time."""
        for c in text:
            self.type(c)
            time.sleep(gap)

    def scan(self, code: str) -> None:
        self.type(code)
        self.key("Enter")

    def kill(self) -> None:
        subprocess.run([*self.tmux, "kill-session", "-t", self.name], capture_output=True)
        if subprocess.run([*self.tmux, "list-sessions"], capture_output=True).returncode != 0:
            self.socket.unlink(missing_ok=True)  # no server left on it


def gate_command(home: Path, lang: str, *, log: Path | None = None) -> str:
    menwei = f"{sys.executable} -m menwei gate --camera none --no-sound --lang {lang}"
    tail = f"; echo EXIT=$? > {log}; sleep 30" if log is not None else ""
    # COLUMNS/LINES in the environment (pytest's own terminal) would override the tmux size.
    return f"env -u COLUMNS -u LINES MENWEI_HOME={home} {menwei}{tail}"
