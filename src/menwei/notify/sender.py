"""Delivering the outbox through apprise: each message to each target is its own delivery.

A fresh `Apprise` object is built for every message. apprise's Matrix plugin, given an access
token, keeps one transaction id per object: a second message through the same object reuses it,
and the homeserver drops it as a retransmission while answering 200. With a Matrix token, the
transaction id is also made stable per outbox message and target, so a retry after the homeserver
stored a message but died before answering is recognised by the homeserver as the same message.
apprise is imported here only, when there is something to send: it is slow to import and the gate
never needs it to decide a scan.
"""

from __future__ import annotations

import hashlib
import logging
import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from menwei.core.store import Store
from menwei.core.text import Text
from menwei.notify import matrix, outbox
from menwei.notify.messages import compose, failure_words
from menwei.notify.outbox import OutboxRow, Target

# Failures that concern the target rather than the message: the rest of a run skips the target.
TARGET_DOWN = (matrix.CANNOT_CONNECT, matrix.LOGIN_REFUSED)


class Deliver(Protocol):
    def __call__(
        self, target: Target, title: str, body: str, severity: str, txn: str | None = None
    ) -> str | None:
        """Send one message to one target; None when the target accepted it, else why not
        (`code: detail`, see `messages.failure_words`). `txn` names the message stably, for
        targets that can recognise a retry."""


def transaction_id(row_key: str, target_id: int) -> str:
    """The same id every time this message is sent to this target (Matrix: `PUT .../send/{txn}`)."""
    digest = hashlib.sha256(row_key.encode()).hexdigest()[:24]
    return f"menwei.{digest}.{target_id}"


def renders_rich(plugin: Any) -> bool:
    """Whether the chat shows formatted text: Matrix does (as HTML), as do services whose own
    format is Markdown or HTML (apprise converts our HTML to theirs); plain text elsewhere."""
    if plugin.protocol in matrix.MATRIX_SCHEMES or plugin.secure_protocol in matrix.MATRIX_SCHEMES:
        return True
    native = plugin.notify_format
    first = native[0] if isinstance(native, (tuple, list)) else native
    return str(getattr(first, "value", first)) in ("markdown", "html")


_CAUSES = (
    (
        matrix.CANNOT_CONNECT,
        re.compile(
            r"connection error|connect(ion)? ?refused|timed? ?out|name or service not known", re.I
        ),
    ),
    (
        matrix.LOGIN_REFUSED,
        re.compile(
            r"invalid token|verification failed|unauthori[sz]ed|error=40[13]\b|forbidden", re.I
        ),
    ),
    (matrix.CANNOT_JOIN, re.compile(r"could not join", re.I)),
)


def cause(warnings_logged: list[str]) -> str:
    """The one cause behind apprise's warnings (they repeat, and the last is rarely the cause)."""
    for code, pattern in _CAUSES:
        for line in warnings_logged:
            if pattern.search(line):
                return code
    return "not_accepted: " + (warnings_logged[-1] if warnings_logged else "")


def apprise_deliver() -> Deliver:
    """The real delivery: apprise, a new object for every message."""
    import apprise
    import urllib3

    # apprise's warnings are read from the result; unhandled, Python would print each on stderr.
    logging.getLogger("apprise").addHandler(logging.NullHandler())
    logging.getLogger("apprise").propagate = False
    # With `verify=no` (a self-signed homeserver) urllib3 would warn on every request: the user
    # asked for it, once, in the URL.
    urllib3.disable_warnings(urllib3.exceptions.InsecureRequestWarning)
    types = {
        "info": apprise.NotifyType.INFO,
        "warning": apprise.NotifyType.WARNING,
        "failure": apprise.NotifyType.FAILURE,
    }

    checked: dict[str, str | None] = {}

    def deliver(
        target: Target, title: str, body: str, severity: str, txn: str | None = None
    ) -> str | None:
        if matrix.is_matrix(target.url):
            # Once per run: the room may have been removed since `notify add` checked it, and
            # apprise would then make a new room nobody reads and call the message sent.
            if target.url not in checked:
                problems = matrix.probe(target.url).problems
                checked[target.url] = str(problems[0]) if problems else None
            if checked[target.url] is not None:
                return checked[target.url]
        ap = apprise.Apprise()
        if not ap.add(target.url):
            return "bad_url"
        plugin: Any = ap[0]
        rich = renders_rich(plugin)
        if txn and matrix.is_matrix(target.url) and matrix.uses_token(plugin):
            # apprise would otherwise pick a random id per object: the homeserver then cannot
            # tell a retry of this message from a new one.
            plugin.access_token = plugin.password
            plugin.transaction_id = txn
        try:
            result = ap.notify(
                body=compose(title, body, rich=rich),
                title="",
                body_format=apprise.NotifyFormat.HTML if rich else apprise.NotifyFormat.TEXT,
                notify_type=types.get(severity, apprise.NotifyType.INFO),
            )
        except Exception as exc:  # a plugin's bug must not stop the other targets
            return f"not_accepted: {type(exc).__name__}: {exc}"
        if result:
            return None
        return cause(_warnings(result))

    return deliver


def _warnings(result: Any) -> list[str]:
    """The warnings and errors apprise logged for a failed send (apprise 2 keeps them)."""
    logs = getattr(result, "logs", None)
    if logs is None:
        return []
    return [
        str(e.message)
        for e in logs()
        if getattr(e, "level", "") in ("WARNING", "ERROR", "CRITICAL")
    ]


@dataclass
class SendReport:
    """What one pass over the outbox did."""

    sent: list[str] = field(default_factory=list)  # keys now delivered to every target
    failed: list[str] = field(default_factory=list)  # keys still waiting after a failure
    errors: dict[str, list[str]] = field(default_factory=dict)  # key -> "target #2: why"
    # target id -> the one cause it failed for in this run, and how many messages wait for it
    causes: dict[int, str] = field(default_factory=dict)
    waiting_for: dict[int, int] = field(default_factory=dict)
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
            "targets_failed": [
                {
                    "target": tid,
                    "code": why.partition(":")[0],
                    "error": failure_words(why).zh,
                    "error_en": failure_words(why).en,
                    "waiting": self.waiting_for.get(tid, 0),
                }
                for tid, why in self.causes.items()
            ],
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
    The database is written only in short transactions between network calls. A target that
    cannot be reached or refuses the login is not tried again in the same run: its messages wait.
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
        down = report.causes.get(target.id)
        if down is not None and down.partition(":")[0] in TARGET_DOWN:
            error: str | None = down  # known from an earlier message of this run: no call
        else:
            title, body = row.text(target.lang)
            error = send(target, title, body, row.severity, transaction_id(row.key, target.id))
        outbox.record_delivery(store, row.id, target.id, ok=error is None, error=error, now=now())
        if error is not None:
            report.causes.setdefault(target.id, error)
            report.waiting_for[target.id] = report.waiting_for.get(target.id, 0) + 1
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
    """Send a test message straight to these targets (not through the outbox): id -> error.

    A Matrix target is asked first (by `apprise_deliver`) whether its rooms exist and take the
    bot: a misspelt alias would otherwise make apprise create a new, empty room and report success.
    """
    send = deliver or apprise_deliver()
    return {t.id: send(t, title.get(t.lang), body.get(t.lang), "info") for t in targets}
