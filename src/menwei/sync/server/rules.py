"""The anomaly rules that judge one new event by the reference data in effect at its time.

Pure: the backend loads a `ReferenceView` for a batch's events, `event_findings` says which
anomalies each event raises, and the backend writes them (`AnomalyBook`). The sequence rules
(double exit, entry without exit) fold a household's trips: `menwei.sync.anomalies.fold_trips`.
Stream rules (gap, chain break, sequence reuse) are part of the ingest plan (`plan.py`).

Adding a rule: write a function `(view, row) -> AnomalyPut | None` below and call it from
`event_findings`; give its kind words in `menwei.sync.anomalies.KIND_WORDS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from menwei.core.clock import iso, parse_iso
from menwei.core.policy import Policy, parse_policy
from menwei.core.state import direction_of
from menwei.sync.anomalies import anomaly_id
from menwei.sync.protocol import CLOCK_WARN_MS
from menwei.sync.server.plan import AnomalyPut, ClockNote, NewEventRow


class PolicyCache:
    """Parsed policies by digest (parsing TOML for every exit would be wasteful)."""

    def __init__(self) -> None:
        self._parsed: dict[str, Policy | None] = {}

    def get(self, sha: str, text: str) -> Policy | None:
        if sha not in self._parsed:
            try:
                self._parsed[sha] = parse_policy(text)
            except Exception:  # a policy the server cannot read judges nothing
                self._parsed[sha] = None
        return self._parsed[sha]


@dataclass(frozen=True)
class ReferenceView:
    """The reference data a batch's events are judged by, read once per batch."""

    policies: tuple[tuple[str, str, str], ...]  # (sha256, body, created_at) by home version
    households: Mapping[int, tuple[str, str]]  # household -> (building group, category)
    floors: Mapping[int, tuple[tuple[int, str], ...]]  # household -> (min serial, revoked at)
    cache: PolicyCache = field(default_factory=PolicyCache)

    def policy_at(self, wall_time: str) -> tuple[str, Policy] | None:
        """The policy in effect at a time: the last adopted before it (else the first one)."""
        chosen = None
        for sha, body, created in self.policies:
            if chosen is None or created <= wall_time:
                chosen = (sha, body)
        if chosen is None:
            return None
        policy = self.cache.get(chosen[0], chosen[1])
        return None if policy is None else (chosen[0], policy)

    def revoked_floor(self, household: int, serial: int, wall_time: str) -> tuple[int, str] | None:
        """The highest floor above `serial` published by `wall_time`, with its time."""
        found = [
            (s, at) for s, at in self.floors.get(household, ()) if at <= wall_time and s > serial
        ]
        return max(found) if found else None


def event_findings(
    view: ReferenceView, row: NewEventRow, *, received_at: datetime
) -> list[AnomalyPut | ClockNote]:
    """The anomalies one new event raises by itself."""
    found: list[AnomalyPut | ClockNote] = []
    if row.kind == "entry" and row.overdue:
        found.append(
            AnomalyPut(
                anomaly_id("overdue_return", row.event_id),
                "overdue_return",
                household=row.household,
                gate_id=row.gate_id,
                event_ids=(row.event_id,),
                detail=f"household {row.household} came back late at {row.gate_id} {row.wall_time}",
                sort_key=row.key,
            )
        )
    for rule in (revoked_pass_used, exit_outside_window):
        put = rule(view, row)
        if put is not None:
            found.append(put)
    note = clock_suspect(row, received_at)
    if note is not None:
        found.append(note)
    return found


def clock_suspect(r: NewEventRow, received_at: datetime) -> ClockNote | None:
    future_limit = iso(received_at + timedelta(milliseconds=CLOCK_WARN_MS))
    offset = r.clock_offset_ms
    if not ((offset is not None and abs(offset) > CLOCK_WARN_MS) or r.wall_time > future_limit):
        return None
    why = (
        f"clock offset {offset / 1000:+.0f} s"
        if offset is not None and abs(offset) > CLOCK_WARN_MS
        else f"event time {r.wall_time} is ahead of the server's {iso(received_at)}"
    )
    return ClockNote(
        r.gate_id,
        r.wall_time[:10],
        r.event_id,
        f"gate {r.gate_id}: events on {r.wall_time[:10]} carry a suspect time ({why})",
    )


def revoked_pass_used(view: ReferenceView, r: NewEventRow) -> AnomalyPut | None:
    if r.household is None:
        return None
    if r.kind == "deny" and r.reason == "revoked":
        detail = f"household {r.household}: revoked pass (serial {r.serial}) refused at {r.gate_id}"
    elif r.kind in ("exit", "entry", "override") and r.serial is not None:
        floor = view.revoked_floor(r.household, r.serial, r.wall_time)
        if floor is None:
            return None
        detail = (
            f"household {r.household}: pass serial {r.serial} let through at {r.gate_id} "
            f"{r.wall_time}, after it was revoked ({floor[1]}); the gate did not know yet"
        )
    else:
        return None
    return AnomalyPut(
        anomaly_id("revoked_pass_used", r.event_id),
        "revoked_pass_used",
        household=r.household,
        gate_id=r.gate_id,
        event_ids=(r.event_id,),
        detail=detail,
        sort_key=r.key,
    )


def exit_outside_window(view: ReferenceView, r: NewEventRow) -> AnomalyPut | None:
    if r.household is None or direction_of(r.kind, r.direction) != "exit":
        return None
    if r.kind == "override":
        if r.reason != "outside_window":
            return None
        detail = (
            f"household {r.household} let out at {r.gate_id} {r.wall_time} outside its window "
            f"by override ({r.override_reason or '?'})"
        )
    else:
        found = view.policy_at(r.wall_time)
        hh = view.households.get(r.household)
        if found is None or hh is None:
            return None
        sha, policy = found
        if not policy.windows:
            return None
        status = policy.window_status(hh[0], hh[1], parse_iso(r.wall_time))
        if not status.has_windows or status.open_now is not None:
            return None
        local = policy.local(parse_iso(r.wall_time))
        detail = (
            f"household {r.household} (group {hh[0]}) went out at {r.gate_id} {local:%Y-%m-%d %H:%M}"
            f" local time; the policy in effect then (sha256 {sha[:12]}) had no window open"
        )
    return AnomalyPut(
        anomaly_id("exit_outside_window", r.event_id),
        "exit_outside_window",
        household=r.household,
        gate_id=r.gate_id,
        event_ids=(r.event_id,),
        detail=detail,
        sort_key=r.key,
    )
