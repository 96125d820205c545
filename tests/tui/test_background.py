"""The gate app's background thread, and a gate service seeing reference data change under it."""

from __future__ import annotations

import time

from menwei.core.community import adopt_policy
from menwei.core.store import Store
from menwei.gateapp.background import Background
from tests.conftest import Community


def test_background_reports_an_unenrolled_gate_and_stops(community: Community) -> None:
    bg = Background(community.home, sync_every=0.05, notify_every=0.05)
    bg.start()
    deadline = time.monotonic() + 5
    while bg.status("en") == "not synced" and time.monotonic() < deadline:
        time.sleep(0.02)
    bg.stop()
    assert bg.status("zh") != "" and bg.status("en") != "not synced"


def test_a_policy_changed_by_another_connection_applies_at_the_next_scan(
    community: Community,
) -> None:
    c = community
    other = Store.open(c.home.db_path)
    adopt_policy(other, '[[windows]]\ngroups = ["3"]\nstart = "11:00"\nend = "12:00"\n')
    other.close()
    d = c.gate.decide(c.codes[1203], operator="t")
    assert d.reason == "outside_window" and d.policy_version == 2
