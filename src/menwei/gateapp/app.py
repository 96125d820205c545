"""The gate app: `make_app` puts the gate service, the camera and the screens together.

The app itself only routes: keys to the screens (a USB scanner's burst becomes a scan whatever
has focus), codes from the camera thread to the scan screen, F-keys between the areas.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from functools import partial
from typing import ClassVar

from textual import events, work
from textual.app import App
from textual.binding import Binding, BindingType
from textual.reactive import reactive
from textual.screen import ModalScreen
from textual.timer import Timer
from textual.widgets import Input, TextArea
from textual.worker import get_current_worker

from menwei.core.clock import Clock
from menwei.core.gate import GateService
from menwei.core.home import Home
from menwei.core.shift import verify_home_log
from menwei.gateapp.desk import Desk, DeskError
from menwei.gateapp.feed import CodeFeed, FeedStatus, Presenter
from menwei.gateapp.i18n import tr
from menwei.gateapp.keygate import PASS_PREFIX, KeyGate
from menwei.gateapp.messages import CameraChanged, CodeScanned
from menwei.gateapp.session import VERDICT_SECONDS, Session
from menwei.gateapp.settings import GateSettings, load_settings, save_settings
from menwei.gateapp.sound import Sound
from menwei.screens.base import GateModal, GateScreen
from menwei.screens.board import BoardScreen
from menwei.screens.dialogs import HelpScreen, NotSavedScreen, QuitScreen
from menwei.screens.log import LogScreen
from menwei.screens.scan import ScanScreen
from menwei.screens.shift import HandoverScreen, SignInScreen
from menwei.screens.widgets import StatusBar

AREAS = ("scan", "board", "log")
# The app waits this long for another writer (sync, a CLI command) before saying NOT recorded:
# long enough for any normal write, short enough that the volunteer is not left staring.
APP_BUSY_TIMEOUT_MS = 3000


class GateApp(App[None]):
    TITLE = "门卫 menwei"
    ENABLE_COMMAND_PALETTE = False
    DEFAULT_MODE = "scan"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "ask_quit", show=False, priority=True),
        Binding("ctrl+c", "ask_quit", show=False, priority=True),
        Binding("f1", "help", show=False),
        Binding("f6", "area('board')", show=False),
        Binding("f7", "area('log')", show=False),
        Binding("f8", "handover", show=False),
        Binding("f10", "language", show=False),
        Binding("escape", "area('scan')", show=False),
    ]

    # The screen state everything else follows: changing it redraws what depends on it.
    language: reactive[str] = reactive("zh", init=False)
    camera: reactive[FeedStatus | None] = reactive(None, init=False, always_update=True)

    def __init__(
        self,
        session: Session,
        *,
        feed: CodeFeed | None = None,
        operator: str | None = None,
    ) -> None:
        super().__init__()
        self.session = session
        self.set_reactive(GateApp.language, session.lang)
        self.set_reactive(GateApp.camera, session.camera)
        self.feed = feed
        self.start_operator = operator
        self.keygate: KeyGate[events.Key] = KeyGate()
        self._flush_timer: Timer | None = None
        self.scan_screen = ScanScreen(session)
        self.add_mode("scan", lambda: self.scan_screen)
        self.add_mode("board", partial(BoardScreen, session))
        self.add_mode("log", partial(LogScreen, session))
        self.ready_at: float | None = None

    def on_mount(self) -> None:
        self.theme = "textual-dark"
        if self.start_operator:
            self.session.desk.sign_in(self.start_operator)
            self.relabel_all()
        else:
            self.push_screen(SignInScreen(self.session), self._signed_in)
        if self.feed is not None:
            self._run_camera(self.feed)
        self.call_after_refresh(self._mark_ready)

    @work(thread=True, exclusive=True, group="warm", exit_on_error=False)
    def _warm_words(self) -> None:
        """Draw the verdict words once, off the UI thread, so no scan waits for the font."""
        from menwei.core.decision import TITLES
        from menwei.gateapp.bigtext import banner

        width = max(40, self.size.width - 4)
        langs = (self.session.lang, "en" if self.session.lang == "zh" else "zh")
        for lang in langs:
            pairs = [(t.get(lang), v) for (v, _), t in TITLES.items()]
            pairs += [(tr(lang, "look.grey"), "grey"), (tr(lang, "ask.title"), "amber")]
            for words, look in pairs:
                banner(words, look, width, self.scan_screen.panel.big_rows)

    def on_resize(self, event: events.Resize) -> None:
        """The scan screen lays itself out for the terminal even under a dialog."""
        if self.scan_screen.is_mounted:
            self.scan_screen.fit(event.size)

    def _mark_ready(self) -> None:
        self.ready_at = time.monotonic()
        self._warm_words()

    def _signed_in(self, name: str | None) -> None:
        self.relabel_all()

    # --- areas and dialogs ----------------------------------------------------------------------

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "ask_quit":
            return not isinstance(self.screen, QuitScreen)
        return not (action in ("area", "help", "handover") and isinstance(self.screen, ModalScreen))

    def action_ask_quit(self) -> None:
        """Ctrl+Q or Ctrl+C: ask whether to hand over, end the shift, or just close."""
        if self.session.desk.operator is None:
            self.exit()
            return

        def done(answer: str | None) -> None:
            if answer == "close":
                self.exit()
            elif answer == "handover":
                self.action_handover()
            elif answer == "finish":
                try:
                    self.session.desk.sign_out()
                except DeskError as error:
                    self.scan_screen.tell(error)
                    return
                self.exit()

        self.push_screen(QuitScreen(self.session), done)

    async def action_area(self, area: str) -> None:
        if area in AREAS:
            await self.switch_mode(area)

    def action_help(self) -> None:
        self.push_screen(HelpScreen(self.session))

    def action_handover(self) -> None:
        self.push_screen(HandoverScreen(self.session), self._signed_in)

    def action_language(self) -> None:
        self.language = "en" if self.language == "zh" else "zh"

    def watch_language(self, lang: str) -> None:
        """Every open screen and dialog redraws its words in the new language."""
        self.session.lang = lang
        self.relabel_all()

    def watch_camera(self, status: FeedStatus | None) -> None:
        self.session.camera = status
        for bar in self.screen.query(StatusBar):
            bar.refresh_status()

    def relabel_all(self) -> None:
        for screen in self.screen_stack:
            if isinstance(screen, GateScreen | GateModal):
                screen.relabel()

    # --- codes ----------------------------------------------------------------------------------

    async def on_code_scanned(self, message: CodeScanned) -> None:
        """A code from the camera or a USB scanner: decided and shown at once, wherever we were."""
        if self.session.desk.operator is None:
            self.bell()
            self.notify(tr(self.session.lang, "error.sign_in_first"), severity="error")
            return
        # A new scan replaces the verdict the open dialog was about; the same pass read again
        # (a double read, camera and scanner both) leaves the dialog alone.
        if self.session.desk.repeat_of(message.text) is None:
            while isinstance(self.screen, ModalScreen) and not isinstance(
                self.screen, SignInScreen | NotSavedScreen | QuitScreen
            ):
                self.pop_screen()
            if self.current_mode != "scan":
                await self.switch_mode("scan")
        self.scan_screen.take_scan(message.text, message.source, message.seen_at)

    def on_camera_changed(self, message: CameraChanged) -> None:
        self.camera = message.status

    @work(thread=True, exclusive=True, group="camera", exit_on_error=False)
    def _run_camera(self, feed: CodeFeed) -> None:
        """The camera loop: posts what it reads, stops when the worker is cancelled."""
        stop: threading.Event = get_current_worker().cancelled_event

        def on_code(text: str, seen_at: float) -> None:
            self.post_message(CodeScanned(text, "camera", seen_at))

        def on_status(status: FeedStatus) -> None:
            self.post_message(CameraChanged(status))

        try:
            feed.run(on_code, on_status, stop)
        except Exception as exc:  # reported in the status bar; the gate goes on without it
            self.post_message(CameraChanged(FeedStatus("failed", str(exc))))

    # --- the keyboard: a USB scanner types too ---------------------------------------------------

    async def on_event(self, event: events.Event) -> None:
        if isinstance(event, events.Key) and not event.is_forwarded:
            await self._gate_key(event)
            return
        if isinstance(event, events.Paste) and event.text.startswith(PASS_PREFIX):
            self.post_message(CodeScanned(event.text.rstrip("\r\n"), "wedge", time.monotonic()))
            return
        await super().on_event(event)

    async def _gate_key(self, event: events.Key) -> None:
        at = event.time  # when the key arrived, however long the loop took to get to it
        outcome = self.keygate.key(
            event,
            char=event.character if event.is_printable else None,
            enter=event.key == "enter",
            at=at,
            text_field=isinstance(self.focused, Input | TextArea),
        )
        await self._hand_on(outcome.release)
        if outcome.scan is not None:
            self.post_message(CodeScanned(outcome.scan, "wedge", at))
        elif outcome.forward:
            await super().on_event(event)
        self._arm_flush()

    def _arm_flush(self) -> None:
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        if self.keygate.holding:
            self._flush_timer = self.set_timer(self.keygate.hold_s, self._flush_keys)

    async def _flush_keys(self) -> None:
        self._flush_timer = None
        await self._hand_on(self.keygate.flush())

    async def _hand_on(self, keys: list[events.Key]) -> None:
        """Hand held keys on; digits typed at the scan screen start a household lookup."""
        digits = [k for k in keys if k.character is not None and k.character.isdigit()]
        if keys and len(digits) == len(keys) and self.screen is self.scan_screen:
            self.scan_screen.action_lookup("".join(k.character or "" for k in digits))
            return
        for held in keys:
            await super().on_event(held)


def make_app(
    home: Home,
    *,
    gate: GateService | None = None,
    camera: CodeFeed | str | None = None,
    lang: str = "zh",
    clock: Clock | None = None,
    operator: str | None = None,
    sync_status: Callable[[str], str] | None = None,
    verdict_seconds: float = VERDICT_SECONDS,
    settings: GateSettings | None = None,
    sound: Sound | None = None,
) -> GateApp:
    """The gate app for `home`.

    `camera` is a feed, or a source as `menwei gate --camera` takes it ("0", a file, "demo" for
    the simulated camera, "none"); `operator` signs that volunteer in without asking (tests,
    kiosks); `sync_status(lang)` returns a short text for the status bar's sync slot.
    `settings` default to the home's `gate-settings.json`; `sound` to the laptop's speakers as
    the settings allow.
    """
    if gate is None:
        from menwei.gateapp.wiring import open_gate

        gate = open_gate(home, clock=clock, busy_timeout_ms=APP_BUSY_TIMEOUT_MS)
    if isinstance(camera, str):
        from menwei.gateapp.camera import build_feed

        feed = build_feed(camera, home)
    else:
        feed = camera
    if settings is None:
        settings = load_settings(home)
    if sound is None:
        sound = Sound(cues=settings.sound, speech=settings.speech)
    desk = Desk(gate, settings)

    def save() -> None:
        save_settings(home, desk.settings)

    def undone(text: str) -> None:
        if feed is not None:
            feed.forget(text)

    session = Session(
        desk,
        lang=lang,
        presenter=feed if isinstance(feed, Presenter) else None,
        sync_status=sync_status,
        verify_log=partial(verify_home_log, home),
        verdict_seconds=verdict_seconds,
        has_camera=feed is not None,
        undone=undone,
        sound=sound,
        save_settings=save,
    )
    return GateApp(session, feed=feed, operator=operator)
