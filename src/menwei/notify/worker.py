"""The gate app's background sender: a thread with its own database connection.

It collects what time has made due (overdue returns, anomalies, the daily summary) and sends
the outbox, every `interval` seconds, at once after `wake()`, and within `poll` seconds of a
decision queueing a message (a cheap look at the outbox: an escort call should not wait for the
next round while the resident waits at the gate). A scan never waits for it: the gate's transaction only inserts a row,
and this thread writes only in short transactions, never across a network call.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from menwei.core.clock import Clock, SystemClock, iso
from menwei.core.home import Home
from menwei.core.store import Store
from menwei.notify.due import collect_due
from menwei.notify.sender import Deliver, SendReport, send_due

log = logging.getLogger(__name__)


class OutboxWorker:
    """Start with `start()`, stop with `stop()`; `last_report` and `last_error` say how it went."""

    def __init__(
        self,
        home: Home,
        *,
        interval: float = 30.0,
        poll: float = 2.0,
        clock: Clock | None = None,
        deliver: Deliver | None = None,
        on_report: Callable[[SendReport], None] | None = None,
    ) -> None:
        self.home = home
        self.interval = interval
        self.poll = poll
        self.clock: Clock = clock or SystemClock()
        self.deliver = deliver
        self.on_report = on_report
        self.last_report: SendReport | None = None
        self.last_error: str | None = None
        self.rounds = 0
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._asked = 0  # wake-ups asked for
        self._served = 0  # wake-ups a finished round has covered
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        self._thread = threading.Thread(target=self._run, name="menwei-notify", daemon=True)
        self._thread.start()

    def wake(self) -> None:
        """Send now rather than at the next interval."""
        with self._cond:
            self._asked += 1
        self._wake.set()

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Wait until a round that began after the last `wake()` has finished."""
        with self._cond:
            wanted = self._asked
            return self._cond.wait_for(
                lambda: self._served >= wanted or self._thread is None, timeout
            )

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)
            self._thread = None

    def _now(self) -> datetime:
        return self.clock.now()

    def _run(self) -> None:
        store: Store | None = None
        try:
            store = Store.open(self.home.db_path)
            while not self._stop.is_set():
                self._wake.clear()
                with self._cond:
                    covers = self._asked
                self._round(store)
                self.rounds += 1
                with self._cond:
                    self._served = covers
                    self._cond.notify_all()
                self._idle(store)
        except Exception as exc:  # the gate goes on without notifications; say why
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.exception("notification sender stopped")
        finally:
            with self._cond:
                self._served = self._asked
                self._cond.notify_all()
            if store is not None:
                store.close()

    def _idle(self, store: Store) -> None:
        """Wait for the next round: the interval, a wake-up, or a fresh message in the outbox."""
        waited = 0.0
        while waited < self.interval and not self._stop.is_set():
            step = min(self.poll, self.interval - waited)
            if self._wake.wait(step):
                return
            waited += step
            try:
                if fresh_messages(store, self._now()):
                    return
            except Exception:  # a locked database: look again at the next step
                continue

    def _round(self, store: Store) -> None:
        try:
            collect_due(store, self._now())
            report = send_due(store, self._now, deliver=self.deliver)
        except Exception as exc:
            # A locked database or a broken target must not end the thread: next round.
            self.last_error = f"{type(exc).__name__}: {exc}"
            log.warning("notification round failed: %s", self.last_error)
            return
        self.last_error = None
        self.last_report = report
        if self.on_report is not None:
            self.on_report(report)


def fresh_messages(store: Store, now: datetime) -> bool:
    """Whether a message waits that was never tried yet (not one backing off after a failure)."""
    row = store.one(
        "select exists(select 1 from outbox where status = 'pending' and attempts = 0"
        " and withdrawn_at is null and next_attempt_at <= ?) as x",
        [iso(now)],
    )
    return bool(row and row["x"])


def start_background_sender(home: Home, *, interval: float = 30.0) -> OutboxWorker:
    """The gate app's sender, started."""
    worker = OutboxWorker(home, interval=interval)
    worker.start()
    return worker
