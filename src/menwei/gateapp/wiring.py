"""Putting the parts together: the one place that knows which hooks a gate service gets.

The CLI, the gate app and the scanner all open a gate through `open_gate`.
"""

from __future__ import annotations

from menwei.core.clock import Clock
from menwei.core.community import refresh_policy_from_file
from menwei.core.gate import EventHook, GateService
from menwei.core.home import Home
from menwei.core.store import Store


def event_hooks() -> list[EventHook]:
    """Hooks run inside every recorded decision's transaction (notifications queue here)."""
    hooks: list[EventHook] = []
    try:
        from menwei.notify.hooks import queue_notifications
    except ImportError:
        pass
    else:
        hooks.append(queue_notifications)
    return hooks


def open_store(home: Home) -> Store:
    return Store.open(home.db_path)


def open_gate(
    home: Home, *, clock: Clock | None = None, busy_timeout_ms: int | None = None
) -> GateService:
    """Open this home's gate: the store (refused when the file is damaged), the policy file if
    it changed, and the hooks.

    `busy_timeout_ms` shortens how long a write waits for another writer (the gate app's
    screen must not freeze for the default 10 s; it says NOT recorded and lets the next scan retry).
    """
    store = open_store(home)
    if busy_timeout_ms is not None:
        store.db.conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_ms)}")
    try:
        store.require_sound()
    except BaseException:
        store.close()
        raise
    _, warning = refresh_policy_from_file(home, store)
    gate = GateService(store, clock=clock, hooks=event_hooks())
    gate.warnings = [warning] if warning else []
    return gate
