"""`menwei doctor --camera`: watch one camera (or a video file) through the real scanning
pipeline, for the person setting up the gate laptop.

A line a second: frames per second, exposure and focus hints, whether a QR symbol is in view,
what the scan screen would tell the person holding it, and every code read (and whether it is a
menwei pass). `--json`: one object at the end with the same, second by second.
"""

from __future__ import annotations

import statistics
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import click

from menwei.cli.common import emit_json
from menwei.core.errors import MenweiError

if TYPE_CHECKING:
    from menwei.scanner.decoders import Decoding
    from menwei.scanner.hints import Hint
    from menwei.scanner.pipeline import ScannedCode
    from menwei.scanner.sources import Frame

DARK_MEAN = 55  # mean grey level below this: too dark for a cheap sensor's noise
BRIGHT_MEAN = 205
CLIPPED_SHARE = 0.08  # share of the picture at saturation: over-exposed
SOFT_EDGES = 25.0  # variance of the Laplacian below this, with detail in view: soft

WORDS: dict[str, dict[str, str]] = {
    "zh": {
        "open": "摄像头 {source}:{size},正在观察 {seconds:g} 秒(Ctrl-C 结束)",
        "line": "{t:>4.0f}秒  {fps:>5.1f}帧/秒  亮度{brightness:>3.0f} {exposure}  {focus}  {qr}",
        "dark": "太暗:开灯或调高曝光",
        "bright": "太亮:调低曝光或避开直射光",
        "clipped": "过曝:画面有大片发白",
        "exposure_ok": "曝光正常",
        "soft": "画面发虚:检查对焦或擦镜头",
        "sharp": "清晰",
        "flat": "画面无细节,无法判断对焦",
        "qr_none": "未见二维码",
        "qr_seen": "看到二维码,未读出",
        "qr_again": "仍在读出同一张({n}/{frames} 帧,只计一次)",
        "read_pass": "读出通行证:{text}",
        "read_other": "读出二维码(不是本系统的通行证):{text}",
        "hint": "提示:{hint}",
        "summary": "共 {frames} 帧,{fps:.1f} 帧/秒,解码 p95 {p95:.1f} 毫秒;读出 {reads} 次{passes}",
        "passes_yes": ",其中通行证 {n} 张",
        "passes_no": ",没有读出通行证",
        "no_camera": "这台电脑没有摄像头(没有 /dev/video*)。可以用视频文件测试:--source 文件",
        "unavailable": "摄像头无法打开:{detail}",
        "no_frames": "摄像头打开了,但没有画面",
    },
    "en": {
        "open": "camera {source}: {size}, watching for {seconds:g} s (Ctrl-C to stop)",
        "line": "{t:>4.0f}s  {fps:>5.1f} fps  brightness {brightness:>3.0f} {exposure}  {focus}  {qr}",
        "dark": "too dark: add light or raise the exposure",
        "bright": "too bright: lower the exposure or avoid direct light",
        "clipped": "over-exposed: large white areas",
        "exposure_ok": "exposure ok",
        "soft": "soft picture: check the focus or clean the lens",
        "sharp": "sharp",
        "flat": "no detail in view to judge focus",
        "qr_none": "no QR code in view",
        "qr_seen": "QR code in view, not read",
        "qr_again": "still reading the same code ({n}/{frames} frames, counted once)",
        "read_pass": "pass read: {text}",
        "read_other": "QR code read (not a menwei pass): {text}",
        "hint": "hint: {hint}",
        "summary": "{frames} frames, {fps:.1f} fps, decode p95 {p95:.1f} ms; {reads} codes read{passes}",
        "passes_yes": ", {n} of them passes",
        "passes_no": ", no pass read",
        "no_camera": "This computer has no camera (no /dev/video*). A video file works: --source FILE",
        "unavailable": "the camera cannot be opened: {detail}",
        "no_frames": "the camera opened but gave no frames",
    },
}


@dataclass
class Second:
    """What one second of frames showed."""

    start: float
    frames: int = 0
    brightness: list[float] = field(default_factory=list)
    clipped: list[float] = field(default_factory=list)
    edges: list[float] = field(default_factory=list)
    detail: list[float] = field(default_factory=list)
    symbol_seen: bool = False
    frames_read: int = 0  # frames in which a code was read (a held card is counted once)
    reads: list[dict[str, Any]] = field(default_factory=list)
    hint: str | None = None


def exposure_of(second: Second) -> str:
    mean = statistics.median(second.brightness)
    if statistics.median(second.clipped) >= CLIPPED_SHARE:
        return "clipped"
    if mean < DARK_MEAN:
        return "dark"
    if mean > BRIGHT_MEAN:
        return "bright"
    return "exposure_ok"


def focus_of(second: Second) -> str:
    if statistics.median(second.detail) < 12:
        return "flat"
    return "soft" if statistics.median(second.edges) < SOFT_EDGES else "sharp"


def _fail(key: str, lang: str, as_json: bool, **values: str) -> None:
    zh = WORDS["zh"][key].format(**values)
    en = WORDS["en"][key].format(**values)
    if as_json:
        emit_json({"ok": False, "code": f"camera_{key}", "message": en, "message_zh": zh})
        raise SystemExit(1)
    first, second = (zh, en) if lang == "zh" else (en, zh)
    raise MenweiError(f"{first}\n{second}")


def camera_check(source: str | None, seconds: float, *, lang: str, as_json: bool) -> None:
    """Watch `source` (default: the first camera) for `seconds` and report what it sees."""
    import cv2
    import numpy as np

    from menwei.core.passes import ParsedPass, parse
    from menwei.scanner.decoders import to_gray
    from menwei.scanner.hints import find_finders
    from menwei.scanner.pipeline import CameraPipeline
    from menwei.scanner.sources import CameraSource, CameraUnavailable, list_cameras

    words = WORDS[lang]
    if source is None:
        cameras = list_cameras()
        if not cameras:
            _fail("no_camera", lang, as_json)
            return
        source = cameras[0]
    stop = threading.Event()
    camera = CameraSource(source)
    seconds_seen: list[Second] = []
    state: dict[str, Any] = {"second": None, "t0": None, "announced": False, "hint": None}

    def close_second(second: Second) -> None:
        seconds_seen.append(second)
        if as_json:
            return
        exposure, focus = exposure_of(second), focus_of(second)
        qr = words["qr_seen"] if second.symbol_seen else words["qr_none"]
        if second.frames_read:
            qr = words["qr_again"].format(n=second.frames_read, frames=second.frames)
        if second.reads:
            qr = "; ".join(r["line"] for r in second.reads)
        if second.hint:
            qr += "  " + words["hint"].format(hint=second.hint)
        click.echo(
            words["line"].format(
                t=second.start - state["t0"] + 1,
                fps=camera.fps,
                brightness=statistics.median(second.brightness),
                exposure=words[exposure],
                focus=words[focus],
                qr=qr,
            )
        )

    def on_frame(frame: Frame, decoding: Decoding) -> None:
        if state["t0"] is None:
            state["t0"] = frame.at
            if not as_json:
                h, w = frame.image.shape[:2]
                click.echo(words["open"].format(source=source, size=f"{w}x{h}", seconds=seconds))
        if frame.at - state["t0"] >= seconds:
            stop.set()
            return
        second = state["second"]
        if second is None or frame.at - second.start >= 1.0:
            if second is not None:
                close_second(second)
            second = state["second"] = Second(frame.at)
            if state["hint"] is not None:
                second.hint = state["hint"]
        gray = (
            frame.image if frame.image.ndim == 2 else cv2.cvtColor(frame.image, cv2.COLOR_BGR2GRAY)
        )
        small = cv2.resize(gray, (160, 120), interpolation=cv2.INTER_AREA)
        second.frames += 1
        second.brightness.append(float(small.mean()))
        second.clipped.append(float(np.count_nonzero(small >= 250)) / small.size)
        second.detail.append(float(small.std()))
        h, w = gray.shape
        centre = gray[h // 4 : 3 * h // 4, w // 4 : 3 * w // 4]
        second.edges.append(float(cv2.Laplacian(centre, cv2.CV_32F).var()))
        if second.frames % 6 == 1 and not decoding.texts:  # five times a second is plenty
            second.symbol_seen = second.symbol_seen or bool(find_finders(to_gray(frame.image)))
        if decoding.texts:
            second.symbol_seen = True
            second.frames_read += 1

    def on_code(code: ScannedCode) -> None:
        second = state["second"]
        is_pass = isinstance(parse(code.text), ParsedPass)
        shown = code.text if len(code.text) <= 24 else code.text[:21] + "..."
        line = words["read_pass" if is_pass else "read_other"].format(text=shown)
        if second is not None:
            second.reads.append(
                {
                    "text": code.text,
                    "pass": is_pass,
                    "frame": code.frame_index,
                    "decode_ms": code.decode_ms,
                    "decoder": code.decoder,
                    "line": line,
                }
            )

    def on_hint(hint: Hint | None) -> None:
        state["hint"] = hint.text(lang) if hint else None
        second = state["second"]
        if second is not None and hint is not None:
            second.hint = state["hint"]

    pipeline = CameraPipeline(camera, on_code, on_frame=on_frame, on_hint=on_hint)
    try:
        pipeline.run(stop=stop)
    except CameraUnavailable as exc:
        _fail("unavailable", lang, as_json, detail=exc.message)
        return
    except KeyboardInterrupt:
        pass
    finally:
        camera.close()
    if state["second"] is not None and state["second"].frames:
        close_second(state["second"])
    if not seconds_seen:
        _fail("no_frames", lang, as_json)
        return
    summary = pipeline.stats.summary(camera)
    reads = [r for s in seconds_seen for r in s.reads]
    passes = [r for r in reads if r["pass"]]
    if as_json:
        emit_json(
            {
                "ok": True,
                "source": source,
                **summary,
                "pass_read": bool(passes),
                "reads": [{k: v for k, v in r.items() if k != "line"} for r in reads],
                "seconds": [
                    {
                        "frames": s.frames,
                        "brightness": round(statistics.median(s.brightness), 1),
                        "exposure": exposure_of(s),
                        "focus": focus_of(s),
                        "qr_in_view": s.symbol_seen,
                        "frames_read": s.frames_read,
                        "reads": len(s.reads),
                        "hint": s.hint,
                    }
                    for s in seconds_seen
                ],
            }
        )
        return
    extra = words["passes_yes"].format(n=len(passes)) if passes else words["passes_no"]
    click.echo(
        words["summary"].format(
            frames=summary["frames"],
            fps=camera.fps,
            p95=summary["decode_ms_p95"] or 0.0,
            reads=len(reads),
            passes=extra,
        )
    )
