"""What the gate app needs from a camera: a blocking `run` it calls in a worker thread.

The app knows nothing of OpenCV or decoders; `menwei.gateapp.camera` adapts the scanner's parts to this.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

FeedState = Literal[
    "starting", "open", "lost", "retrying", "ended", "closed", "failed", "simulated"
]


@dataclass(frozen=True)
class FeedStatus:
    """How the camera is doing, for the status bar."""

    state: FeedState
    message: str = ""
    fps: float = 0.0
    # What to tell the person holding a pass the camera sees but cannot read (issue 15), in
    # both languages; empty when there is nothing to say.
    hint_zh: str = ""
    hint_en: str = ""

    def hint(self, lang: str) -> str:
        return self.hint_zh if lang == "zh" else self.hint_en


# on_code(text, seen_at): a new presentation of a code; seen_at is time.monotonic() of the frame.
CodeCallback = Callable[[str, float], None]
StatusCallback = Callable[[FeedStatus], None]


class CodeFeed(Protocol):
    """A source of scanned codes that runs until `stop` is set, checking it every frame."""

    label: str

    def run(self, on_code: CodeCallback, on_status: StatusCallback, stop: threading.Event) -> None:
        """Read codes until `stop` is set or the source ends; release the device before returning."""

    def forget(self, text: str) -> None:
        """Let the next sighting of `text` count as a new presentation (after an undo)."""


@runtime_checkable
class Presenter(Protocol):
    """A simulated camera: the volunteer picks a printed pass to 'hold up' to it."""

    def households(self) -> list[int]:
        """The households whose printed pass can be shown."""

    def present(self, household: int) -> None:
        """Show that household's printed pass to the camera once."""
