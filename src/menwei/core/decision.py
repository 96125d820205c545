"""The gate's answer to one scan: a value the screens render and the CLI prints."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from menwei.core.clock import iso
from menwei.core.model import Direction, Household, Verdict
from menwei.core.text import Text

TITLES = {
    ("green", "exit"): Text("放行", "Go ahead"),
    ("green", "entry"): Text("欢迎回家", "Welcome home"),
    ("amber", None): Text("请核实", "Check"),
    ("red", None): Text("禁止通行", "Stop"),
}


def title_for(verdict: Verdict, direction: Direction | None) -> Text:
    if verdict == "green":
        return TITLES[("green", direction or "exit")]
    return TITLES[(verdict, None)]


@dataclass(frozen=True)
class LastUse:
    """When and where a household's pass was last used (shown on already_out / already_in)."""

    at: str
    gate_id: str


@dataclass(frozen=True)
class Decision:
    verdict: Verdict
    reason: str
    direction: Direction | None
    household_number: int | None
    household: Household | None
    serial: int | None
    headcount: int
    at: datetime
    title: Text
    message: Text
    rule: Text | None = None
    recorded: bool = False
    event_id: str | None = None
    seq: int | None = None
    kind: str | None = None
    window: str | None = None
    overdue: bool = False
    overridable: bool = False
    last_use: LastUse | None = None
    source: str = "cli"
    operator: str = ""
    policy_version: int | None = None
    proposed: Direction | None = None

    def text(self, lang: str = "zh") -> str:
        parts = [self.message.get(lang)]
        if self.rule is not None:
            parts.append(self.rule.get(lang))
        return (":" if lang == "zh" else ": ").join(parts)

    def to_json(self, lang: str = "zh") -> dict[str, Any]:
        h = self.household
        return {
            "verdict": self.verdict,
            "reason": self.reason,
            "direction": self.direction,
            "household": self.household_number,
            "building": h.building if h else None,
            "unit": h.unit if h else None,
            "room": h.room if h else None,
            "group": h.group if h else None,
            "serial": self.serial,
            "headcount": self.headcount,
            "at": iso(self.at),
            "title": self.title.get(lang),
            "message": self.text(lang),
            "messages": {"zh": self.text("zh"), "en": self.text("en")},
            "rule": self.rule.get(lang) if self.rule else None,
            "recorded": self.recorded,
            "event_id": self.event_id,
            "seq": self.seq,
            "kind": self.kind,
            "window": self.window,
            "overdue": self.overdue,
            "overridable": self.overridable,
            "last_use": (
                {"at": self.last_use.at, "gate": self.last_use.gate_id} if self.last_use else None
            ),
            "source": self.source,
            "operator": self.operator,
            "policy_version": self.policy_version,
        }
