"""One gate app per home: a second one is refused and never touches the first one's shift.

The running app holds an exclusive `flock` on `<home>/gate.lock` (released by the kernel when the
process ends, however it ends, so a crash never leaves a stale lock). The file says who holds it.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
from pathlib import Path
from types import TracebackType

from menwei.core.errors import MenweiError
from menwei.core.home import Home

LOCK_NAME = "gate.lock"


class AppAlreadyRunning(MenweiError):
    """Another gate app has this home open."""


class HomeLock:
    def __init__(self, home: Home) -> None:
        self.path: Path = home.root / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> HomeLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = ""
            with contextlib.suppress(OSError):
                holder = os.pread(fd, 64, 0).decode("ascii", "replace").strip()
            os.close(fd)
            who = f" (pid {holder})" if holder else ""
            raise AppAlreadyRunning(
                f"门岗程序已经在运行{who}:一台电脑、一个资料目录只能开一个,请切换到已打开的窗口。"
                f"\nThe gate app is already running on this home{who}: switch to that window; "
                "a second one would end its shift."
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> HomeLock:
        return self.acquire()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()
