"""The gate app's background work: sync with the server when online, and send notifications.

One thread with its own database connections (a sqlite connection never crosses threads). The
status bar reads only the last outcome this thread left behind, so it never waits on the network.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING

from menwei.core.home import Home
from menwei.core.text import Text

if TYPE_CHECKING:
    from menwei.notify.worker import OutboxWorker

log = logging.getLogger(__name__)


class Background:
    def __init__(self, home: Home, *, sync_every: float = 60.0, notify_every: float = 30.0) -> None:
        self.home = home
        self.sync_every = sync_every
        self.notify_every = notify_every
        self._status = Text("未同步", "not synced")
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._notifier: OutboxWorker | None = None

    def status(self, lang: str) -> str:
        return self._status.get(lang)

    def start(self) -> None:
        from menwei.notify.worker import start_background_sender

        self._notifier = start_background_sender(self.home, interval=self.notify_every)
        self._thread = threading.Thread(target=self._run, name="menwei-sync", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._notifier is not None:
            self._notifier.stop()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        from menwei.core.store import Store
        from menwei.sync.client import sync_once
        from menwei.sync.status import sync_status

        store = Store.open(self.home.db_path)
        try:
            while not self._stop.is_set():
                status = sync_status(store)
                if status.enrolled:
                    try:
                        sync_once(self.home, store=store, retries=0, timeout=10)
                    except Exception as exc:  # offline or refused: recorded, shown, retried
                        log.info("background sync: %s", exc)
                    status = sync_status(store)
                    if self._notifier is not None:
                        self._notifier.wake()
                self._status = status.text
                self._stop.wait(self.sync_every)
        finally:
            store.close()
