"""The gate laptop's own settings: one small JSON file in the home, `gate-settings.json`.

    {
      "repeat_window_s": 30,     # the same pass again within this time is the same presentation
      "return_confirm_s": 180,   # a return this soon after its own exit asks for a key first
      "sound": true,             # the verdict's tone through the speakers
      "speech": true,            # the verdict spoken in Mandarin (espeak-ng, where installed)
      "lanes": {"G1": "exit"}    # per gate: exit, entry or auto (both ways); chosen at sign-in
    }

A missing or broken file gives the defaults: the gate must open whatever this file says.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from menwei.core.home import Home
from menwei.core.model import DirectionChoice

log = logging.getLogger(__name__)

FILE_NAME = "gate-settings.json"
LANES: tuple[DirectionChoice, ...] = ("auto", "exit", "entry")
REPEAT_WINDOW_S = 30.0
RETURN_CONFIRM_S = 180.0


@dataclass(frozen=True)
class GateSettings:
    repeat_window_s: float = REPEAT_WINDOW_S
    return_confirm_s: float = RETURN_CONFIRM_S
    sound: bool = True
    speech: bool = True
    lanes: dict[str, str] = field(default_factory=dict)

    def lane(self, gate_id: str) -> DirectionChoice:
        value = self.lanes.get(gate_id, "auto")
        for lane in LANES:
            if lane == value:
                return lane
        return "auto"

    def with_lane(self, gate_id: str, lane: DirectionChoice) -> GateSettings:
        return replace(self, lanes={**self.lanes, gate_id: lane})


def settings_path(home: Home) -> Path:
    return home.root / FILE_NAME


def _number(raw: dict[str, Any], key: str, default: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        log.warning("gate settings: %s must be a number of seconds, using %s", key, default)
        return default
    return float(value)


def load_settings(home: Home) -> GateSettings:
    """The settings in the home, or the defaults where the file is missing or wrong."""
    try:
        raw = json.loads(settings_path(home).read_text(encoding="utf-8"))
    except FileNotFoundError:
        return GateSettings()
    except (OSError, ValueError) as exc:
        log.warning("gate settings unreadable (%s): using the defaults", exc)
        return GateSettings()
    if not isinstance(raw, dict):
        return GateSettings()
    lanes = raw.get("lanes", {})
    return GateSettings(
        repeat_window_s=_number(raw, "repeat_window_s", REPEAT_WINDOW_S),
        return_confirm_s=_number(raw, "return_confirm_s", RETURN_CONFIRM_S),
        sound=raw.get("sound", True) is not False,
        speech=raw.get("speech", True) is not False,
        lanes={str(k): str(v) for k, v in lanes.items()} if isinstance(lanes, dict) else {},
    )


def save_settings(home: Home, settings: GateSettings) -> None:
    """Write the settings (atomically: a half-written file must not lose the others)."""
    path = settings_path(home)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(asdict(settings), ensure_ascii=False, indent=2), encoding="utf-8")
    os.replace(tmp, path)
