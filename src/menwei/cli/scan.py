"""The scanner without the gate app: `scan` (camera or scanner to decisions), `decode`, `doctor`."""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from menwei.cli.common import emit_json, get_home, json_option, reports_errors
from menwei.core.errors import MenweiError

if TYPE_CHECKING:
    from menwei.scanner.pipeline import ScannedCode
    from menwei.scanner.sources import CameraStatus

DECODER_CHOICE = click.Choice(
    ["zxing", "zxing-smooth", "zxing-sharp", "zxing-2x", "zxing-3x", "zbar", "opencv"]
)


def _cascade(names: tuple[str, ...], default: tuple[str, ...]) -> Any:
    from menwei.scanner.decoders import DecoderUnavailable, build_cascade

    try:
        return build_cascade(names or default, strict=bool(names))
    except DecoderUnavailable as exc:
        raise MenweiError(str(exc)) from None


@click.command()
@click.option(
    "--source",
    default="0",
    show_default=True,
    help="A camera index or /dev/videoN, a video file, a folder of images, a stream URL, "
    "or '-' for codes typed by a USB scanner (one per line) on standard input.",
)
@click.option(
    "--direction",
    type=click.Choice(["auto", "exit", "entry"]),
    default="auto",
    show_default=True,
    help="auto: from the household's state.",
)
@click.option(
    "--operator", help="Who is at the gate (default: the signed-in volunteer, else 'scan')."
)
@click.option("--dry-run", is_flag=True, help="Decide, but record nothing.")
@click.option(
    "--window",
    type=float,
    default=3.0,
    show_default=True,
    help="Seconds during which the same code again is ignored.",
)
@click.option(
    "--decoder",
    "decoders",
    type=DECODER_CHOICE,
    multiple=True,
    help="Decoders to try, in order (repeat; default: zxing on the frame as it is, smoothed, "
    "sharpened, then upscaled 2x).",
)
@click.option(
    "--realtime/--every-frame",
    default=None,
    help="For a file or folder: play it at its frame rate, dropping frames the decoder cannot "
    "keep up with, as a camera does (default: every frame, as fast as it decodes).",
)
@click.option(
    "--wait",
    is_flag=True,
    help="Keep trying to open a camera that is not there yet (a kiosk that starts before it).",
)
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@json_option
@reports_errors
def scan(
    source: str,
    direction: str,
    operator: str | None,
    dry_run: bool,
    window: float,
    decoders: tuple[str, ...],
    realtime: bool | None,
    wait: bool,
    lang: str,
    as_json: bool,
) -> None:
    """Run the camera (or a scanner) and the gate service without the gate app.

    Prints one line per decision (`--json`: one JSON object per line, the decision plus a `scan`
    object saying where the code came from). Camera reports and the closing summary go to
    standard error. Stops at the end of a file, or on Ctrl-C.
    """
    from menwei.gateapp.wiring import open_gate
    from menwei.scanner.debounce import Debouncer
    from menwei.scanner.decoders import DEFAULT_CASCADE
    from menwei.scanner.manual import ManualEntryError
    from menwei.scanner.pipeline import CameraPipeline, LineSource, submit
    from menwei.scanner.sources import CameraSource

    gate = open_gate(get_home())
    for warning in gate.warnings:
        click.secho(f"menwei: {warning}", fg="yellow", err=True)
    who = operator or gate.current_operator() or "scan"

    def on_code(code: ScannedCode) -> None:
        try:
            decision = submit(gate, code, operator=who, direction=direction, dry_run=dry_run)
        except ManualEntryError as exc:
            if as_json:
                emit_json({"error": exc.message, "input": code.text, "scan": _scan_info(code)})
            else:
                click.secho(f"menwei: {exc.message}", fg="yellow", err=True)
            return
        if as_json:
            emit_json({**decision.to_json(lang), "scan": _scan_info(code)})
        else:
            _print_decision(decision, code, lang)

    stop = threading.Event()
    if source == "-":
        with contextlib.suppress(KeyboardInterrupt):
            LineSource().run(on_code, stop)
        return

    def on_status(status: CameraStatus) -> None:
        click.echo(f"menwei: {status.message}", err=True)

    camera = CameraSource(source, realtime=realtime, on_status=on_status, retry_initial=wait)
    pipeline = CameraPipeline(
        camera,
        on_code,
        cascade=_cascade(decoders, DEFAULT_CASCADE),
        debouncer=Debouncer(window),
    )
    try:
        pipeline.run(stop=stop)
    except KeyboardInterrupt:
        stop.set()
    finally:
        camera.close()
    summary = pipeline.stats.summary(camera)
    click.echo(
        "menwei: {frames} frames at {fps} fps, {codes} scans; decode median {decode_ms_median} ms, "
        "p95 {decode_ms_p95} ms".format(**summary),
        err=True,
    )


def _scan_info(code: ScannedCode) -> dict[str, Any]:
    return {
        "source": code.source,
        "seen_at": code.seen_at.isoformat(timespec="milliseconds"),
        "frame": code.frame_index,
        "decoder": code.decoder,
        "decode_ms": code.decode_ms,
        "latency_ms": code.latency_ms,
    }


def _print_decision(decision: Any, code: ScannedCode, lang: str) -> None:
    colour = {"green": "green", "amber": "yellow", "red": "red"}[decision.verdict]
    where = f" 户号 {decision.household_number}" if decision.household_number else ""
    click.secho(f"{decision.title.get(lang)}{where}", fg=colour, bold=True)
    click.echo(f"  {decision.text(lang)}")
    seen = f"frame {code.frame_index}, {code.decode_ms} ms" if code.frame_index is not None else ""
    click.echo(
        f"  reason={decision.reason} direction={decision.direction or '-'} "
        f"recorded={'yes' if decision.recorded else 'no'} source={code.source}"
        + (f" ({seen})" if seen else "")
    )


@click.command()
@click.argument("images", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option(
    "--decoder",
    "decoders",
    type=DECODER_CHOICE,
    multiple=True,
    help="Decoders to try, in order (repeat; default: every usable one).",
)
@json_option
@reports_errors
def decode(images: tuple[str, ...], decoders: tuple[str, ...], as_json: bool) -> None:
    """Print the QR codes each IMAGE holds, verbatim.

    `--json`: one object per image, {"file": ..., "codes": [...]} (an empty list when there is
    none). Exits 1 when an image cannot be read.
    """
    import cv2

    from menwei.scanner.decoders import DECODER_NAMES

    cascade = _cascade(decoders, DECODER_NAMES)
    unreadable = 0
    for name in images:
        image = cv2.imread(name, cv2.IMREAD_COLOR) if Path(name).is_file() else None
        if image is None:
            unreadable += 1
            if as_json:
                emit_json({"file": name, "codes": [], "error": "cannot read this image"})
            else:
                click.secho(f"{name}: cannot read this image", fg="red", err=True)
            continue
        codes = list(cascade.decode(image).texts)
        if as_json:
            emit_json({"file": name, "codes": codes})
        elif not codes:
            click.echo(f"{name}: no QR code")
        else:
            for text in codes:
                # repr-free, verbatim; brackets show where the text ends (spaces matter).
                click.echo(f"{name}: [{text}]")
    if unreadable:
        sys.exit(1)


@click.command()
@click.option(
    "--camera",
    "live",
    is_flag=True,
    help="Watch the camera live: frames per second, exposure and focus hints, and whether a "
    "pass held up to it is read (use --source for another camera or a video file).",
)
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="A camera (index or /dev/videoN) or video file: watched with --camera (default: the "
    "first camera); without --camera, also probed.",
)
@click.option(
    "--seconds",
    type=float,
    default=15.0,
    show_default=True,
    help="With --camera: how long to watch.",
)
@click.option("--lang", type=click.Choice(["zh", "en"]), default="zh", show_default=True)
@click.option("--no-probe", is_flag=True, help="List cameras without opening them.")
@json_option
@reports_errors
def doctor(
    live: bool,
    sources: tuple[str, ...],
    seconds: float,
    lang: str,
    no_probe: bool,
    as_json: bool,
) -> None:
    """Say which QR decoders and cameras this machine can use, and why not.

    With --camera, watch one camera (or a video file) for a while instead, printing a line a
    second: frames per second, whether the picture is too dark, too bright or soft, whether a QR
    code is in view, what to tell the person holding it, and each code read.
    """
    if live:
        from menwei.cli.camera_check import camera_check

        camera_check(sources[0] if sources else None, seconds, lang=lang, as_json=as_json)
        return
    from menwei.scanner.decoders import available_decoders
    from menwei.scanner.sources import list_cameras

    decoders = [
        {"name": s.name, "usable": s.usable, "default": s.default, "detail": s.detail}
        for s in available_decoders()
    ]
    targets = list(dict.fromkeys([*list_cameras(), *sources]))
    found = [_probe(t, probe=not no_probe) for t in targets]
    ok = any(d["usable"] for d in decoders if d["default"])
    sound = _sound_status()
    if as_json:
        emit_json({"decoders": decoders, "cameras": found, "sound": sound, "ok": ok})
        return
    _echo_sound(sound)
    click.echo("QR decoders:")
    for d in decoders:
        mark = click.style("yes", fg="green") if d["usable"] else click.style("no ", fg="yellow")
        role = "default" if d["default"] else "fallback"
        click.echo(f"  {mark} {d['name']:<12} {role:<8}  {d['detail']}")
    click.echo("Cameras:")
    if not found:
        click.echo("  none found (no /dev/video*); a video file or folder works: --source FILE")
    for c in found:
        mark = click.style("yes", fg="green") if c["usable"] else click.style("no ", fg="yellow")
        click.echo(f"  {mark} {c['camera']:<12} {c['detail']}")
    if not ok:
        raise MenweiError("no default QR decoder is usable: pip install zxing-cpp")


def _sound_status() -> dict[str, Any]:
    """What sound the gate app can make here: the cue player and the Mandarin voice."""
    from menwei.gateapp.sound import probe

    report = probe()
    return {
        "player": report.player,
        "speech": report.speaker,
        "mandarin": report.mandarin,
        "lines": report.lines(),
    }


def _echo_sound(sound: dict[str, Any]) -> None:
    click.echo("Sound:")
    for line in sound["lines"]:
        ok = not (" no " in f" {line} " or "no Mandarin" in line)
        mark = click.style("yes", fg="green") if ok else click.style("no ", fg="yellow")
        click.echo(f"  {mark} {line}")


def _probe(target: str, *, probe: bool) -> dict[str, Any]:
    """Open a camera, read a few frames, and say what it gives."""
    import time

    from menwei.scanner.sources import CameraSource, CameraUnavailable, parse_source

    spec = parse_source(target)
    path = target if not target.isdigit() else f"/dev/video{target}"
    if path.startswith("/dev/") and os.path.exists(path) and not os.access(path, os.R_OK | os.W_OK):
        return {
            "camera": target,
            "usable": False,
            "detail": f"no permission for {path}: add this user to the 'video' group",
        }
    if not probe:
        return {"camera": target, "usable": None, "detail": "not opened (--no-probe)"}
    stop = threading.Event()
    source = CameraSource(spec, realtime=True)
    frames = 0
    start = time.monotonic()
    try:
        for frame in source.frames(stop):
            frames += 1
            if frames >= 15 or time.monotonic() - start > 3:
                stop.set()
                shape = frame.image.shape
                break
        else:
            return {"camera": target, "usable": False, "detail": "opened, but gave no frames"}
    except CameraUnavailable as exc:
        return {"camera": target, "usable": False, "detail": exc.message}
    finally:
        source.close()
    return {
        "camera": target,
        "usable": True,
        "detail": f"{shape[1]}x{shape[0]}, {source.fps:.0f} fps measured",
        "width": int(shape[1]),
        "height": int(shape[0]),
        "fps": round(source.fps, 1),
    }
