"""The verdict's sound: a short cue through the laptop's speakers, and the verdict spoken.

Many terminals mute the bell, so the cues are real audio: small WAV files made here (no sound
files to ship), played by whatever the laptop has (`paplay`, `pw-play` or `aplay`, when it has a
sound server or card), and the verdict spoken in Mandarin: espeak-ng renders it to WAV once and
the same player plays it. Everything runs on one background
thread fed by a queue: a scan never waits for a speaker, and a cue that is already stale (a newer
verdict came) is dropped rather than played late.

Cues: green two rising notes, amber two level notes, red three low buzzes, "not a pass" one
soft tone, an undo one falling note.
"""

from __future__ import annotations

import io
import logging
import math
import os
import queue
import shutil
import struct
import subprocess
import tempfile
import threading
import wave
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger(__name__)

RATE = 22050
PLAYERS = ("paplay", "pw-play", "aplay")
SPEAKERS = ("espeak-ng", "espeak")
PLAY_TIMEOUT_S = 5.0

# (frequency Hz, seconds, shape) per note; 0 Hz is a pause.
CUES: dict[str, tuple[tuple[float, float, str], ...]] = {
    "green": ((660.0, 0.12, "sine"), (0.0, 0.03, "sine"), (990.0, 0.22, "sine")),
    "amber": ((587.0, 0.16, "sine"), (0.0, 0.10, "sine"), (587.0, 0.16, "sine")),
    "red": (
        (220.0, 0.18, "square"),
        (0.0, 0.07, "sine"),
        (220.0, 0.18, "square"),
        (0.0, 0.07, "sine"),
        (220.0, 0.30, "square"),
    ),
    "grey": ((440.0, 0.18, "sine"),),
    "undone": ((523.0, 0.12, "sine"), (392.0, 0.20, "sine")),
}
# What is spoken, always in Mandarin (the words the volunteer and the resident both know).
SPOKEN = {
    ("green", "exit"): "放行",
    ("green", "entry"): "欢迎回家",
    ("green", None): "放行",
    ("amber", None): "请核实",
    ("red", None): "禁止通行",
    ("grey", None): "不是通行证",
    ("undone", None): "已撤销",
}


def spoken_words(cue: str, direction: str | None = None) -> str | None:
    return SPOKEN.get((cue, direction)) or SPOKEN.get((cue, None))


def render_cue(cue: str, volume: float = 0.5) -> bytes:
    """The cue as a mono 16-bit WAV file's bytes."""
    samples: list[int] = []
    for freq, seconds, shape in CUES[cue]:
        n = int(RATE * seconds)
        fade = max(1, int(RATE * 0.01))  # 10 ms in and out: no clicks
        for i in range(n):
            if freq <= 0:
                samples.append(0)
                continue
            phase = math.sin(2 * math.pi * freq * i / RATE)
            value = (1.0 if phase >= 0 else -1.0) * 0.6 if shape == "square" else phase
            envelope = min(1.0, i / fade, (n - 1 - i) / fade)
            samples.append(int(value * envelope * volume * 32767))
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(RATE)
        w.writeframes(struct.pack(f"<{len(samples)}h", *samples))
    return out.getvalue()


def rms(wav: bytes) -> float:
    """Root mean square of a 16-bit WAV's samples (0 = silence, 32767 = full scale)."""
    with wave.open(io.BytesIO(wav), "rb") as w:
        frames = w.readframes(w.getnframes())
    values = struct.unpack(f"<{len(frames) // 2}h", frames)
    return math.sqrt(sum(v * v for v in values) / len(values)) if values else 0.0


@dataclass(frozen=True)
class SoundReport:
    """What sound this laptop can make, for `menwei doctor` and the help screen."""

    player: str | None  # the program that plays the cues, if it has somewhere to play them
    speaker: str | None  # the speech engine, if any
    mandarin: bool  # the speech engine has a Mandarin voice
    found: tuple[str, ...] = ()  # players installed (whether or not they have an output)

    def lines(self) -> list[str]:
        out = []
        if self.player:
            out.append(f"sound cues: yes, played with {self.player}")
        elif self.found:
            out.append(
                f"sound cues: no audio output ({', '.join(self.found)} found no sound card or "
                "sound server); the terminal bell rings instead"
            )
        else:
            out.append(
                "sound cues: no audio player found (install pulseaudio-utils or alsa-utils); "
                "the terminal bell rings instead"
            )
        if self.speaker and self.mandarin and self.player:
            out.append(f"spoken verdicts: yes, Mandarin with {self.speaker}")
        elif self.speaker and self.mandarin:
            out.append(f"spoken verdicts: no audio output ({self.speaker} has Mandarin)")
        elif self.speaker:
            out.append(f"spoken verdicts: no, {self.speaker} has no Mandarin voice (cmn)")
        else:
            out.append("spoken verdicts: no speech engine (install espeak-ng for Mandarin)")
        return out


def _has_mandarin(speaker: str) -> bool:
    try:
        done = subprocess.run(
            [speaker, "--voices=zh"], capture_output=True, text=True, timeout=5, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return False
    return any(tag in done.stdout for tag in ("cmn", "zh"))


def _has_output(player: str) -> bool:
    """Whether `player` has somewhere to play: a sound server, or (ALSA) a sound card."""
    if player == "aplay":
        try:
            cards = Path("/proc/asound/cards").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
        return bool(cards.strip()) and "no soundcards" not in cards
    runtime = os.environ.get("XDG_RUNTIME_DIR", "")
    servers = [Path(runtime) / "pulse" / "native", Path(runtime) / "pipewire-0"] if runtime else []
    return bool(os.environ.get("PULSE_SERVER")) or any(p.exists() for p in servers)


def probe(
    players: Sequence[str] = PLAYERS, speakers: Sequence[str] = SPEAKERS, *, voices: bool = True
) -> SoundReport:
    """Which player (with an output) and speech engine are installed; nothing is played."""
    found = tuple(p for p in players if shutil.which(p))
    player = next((p for p in found if _has_output(p)), None)
    speaker = next((s for s in speakers if shutil.which(s)), None)
    mandarin = bool(speaker) and (not voices or _has_mandarin(speaker or ""))
    return SoundReport(player, speaker, mandarin, found)


def speak_to_wav(words: str, speaker: str = "espeak-ng") -> bytes | None:
    """The words spoken in Mandarin as WAV bytes (None when the engine cannot)."""
    try:
        done = subprocess.run(
            [speaker, "-v", "cmn", "-s", "150", "--stdout", words],
            capture_output=True,
            timeout=PLAY_TIMEOUT_S,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout if done.returncode == 0 and done.stdout[:4] == b"RIFF" else None


class Sound:
    """Plays cues and speech on its own thread. `cue()` returns at once."""

    def __init__(
        self,
        *,
        cues: bool = True,
        speech: bool = True,
        report: SoundReport | None = None,
        folder: Path | None = None,
    ) -> None:
        self.report = report if report is not None else probe(voices=False)
        self.cues_on = cues
        self.speech_on = speech
        self._folder = folder
        self._files: dict[str, Path] = {}
        self._queue: queue.SimpleQueue[tuple[str, str | None] | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self.played: list[tuple[str, str | None]] = []  # what was handed to the speakers

    @property
    def audible(self) -> bool:
        """Whether a cue reaches the speakers (else the caller rings the terminal bell)."""
        return self.cues_on and self.report.player is not None

    def start(self) -> None:
        if self._thread is None and (self.audible or self._speaks()):
            self._thread = threading.Thread(target=self._run, name="menwei-sound", daemon=True)
            self._thread.start()

    def stop(self) -> None:
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(2)
            self._thread = None

    def _speaks(self) -> bool:
        """Speech goes through the same player (espeak-ng renders, the player plays)."""
        return self.speech_on and self.report.speaker is not None and self.report.player is not None

    def cue(self, cue: str, direction: str | None = None) -> None:
        """Queue the cue for `cue` (green, amber, red, grey, undone) and its spoken words."""
        if cue not in CUES or not (self.audible or self._speaks()):
            return
        self.start()
        self._queue.put((cue, spoken_words(cue, direction) if self._speaks() else None))

    def _file(self, cue: str) -> Path:
        if cue not in self._files:
            folder = self._folder or Path(tempfile.mkdtemp(prefix="menwei-sound-"))
            self._folder = folder
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"{cue}.wav"
            path.write_bytes(render_cue(cue))
            self._files[cue] = path
        return self._files[cue]

    def _spoken(self, words: str, speaker: str) -> Path | None:
        """The words as a WAV file, rendered once and kept (four or five phrases in all)."""
        key = f"say-{words}"
        if key not in self._files:
            wav = speak_to_wav(words, speaker)
            if wav is None:
                return None
            folder = self._folder or Path(tempfile.mkdtemp(prefix="menwei-sound-"))
            self._folder = folder
            folder.mkdir(parents=True, exist_ok=True)
            path = folder / f"say-{len(self._files)}.wav"
            path.write_bytes(wav)
            self._files[key] = path
        return self._files[key]

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            # Only the newest verdict is worth hearing.
            while item is not None and not self._queue.empty():
                newer = self._queue.get()
                item = newer if newer is not None else None
            if item is None:
                return
            cue, words = item
            self.played.append(item)
            try:
                if self.audible and self.report.player:
                    subprocess.run(
                        [self.report.player, str(self._file(cue))],
                        capture_output=True,
                        timeout=PLAY_TIMEOUT_S,
                        check=False,
                    )
                if words and self._speaks() and self.report.speaker and self.report.player:
                    path = self._spoken(words, self.report.speaker)
                    if path is not None:
                        subprocess.run(
                            [self.report.player, str(path)],
                            capture_output=True,
                            timeout=PLAY_TIMEOUT_S,
                            check=False,
                        )
            except (OSError, subprocess.SubprocessError) as exc:  # a broken speaker, never a crash
                log.info("sound: %s", exc)
