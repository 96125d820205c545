"""`menwei doctor --camera`: a camera (here a generated video) watched through the real pipeline."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from menwei.cli import cli
from menwei.scanner import sources, synth
from menwei.scanner.synth import Look, Shot
from tests.scanner.cards import pass_card

PAYMENT = "https://qr.alipay.com/fkx19283xyzABC?t=1700000000"


@pytest.fixture(scope="module")
def card() -> synth.Card:
    return pass_card(1203)


@pytest.fixture(scope="module")
def videos(card: synth.Card, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("doctor")
    held, small, dark = root / "held.avi", root / "small.avi", root / "dark.avi"
    synth.write_video(held, [Shot(None, 1.0), Shot(card, 1.5), Shot(synth.qr_card(PAYMENT), 1.0)])
    tiny = Look(module_px=1.9, blur_sigma=1.0, noise_sigma=5)
    synth.write_video(small, [Shot(None, 0.2), Shot(card, 3.0)], look=tiny, slide_s=0.1)
    dim = Look(gamma=3.0, contrast=0.3, noise_sigma=3)
    synth.write_video(dark, [Shot(None, 2.0)], look=dim)
    return {"held": held, "small": small, "dark": dark}


def _doctor(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(cli, ["doctor", "--camera", *args])
    return result.exit_code, result.stdout, result.stderr


def test_a_held_pass_is_read_and_a_payment_code_is_told_apart(
    card: synth.Card, videos: dict[str, Path]
) -> None:
    code, out, _ = _doctor("--source", str(videos["held"]), "--json")
    assert code == 0, out
    report = json.loads(out)
    assert report["ok"] is True and report["pass_read"] is True
    assert [(r["text"], r["pass"]) for r in report["reads"]] == [
        (card.text, True),
        (PAYMENT, False),
    ]
    assert report["frames"] == 105
    assert len(report["seconds"]) == 4
    assert report["seconds"][0]["qr_in_view"] is False
    assert all(s["exposure"] == "exposure_ok" for s in report["seconds"])


def test_text_mode_prints_a_line_a_second_in_either_language(videos: dict[str, Path]) -> None:
    code, out, _ = _doctor("--source", str(videos["held"]))
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0].startswith(f"摄像头 {videos['held']}:640x480")
    assert sum(re.match(r"\s+\d+秒\s+[\d.]+帧/秒", line) is not None for line in lines) == 4
    assert any("读出通行证:MW:" in line for line in lines)
    assert any("不是本系统的通行证" in line for line in lines)
    assert "其中通行证 1 张" in lines[-1]
    code, out, _ = _doctor("--source", str(videos["held"]), "--lang", "en")
    assert "pass read: MW:" in out and "1 of them passes" in out


def test_a_symbol_too_small_gets_the_hint_the_scan_screen_would_show(
    videos: dict[str, Path],
) -> None:
    code, out, _ = _doctor("--source", str(videos["small"]))
    assert code == 0, out
    assert "提示:靠近一点" in out
    assert "读出通行证:" not in out and "没有读出通行证" in out


def test_a_dark_picture_is_called_dark(videos: dict[str, Path]) -> None:
    code, out, _ = _doctor("--source", str(videos["dark"]), "--json")
    assert code == 0
    report = json.loads(out)
    assert {s["exposure"] for s in report["seconds"]} == {"dark"}
    code, out, _ = _doctor("--source", str(videos["dark"]))
    assert code == 0
    assert "太暗" in out


def test_seconds_limits_the_watch(videos: dict[str, Path]) -> None:
    code, out, _ = _doctor("--source", str(videos["held"]), "--seconds", "1", "--json")
    assert code == 0
    report = json.loads(out)
    assert [s["frames"] for s in report["seconds"]] == [30]


def test_no_camera_is_reported_in_both_languages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sources, "list_cameras", lambda: [])
    code, out, err = _doctor()
    assert code == 1
    assert "这台电脑没有摄像头" in err and "This computer has no camera" in err
    assert "Traceback" not in out + err
    code, out, _ = _doctor("--json")
    assert code == 1
    report = json.loads(out)
    assert report["ok"] is False and report["code"] == "camera_no_camera"


def test_a_missing_video_is_reported(tmp_path: Path) -> None:
    code, out, _ = _doctor("--source", str(tmp_path / "none.avi"), "--json")
    assert code == 1
    report = json.loads(out)
    assert report["code"] == "camera_unavailable" and "no such file" in report["message"]
