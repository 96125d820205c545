"""The verdict's sound and its big words: cues rendered to WAV and heard through a real player
program, the words drawn from the installed font, one app per home, the volunteers' list."""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
import wave
from collections.abc import Callable
from io import BytesIO
from pathlib import Path

import pytest
from click.testing import CliRunner

from menwei.cli import cli
from menwei.core.operators import is_listed, listed_only
from menwei.gateapp import bigtext
from menwei.gateapp.lock import AppAlreadyRunning, HomeLock
from menwei.gateapp.sound import CUES, Sound, SoundReport, probe, render_cue, rms, speak_to_wav
from tests.conftest import Community


@pytest.mark.parametrize("cue", sorted(CUES))
def test_every_cue_renders_to_a_wav_that_is_not_silent(cue: str) -> None:
    wav = render_cue(cue)
    with wave.open(BytesIO(wav), "rb") as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        seconds = w.getnframes() / w.getframerate()
    assert 0.1 < seconds < 1.0  # short: the next pass is already coming
    assert rms(wav) > 3000


def test_green_amber_and_red_sound_different() -> None:
    waves = {c: render_cue(c) for c in ("green", "amber", "red")}
    assert len(set(waves.values())) == 3
    lengths = {c: len(w) for c, w in waves.items()}
    assert lengths["red"] > lengths["amber"]  # three buzzes are the longest


def _fake_player(tmp_path: Path) -> Path:
    """A player program that keeps a copy of every file it is asked to play."""
    out = tmp_path / "heard"
    out.mkdir()
    player = tmp_path / "player"
    player.write_text(f'#!/bin/sh\ncp "$1" "{out}/$(date +%s%N).wav"\n')
    player.chmod(player.stat().st_mode | stat.S_IEXEC)
    return player


def _held_player(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A player that says it started, then plays (keeps a copy) only once `release` exists."""
    out = tmp_path / "heard"
    out.mkdir()
    started, release = tmp_path / "started", tmp_path / "release"
    player = tmp_path / "player"
    player.write_text(
        f'#!/bin/sh\ntouch "{started}"\n'
        f'while [ ! -e "{release}" ]; do sleep 0.01; done\n'
        f'cp "$1" "{out}/$(date +%s%N).wav"\n'
    )
    player.chmod(player.stat().st_mode | stat.S_IEXEC)
    return player, started, release


def _until(done: Callable[[], bool], seconds: float = 10) -> bool:
    deadline = time.monotonic() + seconds
    while not done() and time.monotonic() < deadline:
        time.sleep(0.02)
    return done()


def test_cues_are_played_on_their_own_thread_by_the_player(tmp_path: Path) -> None:
    player, started, release = _held_player(tmp_path)
    sound = Sound(
        report=SoundReport(str(player), None, False), folder=tmp_path / "cues", speech=False
    )
    try:
        assert sound.audible
        sound.cue("red")
        # The scan never waits for the speaker: cue() is back while the player is still held
        # (a cue played in line would return only once the player had played, or been killed).
        assert not list((tmp_path / "heard").glob("*.wav"))
        assert _until(started.exists), "the player was never run"
        release.touch()
        assert _until(lambda: bool(list((tmp_path / "heard").glob("*.wav"))))
        heard = list((tmp_path / "heard").glob("*.wav"))
    finally:
        release.touch()
        sound.stop()
    assert len(heard) == 1
    assert rms(heard[0].read_bytes()) > 3000
    assert heard[0].read_bytes() == render_cue("red")


def test_sound_off_in_the_settings_plays_nothing(tmp_path: Path) -> None:
    player = _fake_player(tmp_path)
    sound = Sound(cues=False, speech=False, report=SoundReport(str(player), "espeak-ng", True))
    sound.cue("green")
    sound.stop()
    assert not sound.audible and sound.played == []


def test_doctor_says_what_sound_works(home: object) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["doctor", "--no-probe", "--json"])
    data = json.loads(result.output.splitlines()[-1])
    report = probe()
    assert data["sound"]["player"] == report.player
    assert data["sound"]["lines"] == report.lines()


# --- the big words ----------------------------------------------------------------------------


@pytest.mark.skipif(bigtext.find_font("cjk") is None, reason="fonts-wqy-microhei not installed")
@pytest.mark.parametrize("words", ["放行", "欢迎回家", "请核实", "禁止通行", "不是通行证"])
def test_the_chinese_verdicts_are_at_least_5_rows_at_80_columns(words: str) -> None:
    lines = bigtext.banner(words, "red", 76, 6)
    assert lines is not None and len(lines) >= 5
    assert max(len(line) for line in lines) <= 76
    assert sum(line.count("█") for line in lines) > 20  # ink, not blanks


def test_without_a_font_the_words_fall_back_to_plain(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(bigtext, "find_font", lambda kind: None)
    bigtext.render.cache_clear()
    try:
        assert bigtext.banner("放行", "green", 76, 6) is None
    finally:
        bigtext.render.cache_clear()


# --- one app per home -------------------------------------------------------------------------


def test_a_second_app_on_the_same_home_is_refused_and_the_shift_goes_on(
    community: Community,
) -> None:
    community.gate.start_shift("王阿姨")
    with HomeLock(community.home):
        with pytest.raises(AppAlreadyRunning), HomeLock(community.home):
            pass
        result = CliRunner().invoke(cli, ["gate", "--camera", "none"])
        assert result.exit_code == 1
        assert "已经在运行" in result.output and "already running" in result.output
        assert str(os.getpid()) in result.output
    assert community.gate.current_operator() == "王阿姨"  # never ended
    kinds = [r["kind"] for r in community.store.query("select kind from events")]
    assert "shift_end" not in kinds
    with HomeLock(community.home):  # free again once the first app ends
        pass


# --- menwei operators -------------------------------------------------------------------------


def test_operators_add_list_remove_and_only_listed(community: Community) -> None:
    runner = CliRunner()
    assert runner.invoke(cli, ["operators", "add", "王阿姨", "--pin", "2468"]).exit_code == 0
    assert runner.invoke(cli, ["operators", "add", "李师傅"]).exit_code == 0
    assert community.gate.needs_pin("王阿姨") and not community.gate.needs_pin("李师傅")
    bad = runner.invoke(cli, ["operators", "add", "张三", "--pin", "12"])
    assert bad.exit_code == 1 and "PIN" in bad.output
    assert runner.invoke(cli, ["operators", "only-listed", "on"]).exit_code == 0
    listed = json.loads(runner.invoke(cli, ["operators", "list", "--json"]).output)
    assert listed["listed_only"] is True
    assert [(o["name"], o["pin"]) for o in listed["operators"]] == [
        ("李师傅", False),
        ("王阿姨", True),
    ]
    assert runner.invoke(cli, ["operators", "remove", "李师傅"]).exit_code == 0
    assert not is_listed(community.store, "李师傅") and listed_only(community.store)
    missing = runner.invoke(cli, ["operators", "remove", "李师傅"])
    assert missing.exit_code == 1 and "不在名单上" in missing.output


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_the_verdict_is_spoken_in_mandarin_through_the_player(tmp_path: Path) -> None:
    for words in ("放行", "欢迎回家", "请核实", "禁止通行"):
        wav = speak_to_wav(words)
        assert wav is not None and rms(wav) > 300, words
    player = _fake_player(tmp_path)
    sound = Sound(report=SoundReport(str(player), "espeak-ng", True), folder=tmp_path / "cues")
    try:
        sound.cue("green", "entry")
        deadline = time.monotonic() + 10
        heard: list[Path] = []
        while time.monotonic() < deadline and len(heard) < 2:
            heard = sorted((tmp_path / "heard").glob("*.wav"))
            time.sleep(0.05)
    finally:
        sound.stop()
    assert len(heard) == 2  # the cue, then 欢迎回家
    assert heard[0].read_bytes() == render_cue("green")
    assert heard[1].read_bytes() == speak_to_wav("欢迎回家")
