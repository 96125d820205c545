"""What every screen of one running gate app shares: the desk, the language, the camera's state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from menwei.core.eventlog import ChainReport
from menwei.core.gate import GateService
from menwei.core.text import Text
from menwei.gateapp.desk import Desk
from menwei.gateapp.feed import FeedStatus, Presenter
from menwei.gateapp.i18n import tr
from menwei.gateapp.sound import Sound

# Seconds a verdict stays on screen before the panel clears.
VERDICT_SECONDS = 10.0


class Session:
    def __init__(
        self,
        desk: Desk,
        *,
        lang: str = "zh",
        presenter: Presenter | None = None,
        sync_status: Callable[[str], str] | None = None,
        verify_log: Callable[[], ChainReport] | None = None,
        verdict_seconds: float = VERDICT_SECONDS,
        has_camera: bool = False,
        undone: Callable[[str], None] | None = None,
        sound: Sound | None = None,
        save_settings: Callable[[], None] | None = None,
    ) -> None:
        self.desk = desk
        self.lang = lang
        self.presenter = presenter
        self.sync_status = sync_status
        self.verify_log = verify_log or desk.gate.verify_log
        self.verdict_seconds = verdict_seconds
        self.camera: FeedStatus | None = FeedStatus("starting") if has_camera else None
        self.last_presented: int | None = None
        # Called with the scanned text of an undone record, so the camera takes that card again.
        self.undone = undone
        self.sound = sound or Sound(cues=False, speech=False)
        # Writes the desk's settings (the lane chosen at sign-in) back to the settings file.
        self.save_settings = save_settings

    @property
    def gate(self) -> GateService:
        return self.desk.gate

    def t(self, key: str, **values: object) -> str:
        """The words for `key` in the current language."""
        return tr(self.lang, key, **values)

    def w(self, text: Text) -> str:
        """A core `Text` in the current language."""
        return text.get(self.lang)

    def local(self, at: datetime) -> datetime:
        return self.gate.policy.local(at)

    def now(self) -> datetime:
        return self.local(self.gate.clock.now())

    def mono(self) -> float:
        """Seconds on the gate's monotonic clock (stands still under a frozen test clock)."""
        return self.gate.clock.monotonic_ns() / 1e9
