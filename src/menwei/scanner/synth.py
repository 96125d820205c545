"""Webcam-like frames of a held-up pass, made from a real symbol: for tests, benchmarks and demos.

A card image (a bare QR symbol or a printed pass) is warped into a 640x480 frame with rotation,
perspective tilt and hand shake, then degraded the way a cheap webcam degrades it: defocus blur,
sensor noise, low light, glare, MJPEG-style recompression. Everything is seeded, so a corpus or a
video is the same on every run.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt
import qrcode
import qrcode.constants

if TYPE_CHECKING:
    from menwei.output.printing import PrintedPass

Image = npt.NDArray[np.uint8]

FRAME_SIZE = (640, 480)  # width, height
_EC = {
    "L": qrcode.constants.ERROR_CORRECT_L,
    "M": qrcode.constants.ERROR_CORRECT_M,
    "Q": qrcode.constants.ERROR_CORRECT_Q,
}


def qr_matrix(text: str, *, ec: str = "M", border: int = 4) -> Image:
    """The symbol for `text` at one pixel per module (0 dark, 255 light), quiet zone included.

    The text is added verbatim; qrcode picks alphanumeric mode for base45 text.
    """
    code = qrcode.QRCode(error_correction=_EC[ec], border=border, box_size=1)
    code.add_data(text)
    code.make(fit=True)
    dark = np.array(code.get_matrix(), dtype=bool)
    return np.where(dark, 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class Card:
    """A card to hold up: its image, the text its symbol holds, and its width in modules."""

    text: str
    image: Image  # grey or BGR
    modules: float  # modules across the whole card image, margins included
    # Where the symbol is on the card: centre x, centre y, width, as fractions of the card's width
    # and height (glare is aimed at it).
    symbol: tuple[float, float, float] = (0.5, 0.5, 1.0)


def qr_card(text: str, *, ec: str = "M", module_px: int = 8, margin_modules: int = 6) -> Card:
    """A plain white card holding the symbol of `text` with a quiet margin."""
    matrix = qr_matrix(text, ec=ec, border=margin_modules)
    size = (matrix.shape[1] * module_px, matrix.shape[0] * module_px)
    image = np.asarray(cv2.resize(matrix, size, interpolation=cv2.INTER_NEAREST), dtype=np.uint8)
    across = float(matrix.shape[1])
    return Card(text, image, across, (0.5, 0.5, (across - 2 * margin_modules) / across))


def printed_card(printed: PrintedPass) -> Card:
    """The pass exactly as `menwei passes` prints it (85 x 54 mm at 300 dpi)."""
    from menwei.output.printing import module_pixels, render_pass_png
    from menwei.output.printing import qr_matrix as printed_matrix

    image = np.asarray(render_pass_png(printed).convert("L"), dtype=np.uint8)
    n = len(printed_matrix(printed.code))
    px = module_pixels(n)
    h, w = image.shape
    symbol = (0.5, 0.5, n * px / w)
    import zxingcpp

    for found in zxingcpp.read_barcodes(image):
        pos = found.position
        xs = [pos.top_left.x, pos.top_right.x, pos.bottom_right.x, pos.bottom_left.x]
        ys = [pos.top_left.y, pos.top_right.y, pos.bottom_right.y, pos.bottom_left.y]
        symbol = (sum(xs) / 4 / w, sum(ys) / 4 / h, (max(xs) - min(xs)) / w)
    return Card(printed.code, image, w / px, symbol)


@dataclass(frozen=True)
class Look:
    """How the card sits in the frame and how the camera spoils it."""

    module_px: float = 4.0  # pixels per module in the frame
    angle_deg: float = 0.0  # in-plane rotation
    tilt_x: float = 0.0  # perspective: the card turned about its vertical axis, degrees
    tilt_y: float = 0.0  # ... about its horizontal axis
    center: tuple[float, float] = (0.5, 0.5)  # in frame fractions
    blur_sigma: float = 0.6  # defocus, pixels
    noise_sigma: float = 3.0  # sensor noise, grey levels
    gamma: float = 1.0  # >1 darkens (low light)
    contrast: float = 1.0  # <1 flattens (low light, washed-out print)
    glare: float = 0.0  # 0..1: strength of a bright elliptical reflection over the card
    jpeg_quality: int = 0  # 0: no recompression
    motion_px: float = 0.0  # motion blur length
    motion_deg: float = 0.0  # its direction (0: horizontal)
    # A pass shown on a phone: the card is drawn on a pixel grid of this pitch (frame pixels per
    # screen pixel, about 0.4-0.9) and sampled without a lens's low-pass: moiré. 0: paper.
    screen_px: float = 0.0
    cover: float = 0.0  # 0..0.4: a thumb over that share of the symbol's width, from one side


@dataclass
class Background:
    """A seeded, slightly textured room behind the card."""

    size: tuple[int, int] = FRAME_SIZE
    seed: int = 0
    _image: Image | None = field(default=None, repr=False)

    def image(self) -> Image:
        if self._image is None:
            rng = np.random.default_rng(self.seed)
            w, h = self.size
            low = rng.normal(0, 1, (h // 40 + 2, w // 40 + 2)).astype(np.float32)
            smooth = cv2.resize(low, (w, h), interpolation=cv2.INTER_CUBIC)
            tint = rng.uniform(0.85, 1.15, 3).astype(np.float32)
            base = (110 + 35 * smooth)[..., None] * tint
            for _ in range(6):  # a few objects: shelves, a door frame
                x0, y0 = int(rng.integers(0, w)), int(rng.integers(0, h))
                x1, y1 = x0 + int(rng.integers(20, 200)), y0 + int(rng.integers(20, 200))
                colour = [float(c) for c in rng.integers(40, 220, 3)]
                cv2.rectangle(base, (x0, y0), (x1, y1), colour, -1)
            self._image = np.clip(base, 0, 255).astype(np.uint8)
        return self._image


def _card_corners(
    card_shape: tuple[int, ...],
    look: Look,
    card_modules: float,
    frame_size: tuple[int, int] = FRAME_SIZE,
) -> npt.NDArray[np.float32]:
    """Where the card's corners land in the frame (float pixel coordinates)."""
    h, w = card_shape[:2]
    scale = look.module_px * card_modules / w  # frame pixels per card pixel
    fw, fh = frame_size
    cx, cy = look.center[0] * fw, look.center[1] * fh
    pts = np.array(
        [[-w / 2, -h / 2, 0], [w / 2, -h / 2, 0], [w / 2, h / 2, 0], [-w / 2, h / 2, 0]],
        dtype=np.float64,
    )
    pts *= scale
    ax, ay, az = (math.radians(v) for v in (look.tilt_y, look.tilt_x, look.angle_deg))
    rx = np.array([[1, 0, 0], [0, math.cos(ax), -math.sin(ax)], [0, math.sin(ax), math.cos(ax)]])
    ry = np.array([[math.cos(ay), 0, math.sin(ay)], [0, 1, 0], [-math.sin(ay), 0, math.cos(ay)]])
    rz = np.array([[math.cos(az), -math.sin(az), 0], [math.sin(az), math.cos(az), 0], [0, 0, 1]])
    pts = pts @ (rz @ ry @ rx).T
    focal = 700.0 * fw / 640  # pixels: a ~50 degree horizontal field of view
    depth = focal + pts[:, 2]
    x = cx + pts[:, 0] * focal / depth
    y = cy + pts[:, 1] * focal / depth
    return np.stack([x, y], axis=1).astype(np.float32)


def compose(card: Card, look: Look, background: Image, rng: np.random.Generator) -> Image:
    """A BGR frame: `card` in front of `background`, seen the way `look` says."""
    ss = 2  # supersample, then area-average down: no aliasing of the small modules
    fh, fw = background.shape[:2]
    quad = _card_corners(card.image.shape, look, card.modules, (fw, fh))
    # Work only in the card's bounding box (even-aligned, so it halves exactly).
    x0 = max(int(np.floor(quad[:, 0].min())) - 2, 0) // 2 * 2
    y0 = max(int(np.floor(quad[:, 1].min())) - 2, 0) // 2 * 2
    x1 = min(int(np.ceil(quad[:, 0].max())) + 2, fw)
    y1 = min(int(np.ceil(quad[:, 1].max())) + 2, fh)
    frame: npt.NDArray[Any] = background.astype(np.float32)
    if x1 - x0 >= 2 and y1 - y0 >= 2:
        bw, bh = x1 - x0, y1 - y0
        h, w = card.image.shape[:2]
        src = np.array([[0, 0], [w, 0], [w, h], [0, h]], dtype=np.float32)
        dst = ((quad - np.array([x0, y0], np.float32)) * ss).astype(np.float32)
        matrix = cv2.getPerspectiveTransform(src, dst)
        img = card.image
        card_bgr = np.asarray(
            img if img.ndim == 3 else cv2.cvtColor(img, cv2.COLOR_GRAY2BGR), dtype=np.uint8
        )
        if look.screen_px > 0:
            # A screen: a grid of R, G, B stripes that the sensor's pixels average only in
            # part (a box, not a low-pass filter), which is where moiré comes from.
            scale = look.module_px * card.modules / w
            paper = _screen_texture(card_bgr, scale / look.screen_px)
            sh, sw = paper.shape[:2]
            src = np.array([[0, 0], [sw, 0], [sw, sh], [0, sh]], dtype=np.float32)
            dst = ((quad - np.array([x0, y0], np.float32)) * ss).astype(np.float32)
            matrix = cv2.getPerspectiveTransform(src, dst)
            h, w = sh, sw
        else:
            paper = card_bgr.astype(np.float32) * 0.82 + 30  # print is never pure black or white
        size = (bw * ss, bh * ss)
        warped = cv2.warpPerspective(paper, matrix, size, flags=cv2.INTER_LINEAR)
        mask = cv2.warpPerspective(
            np.ones((h, w), np.float32), matrix, size, flags=cv2.INTER_LINEAR
        )
        small = cv2.resize(warped, (bw, bh), interpolation=cv2.INTER_AREA)
        alpha = cv2.resize(mask, (bw, bh), interpolation=cv2.INTER_AREA)[..., None]
        roi = frame[y0:y1, x0:x1]
        frame[y0:y1, x0:x1] = small * alpha + roi * (1 - alpha)
        if look.cover > 0:
            _thumb(frame, quad, card.symbol, look.cover, rng)
    return degrade(frame, look, rng, card_quad=quad, symbol=card.symbol)


def _symbol_centre(
    quad: npt.NDArray[Any], symbol: tuple[float, float, float]
) -> tuple[float, float, float]:
    """The symbol's centre in the frame and its width in frame pixels."""
    u, v, width = symbol
    q = quad
    cx, cy = (1 - u) * (1 - v) * q[0] + u * (1 - v) * q[1] + u * v * q[2] + (1 - u) * v * q[3]
    return float(cx), float(cy), float(np.ptp(quad[:, 0])) * width


def _screen_texture(card_bgr: Image, screen_per_card_px: float) -> npt.NDArray[Any]:
    """The card as a phone screen shows it: each screen pixel three coloured stripes and a gap,
    drawn 4x4 texture pixels, inside a black bezel."""
    h, w = card_bgr.shape[:2]
    sw, sh = max(round(w * screen_per_card_px), 8), max(round(h * screen_per_card_px), 8)
    shown = cv2.resize(card_bgr, (sw, sh), interpolation=cv2.INTER_AREA).astype(np.float32)
    shown = 18 + shown * (235 / 255) * np.array([1.0, 0.93, 0.85], np.float32)  # cool, emissive
    cell = np.zeros((4, 4, 3), np.float32)
    for channel in range(3):  # BGR stripes, then a dark column; a dark row between pixel rows
        cell[:3, channel, channel] = 3.2
    grid = np.tile(cell, (sh, sw, 1))
    texture = np.repeat(np.repeat(shown, 4, axis=0), 4, axis=1) * grid
    bezel = max(sw // 16, 2) * 4
    return cv2.copyMakeBorder(texture, bezel, bezel, bezel, bezel, cv2.BORDER_CONSTANT, value=8)


def _thumb(
    frame: npt.NDArray[Any],
    quad: npt.NDArray[Any],
    symbol: tuple[float, float, float],
    cover: float,
    rng: np.random.Generator,
) -> None:
    """A thumb over `cover` of the symbol's width, coming in from a random side."""
    cx, cy, span = _symbol_centre(quad, symbol)
    theta = rng.uniform(0, 2 * math.pi)
    ux, uy = math.cos(theta), math.sin(theta)
    reach = span / 2 - cover * span  # from the centre to the thumb's tip
    length, width = span * 1.2, span * 0.45
    mx, my = cx + ux * (reach + length / 2), cy + uy * (reach + length / 2)
    skin = [float(c) for c in rng.uniform([95, 125, 170], [130, 160, 215])]
    cv2.ellipse(
        frame,
        (round(mx), round(my)),
        (max(round(length / 2), 1), max(round(width / 2), 1)),
        math.degrees(theta),
        0,
        360,
        skin,
        -1,
        cv2.LINE_AA,
    )


def degrade(
    frame: npt.NDArray[Any],
    look: Look,
    rng: np.random.Generator,
    *,
    card_quad: npt.NDArray[Any] | None = None,
    symbol: tuple[float, float, float] = (0.5, 0.5, 1.0),
) -> Image:
    """Apply the camera's faults to a frame (a float32 frame is changed in place)."""
    img: npt.NDArray[Any] = frame if frame.dtype == np.float32 else frame.astype(np.float32)
    if look.glare > 0:
        fh, fw = img.shape[:2]
        if card_quad is not None:
            cx, cy, span = _symbol_centre(card_quad, symbol)
        else:
            cx, cy, span = fw / 2, fh / 2, fw / 3
        gx = cx + rng.uniform(-0.25, 0.25) * span
        gy = cy + rng.uniform(-0.25, 0.25) * span
        glare: npt.NDArray[Any] = np.zeros((fh, fw), np.float32)
        axes = (max(int(span * 0.35), 2), max(int(span * 0.15), 2))
        cv2.ellipse(glare, (int(gx), int(gy)), axes, rng.uniform(0, 180), 0, 360, 1.0, -1)
        glare = cv2.GaussianBlur(glare, (0, 0), max(span * 0.06, 1.0))
        img = img + (255 - img) * (look.glare * glare)[..., None]
    if look.motion_px >= 1:
        k = round(look.motion_px)
        size = k if k % 2 else k + 1
        kernel = np.zeros((size, size), np.float32)
        c = (size - 1) / 2
        dx, dy = math.cos(math.radians(look.motion_deg)), math.sin(math.radians(look.motion_deg))
        cv2.line(
            kernel,
            (round(c - dx * (k - 1) / 2), round(c - dy * (k - 1) / 2)),
            (round(c + dx * (k - 1) / 2), round(c + dy * (k - 1) / 2)),
            1.0,
            1,
        )
        img = cv2.filter2D(img, -1, kernel / max(float(kernel.sum()), 1.0))
    if look.blur_sigma > 0:
        img = cv2.GaussianBlur(img, (0, 0), look.blur_sigma)
    if look.contrast != 1.0 or look.gamma != 1.0:
        lut = np.linspace(0, 1, 256, dtype=np.float32)
        lut = 255 * np.power(np.clip(0.5 + (lut - 0.5) * look.contrast, 0, 1), look.gamma)
        img = cv2.LUT(np.clip(img, 0, 255).astype(np.uint8), lut.astype(np.float32))
    if look.noise_sigma > 0:
        # Luminance noise, shared by the channels: what matters to a decoder, at a third of the cost.
        shape = (*img.shape[:2], 1) if img.ndim == 3 else img.shape
        img += rng.standard_normal(shape, dtype=np.float32) * np.float32(look.noise_sigma)
    out: Image = np.clip(img, 0, 255).astype(np.uint8)
    if look.jpeg_quality:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, look.jpeg_quality])
        if ok:
            out = np.asarray(cv2.imdecode(buf, cv2.IMREAD_COLOR), dtype=np.uint8)
    return out


def frame_of(card: Card, look: Look = Look(), *, seed: int = 0) -> Image:
    """One BGR frame of `card` held up in front of the camera."""
    rng = np.random.default_rng(seed)
    return compose(card, look, Background(seed=seed).image(), rng)


def random_look(rng: np.random.Generator, *, hard: bool = True) -> Look:
    """A look drawn from what a gate webcam sees: 2.8-5 px/module, tilted, often badly lit."""
    return Look(
        module_px=float(rng.uniform(2.8, 5.0)),
        angle_deg=float(rng.uniform(-35, 35)),
        tilt_x=float(rng.uniform(-30, 30)),
        tilt_y=float(rng.uniform(-25, 25)),
        center=(float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.35, 0.65))),
        blur_sigma=float(rng.uniform(0.5, 1.8 if hard else 1.0)),
        noise_sigma=float(rng.uniform(2, 9 if hard else 5)),
        gamma=float(rng.choice([1.0, 1.0, rng.uniform(1.3, 2.4)])),
        contrast=float(rng.choice([1.0, rng.uniform(0.35, 0.8)])),
        glare=float(rng.choice([0.0, 0.0, rng.uniform(0.4, 0.95)])),
        jpeg_quality=int(rng.choice([0, int(rng.integers(25, 80))])),
        motion_px=float(rng.choice([0.0, 0.0, rng.uniform(1.5, 5.0)])),
    )


@dataclass(frozen=True)
class Sample:
    image: Image
    expected: str  # the text the frame holds
    look: Look


def corpus(
    cards: Sequence[Card],
    n: int,
    *,
    seed: int = 1,
    hard: bool = True,
    size: tuple[int, int] = FRAME_SIZE,
) -> Iterator[Sample]:
    """`n` degraded frames cycling through `cards`, reproducible from `seed`.

    At a larger `size` the card is nearer in pixels by the same factor, as in a 720p camera.
    """
    rng = np.random.default_rng(seed)
    backgrounds = [Background(size, seed=seed * 100 + i).image() for i in range(8)]
    scale = size[1] / FRAME_SIZE[1]
    for i in range(n):
        card = cards[i % len(cards)]
        look = random_look(rng, hard=hard)
        look = replace(
            look,
            module_px=look.module_px * scale,
            blur_sigma=look.blur_sigma * scale,  # the same lens, more pixels
            motion_px=look.motion_px * scale,
        )
        yield Sample(compose(card, look, backgrounds[i % len(backgrounds)], rng), card.text, look)


# --- video -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shot:
    """One stretch of video: a card held up for `seconds`, or an empty view when `card` is None."""

    card: Card | None
    seconds: float


@dataclass(frozen=True)
class VideoTruth:
    fps: float
    frames: int
    # Per shot: (text, first frame the card is fully in view, last frame it is in view).
    presentations: list[tuple[str, int, int]]


def write_video(
    path: Path,
    shots: Sequence[Shot],
    *,
    fps: float = 30.0,
    seed: int = 7,
    look: Look = Look(module_px=4.2, blur_sigma=0.7, noise_sigma=3.0, tilt_x=12, angle_deg=-6),
    slide_s: float = 0.3,
) -> VideoTruth:
    """Write an MJPG .avi of `shots`: each card slides in from below, is held with a little hand
    shake, and slides out again. Returns which frames show which card."""
    rng = np.random.default_rng(seed)
    bg = Background(seed=seed).image()
    fourcc = cv2.VideoWriter.fourcc(*"MJPG")
    writer = cv2.VideoWriter(str(path), fourcc, fps, FRAME_SIZE)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write video {path}")
    index = 0
    truth: list[tuple[str, int, int]] = []
    slide = max(round(slide_s * fps), 1)
    try:
        for shot in shots:
            total = max(round(shot.seconds * fps), 1)
            if shot.card is None:
                for _ in range(total):
                    writer.write(degrade(bg, replace(look, glare=0.0), rng))
                    index += 1
                continue
            first_full = index + slide
            for k in range(total):
                # Slide in during the first `slide` frames and out during the last ones.
                if k < slide:
                    offset = (slide - k) / slide
                elif k >= total - slide:
                    offset = (k - (total - slide) + 1) / slide
                else:
                    offset = 0.0
                shake = rng.normal(0, 0.004, 2)
                held = replace(
                    look,
                    center=(0.5 + float(shake[0]), 0.5 + 0.9 * offset + float(shake[1])),
                    angle_deg=look.angle_deg + float(rng.normal(0, 0.8)),
                    motion_px=6.0 if 0 < offset < 1 else 0.0,
                )
                writer.write(compose(shot.card, held, bg, rng))
                index += 1
            truth.append((shot.card.text, first_full, index - slide - 1))
    finally:
        writer.release()
    return VideoTruth(fps=fps, frames=index, presentations=truth)


# --- degradations by kind ----------------------------------------------------------------------

# What makes a gate frame hard, one kind at a time (each on top of a mild webcam: some noise,
# some blur, sometimes JPEG). "none" is an empty view: most frames at a gate show no card.
KINDS: tuple[str, ...] = (
    "low-light",
    "glare",
    "tilt",
    "motion",
    "defocus",
    "phone",
    "covered",
    "small",
)


def kind_look(kind: str, rng: np.random.Generator) -> Look:
    """A look of one kind of trouble (see KINDS), drawn from `rng`."""
    base = Look(
        module_px=float(rng.uniform(3.2, 5.0)),
        angle_deg=float(rng.uniform(-30, 30)),
        tilt_x=float(rng.uniform(-15, 15)),
        tilt_y=float(rng.uniform(-12, 12)),
        center=(float(rng.uniform(0.35, 0.65)), float(rng.uniform(0.35, 0.65))),
        blur_sigma=float(rng.uniform(0.5, 1.0)),
        noise_sigma=float(rng.uniform(2, 5)),
        jpeg_quality=int(rng.choice([0, int(rng.integers(40, 85))])),
    )
    if kind == "low-light":
        return replace(
            base,
            gamma=float(rng.uniform(1.8, 3.0)),
            contrast=float(rng.uniform(0.2, 0.5)),
            noise_sigma=float(rng.uniform(5, 11)),
            blur_sigma=float(rng.uniform(0.7, 1.3)),
        )
    if kind == "glare":
        return replace(base, glare=float(rng.uniform(0.6, 0.98)))
    if kind == "tilt":
        sign_x, sign_y = rng.choice([-1, 1], 2)
        return replace(
            base,
            tilt_x=float(sign_x * rng.uniform(38, 58)),
            tilt_y=float(sign_y * rng.uniform(20, 45)),
            angle_deg=float(rng.uniform(-90, 90)),
        )
    if kind == "motion":
        return replace(
            base,
            motion_px=float(rng.uniform(4.0, 10.0)),
            motion_deg=float(rng.uniform(0, 180)),
            module_px=float(rng.uniform(3.8, 5.5)),
        )
    if kind == "defocus":
        return replace(
            base, blur_sigma=float(rng.uniform(1.5, 2.5)), module_px=float(rng.uniform(3.8, 5.5))
        )
    if kind == "phone":
        return replace(
            base,
            screen_px=float(rng.uniform(0.35, 0.9)),
            blur_sigma=float(rng.uniform(0.0, 0.6)),
            glare=float(rng.choice([0.0, 0.0, rng.uniform(0.3, 0.7)])),
        )
    if kind == "covered":
        return replace(base, cover=float(rng.uniform(0.12, 0.3)))
    if kind == "small":
        return replace(
            base, module_px=float(rng.uniform(2.0, 3.0)), blur_sigma=float(rng.uniform(0.7, 1.1))
        )
    raise ValueError(f"unknown kind {kind!r} (known: {', '.join(KINDS)})")


@dataclass(frozen=True)
class KindSample:
    image: Image
    expected: str | None  # None: no card in view
    kind: str
    look: Look | None


def kind_corpus(
    cards: Sequence[Card], per_kind: int, *, seed: int, empty: int = 0
) -> Iterator[KindSample]:
    """`per_kind` frames of each kind in KINDS and `empty` frames without a card, from `seed`."""
    rng = np.random.default_rng(seed)
    backgrounds = [Background(FRAME_SIZE, seed=seed * 100 + i).image() for i in range(8)]
    i = 0
    for kind in KINDS:
        for _ in range(per_kind):
            card = cards[i % len(cards)]
            look = kind_look(kind, rng)
            image = compose(card, look, backgrounds[i % len(backgrounds)], rng)
            yield KindSample(image, card.text, kind, look)
            i += 1
    for k in range(empty):
        look = kind_look(KINDS[k % len(KINDS)], rng)
        image = degrade(backgrounds[k % len(backgrounds)].astype(np.float32), look, rng)
        yield KindSample(image, None, "none", None)


# --- presentations -----------------------------------------------------------------------------

PRESENTATION_KINDS: tuple[str, ...] = ("plain", "motion", "glare", "low-light", "tilt", "phone")


def presentation(
    card: Card,
    kind: str,
    rng: np.random.Generator,
    background: Image,
    *,
    fps: float = 30.0,
    approach_s: float = 1.0,
    seconds: float = 2.0,
) -> Iterator[Image]:
    """Frames of one presentation: the card, in view from the first frame, is brought from arm's
    length towards the camera over `approach_s` (modules growing from ~2 to ~4.5 px, blurred by
    the movement, slowing down as it arrives), then held with a little hand shake."""
    start_px, end_px = float(rng.uniform(1.7, 2.4)), float(rng.uniform(3.8, 5.0))
    start = (float(rng.uniform(0.3, 0.7)), float(rng.uniform(0.55, 0.75)))
    end = (float(rng.uniform(0.42, 0.58)), float(rng.uniform(0.42, 0.58)))
    angle = float(rng.uniform(-25, 25))
    look = Look(
        angle_deg=angle,
        tilt_x=float(rng.uniform(-15, 15)),
        tilt_y=float(rng.uniform(-10, 10)),
        blur_sigma=float(rng.uniform(0.5, 0.9)),
        noise_sigma=float(rng.uniform(2, 5)),
        jpeg_quality=int(rng.integers(50, 85)),
    )
    if kind == "glare":
        look = replace(look, glare=float(rng.uniform(0.6, 0.95)))
    elif kind == "low-light":
        look = replace(
            look,
            gamma=float(rng.uniform(1.8, 2.8)),
            contrast=float(rng.uniform(0.25, 0.5)),
            noise_sigma=float(rng.uniform(5, 10)),
        )
    elif kind == "tilt":
        look = replace(look, tilt_x=float(rng.choice([-1, 1]) * rng.uniform(35, 55)))
    elif kind == "phone":
        look = replace(look, screen_px=float(rng.uniform(0.35, 0.9)), blur_sigma=0.4)
    elif kind not in ("plain", "motion"):
        raise ValueError(f"unknown presentation kind {kind!r}")
    shake = 0.012 if kind == "motion" else 0.004
    frames = max(round(seconds * fps), 1)
    approach = max(round(approach_s * fps), 1)
    previous: tuple[float, float, float] | None = None
    for k in range(frames):
        t = min(k / approach, 1.0)
        ease = 1 - (1 - t) ** 2  # fast at first, slowing as it arrives
        module_px = start_px + (end_px - start_px) * ease
        jitter = rng.normal(0, shake, 2)
        cx = start[0] + (end[0] - start[0]) * ease + float(jitter[0])
        cy = start[1] + (end[1] - start[1]) * ease + float(jitter[1])
        # Motion blur over an exposure of half a frame: how far the card's centre moved since
        # the last frame, plus how far the symbol's edges (~20 modules out) moved as it grew.
        moved = 0.0
        direction = 0.0
        if previous is not None:
            dx, dy = (cx - previous[0]) * FRAME_SIZE[0], (cy - previous[1]) * FRAME_SIZE[1]
            grew = 20 * abs(module_px - previous[2])
            moved = 0.5 * (math.hypot(dx, dy) + grew)
            direction = math.degrees(math.atan2(dy, dx))
        previous = (cx, cy, module_px)
        seen = replace(
            look,
            module_px=module_px,
            center=(cx, cy),
            angle_deg=angle + float(rng.normal(0, 0.8)),
            motion_px=moved if moved >= 1.5 else 0.0,
            motion_deg=direction,
        )
        yield compose(card, seen, background, rng)


def write_presentations(
    path: Path,
    shown: Sequence[tuple[Card, str]],
    *,
    fps: float = 30.0,
    seed: int = 9,
    seconds: float = 2.0,
    gap_s: float = 0.5,
) -> VideoTruth:
    """Write an MJPG .avi of presentations (`presentation` frames of each card with its kind),
    each followed by `gap_s` of empty view. Returns which frames show which card."""
    rng = np.random.default_rng(seed)
    bg = Background(seed=seed).image()
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter.fourcc(*"MJPG"), fps, FRAME_SIZE)
    if not writer.isOpened():
        raise RuntimeError(f"cannot write video {path}")
    index = 0
    truth: list[tuple[str, int, int]] = []
    try:
        for card, kind in shown:
            first = index
            for image in presentation(card, kind, rng, bg, fps=fps, seconds=seconds):
                writer.write(image)
                index += 1
            truth.append((card.text, first, index - 1))
            for _ in range(max(round(gap_s * fps), 0)):
                writer.write(degrade(bg, Look(), rng))
                index += 1
    finally:
        writer.release()
    return VideoTruth(fps=fps, frames=index, presentations=truth)
