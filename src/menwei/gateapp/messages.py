"""Messages between the camera thread, the keyboard and the screens (past tense, small)."""

from __future__ import annotations

from textual.message import Message

from menwei.gateapp.feed import FeedStatus


class CodeScanned(Message):
    """A code was read: by the camera, a USB scanner (wedge), or pasted."""

    def __init__(self, text: str, source: str, seen_at: float) -> None:
        super().__init__()
        self.text = text
        self.source = source
        self.seen_at = seen_at  # time.monotonic() when it was read


class CameraChanged(Message):
    """The camera opened, dropped out, came back, or reports its frame rate."""

    def __init__(self, status: FeedStatus) -> None:
        super().__init__()
        self.status = status


class LanguageChanged(Message):
    """The volunteer switched the language; every screen redraws its words."""

    def __init__(self, lang: str) -> None:
        super().__init__()
        self.lang = lang
