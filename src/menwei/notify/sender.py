"""Delivering the outbox through apprise, one target at a time.

Each target gets its own `Apprise` object so its success is known on its own (one `notify()`
over several URLs answers with one boolean for all). apprise is imported here only, when there
is something to send: it is slow to import and the gate never needs it to decide a scan.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from menwei.core.store import Store
from menwei.core.text import Text
from menwei.notify import outbox
from menwei.notify.outbox import OutboxRow, Target


class Deliver(Protocol):
    def __call__(self, target: Target, title: str, body: str, severity: str) -> str | None:
        """Send one message to one target; None when it arrived, else why not."""


def apprise_deliver() -> Deliver:
    """The real delivery: apprise, one object per target URL (kept for the run)."""
    import apprise

    cache: dict[str, Any] = {}
    types = {
        "info": apprise.NotifyType.INFO,
        "warning": apprise.NotifyType.WARNING,
        "failure": apprise.NotifyType.FAILURE,
    }

    def deliver(target: Target, title: str, body: str, severity: str) -> str | None:
        ap = cache.get(target.url)
        if ap is None:
            ap = apprise.Apprise()
            if not ap.add(target.url):
                return "apprise does not understand this URL"
            cache[target.url] = ap
        try:
            result = ap.notify(
                body=body, title=title, notify_type=types.get(severity, apprise.NotifyType.INFO)
            )
        except Exception as exc:  # a plugin's bug must not stop the other targets
            return f"{type(exc).__name__}: {exc}"
        if result:
            return None
        return _why(result) or "the target did not accept the message"

    return deliver


def _why(result: Any) -> str | None:
    """The last warning or error apprise logged for a failed send (apprise 2 keeps them)."""
    logs = getattr(result, "logs", None)
    if logs is None:
        return None
    entries = [e for e in logs() if getattr(e, "level", "") in ("WARNING", "ERROR", "CRITICAL")]
    return str(entries[-1].message) if entries else None


@dataclass
class SendReport:
    """What one pass over the outbox did."""

    sent: list[str] = field(default_factory=list)  # keys now delivered to every target
    failed: list[str] = field(default_factory=list)  # keys still waiting after a failure
    errors: dict[str, list[str]] = field(default_factory=dict)  # key -> "target #2: why"
    no_target: list[str] = field(default_factory=list)
    skipped: int = 0  # taken by another sender meanwhile

    @property
    def ok(self) -> bool:
        return not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "sent": self.sent,
            "failed": self.failed,
            "errors": self.errors,
            "no_target": self.no_target,
            "skipped": self.skipped,
        }


def send_due(
    store: Store,
    now: Callable[[], datetime],
    *,
    deliver: Deliver | None = None,
    force: bool = False,
    limit: int = 100,
    rng: random.Random | None = None,
) -> SendReport:
    """Send what is due (everything waiting with `force`), recording each target's result.

    `now` is called for each timestamp, so a slow target does not date the next one wrongly.
    The database is written only in short transactions between network calls.
    """
    report = SendReport()
    rows = outbox.due(store, now(), force=force, limit=limit)
    if not rows:
        return report
    send = deliver or apprise_deliver()
    for row in rows:
        claimed = outbox.claim(store, row, now())
        if claimed is None:
            report.skipped += 1
            continue
        _send_one(store, claimed, send, now, report, rng)
    return report


def _send_one(
    store: Store,
    row: OutboxRow,
    send: Deliver,
    now: Callable[[], datetime],
    report: SendReport,
    rng: random.Random | None,
) -> None:
    targets = outbox.targets_for(store, row)
    if not targets:
        outbox.mark_waiting(store, row, now())
        report.no_target.append(row.key)
        return
    done = outbox.delivered(store, row.id)
    errors = []
    for target in targets:
        if target.id in done:
            continue
        title, body = row.text(target.lang)
        error = send(target, title, body, row.severity)
        outbox.record_delivery(store, row.id, target.id, ok=error is None, error=error, now=now())
        if error is not None:
            errors.append(f"target #{target.id}: {error}")
    if errors:
        outbox.mark_failed(store, row, "; ".join(errors), now(), rng)
        report.failed.append(row.key)
        report.errors[row.key] = errors
    else:
        outbox.mark_sent(store, row.id, now())
        report.sent.append(row.key)


def send_test(
    targets: list[Target], title: Text, body: Text, *, deliver: Deliver | None = None
) -> dict[int, str | None]:
    """Send a test message straight to these targets (not through the outbox): id -> error."""
    send = deliver or apprise_deliver()
    return {t.id: send(t, title.get(t.lang), body.get(t.lang), "info") for t in targets}
