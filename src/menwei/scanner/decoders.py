"""QR decoders and the cascade that runs them on a camera frame.

zxing-cpp reads the most frames and is the fastest, so every default stage is zxing on a
differently prepared copy of the frame, cheapest first; the first stage that reads wins:

1. the grey frame as it is (about 0.3 ms);
2. smoothed (Gaussian, sigma 0.8): a pass on a phone screen carries the screen's pixel grid,
   which the sensor aliases into moiré stripes; smoothing removes them, and also lifts frames
   drowned in low-light noise;
3. sharpened (unsharp mask): restores module edges lost to defocus, motion and steep tilt, and
   the smallest modules (2-3 px);
4. a 2x upscale, which rescues symbols whose modules are under ~3.5 pixels.

On `scripts/bench_decode.py`'s tuning frames, leaving out the smoothed stage costs 5 points of
read rate (phone screens 92% -> 58%), the sharpened one 4 (tilt, defocus, small modules), the 2x
upscale 3 (low light, glare); the plain frame adds no reads the others miss, but it reads most
frames at the least cost, so it goes first. A frame without a card runs all four in 3.5 ms of CPU
(p95 5 ms) on one core. zxing's GlobalHistogram binarizer, CLAHE, median filtering, a cubic
upscale and a sharpened 2x upscale were measured and dropped (fewer reads, or too few more for
their cost). A 3x retry, zbar (pyzbar) and OpenCV's detector remain as configured fallbacks, off
by default: on webcam-like frames zbar and OpenCV add nothing to zxing's rate at ten times its
cost.

Every decoder returns the decoded text verbatim. It is never stripped: a space is a legal base45
character. zbar and OpenCV transcode byte data from a guessed charset, so their text is only taken
when it is well-formed UTF-8.
"""

from __future__ import annotations

import ctypes.util
import importlib.metadata
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]

DEFAULT_CASCADE: tuple[str, ...] = ("zxing", "zxing-smooth", "zxing-sharp", "zxing-2x")
DECODER_NAMES: tuple[str, ...] = (
    "zxing",
    "zxing-smooth",
    "zxing-sharp",
    "zxing-2x",
    "zxing-3x",
    "zbar",
    "opencv",
)
Prepare = str  # "": as it is; "smooth"; "sharp"
SMOOTH_SIGMA = 0.8
SHARP_SIGMA, SHARP_AMOUNT = 1.5, 0.8
# The 2x retry pays off on small frames; on a 1280x720 frame the modules are already large
# enough, and a 2560x1440 upscale would cost more than a camera frame.
UPSCALE_MAX_PIXELS = 640 * 480


class DecoderUnavailable(Exception):
    """A decoder that cannot run here; the message says why and what to install."""


class Decoder(Protocol):
    """Reads QR codes in a greyscale frame."""

    name: str

    def decode(self, gray: Image) -> list[str]:
        """The texts of the QR codes found, verbatim, in the order found (may be empty)."""


def to_gray(frame: Image) -> Image:
    """A greyscale view of a BGR or grey frame."""
    if frame.ndim == 2:
        return frame
    import cv2

    code = cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY
    return np.asarray(cv2.cvtColor(frame, code), dtype=np.uint8)


class ZxingDecoder:
    """zxing-cpp, QR Model 2 only; optionally on a smoothed, sharpened or upscaled copy."""

    def __init__(
        self, *, upscale: float = 1.0, try_downscale: bool = False, prepare: Prepare = ""
    ) -> None:
        try:
            import zxingcpp
        except ImportError as exc:  # pragma: no cover - a wheel dependency
            raise DecoderUnavailable(
                f"zxing-cpp is not installed ({exc}): pip install zxing-cpp"
            ) from None
        self._zx: Any = zxingcpp
        self.upscale = upscale
        self.prepare = prepare
        if prepare:
            self.name = f"zxing-{prepare}"
        else:
            self.name = "zxing" if upscale == 1.0 else f"zxing-{upscale:g}x"
        self._options: dict[str, Any] = {
            "formats": zxingcpp.BarcodeFormat.QRCodeModel2,
            "text_mode": zxingcpp.TextMode.Plain,
            # QR finding is rotation-invariant already; passes are printed dark on light.
            "try_rotate": False,
            "try_invert": False,
            "try_downscale": try_downscale,
        }

    def decode(self, gray: Image) -> list[str]:
        image = prepare(gray, self.prepare)
        if self.upscale != 1.0:
            if gray.shape[0] * gray.shape[1] > UPSCALE_MAX_PIXELS:
                return []
            import cv2

            image = np.asarray(
                cv2.resize(
                    image, None, fx=self.upscale, fy=self.upscale, interpolation=cv2.INTER_LINEAR
                ),
                dtype=np.uint8,
            )
        found = self._zx.read_barcodes(image, **self._options)
        return [b.text for b in found if b.valid]


class ZbarDecoder:
    """zbar through pyzbar (needs the libzbar0 system library)."""

    name = "zbar"

    def __init__(self) -> None:
        try:
            from pyzbar import pyzbar
        except ImportError as exc:
            raise DecoderUnavailable(_zbar_reason(exc)) from None
        self._pyzbar: Any = pyzbar
        self._symbols = [pyzbar.ZBarSymbol.QRCODE]

    def decode(self, gray: Image) -> list[str]:
        texts = []
        for found in self._pyzbar.decode(gray, symbols=self._symbols):
            try:
                texts.append(found.data.decode("utf-8"))
            except UnicodeDecodeError:
                continue  # zbar guessed a charset wrongly: a garbled text is worse than none
        return texts


class OpenCVDecoder:
    """OpenCV's QRCodeDetector."""

    name = "opencv"

    def __init__(self) -> None:
        try:
            import cv2
        except ImportError as exc:  # pragma: no cover - a wheel dependency
            raise DecoderUnavailable(
                f"OpenCV is not installed ({exc}): pip install opencv-python-headless"
            ) from None
        self._detector: Any = cv2.QRCodeDetector()

    def decode(self, gray: Image) -> list[str]:
        text, _points, _straight = self._detector.detectAndDecode(gray)
        return [text] if text else []


def prepare(gray: Image, how: Prepare) -> Image:
    """`gray` smoothed (moiré, noise) or sharpened (blur), or as it is."""
    if not how:
        return gray
    import cv2

    if how == "smooth":
        return np.asarray(cv2.GaussianBlur(gray, (0, 0), SMOOTH_SIGMA), dtype=np.uint8)
    if how == "sharp":
        soft = cv2.GaussianBlur(gray, (0, 0), SHARP_SIGMA)
        return np.asarray(
            cv2.addWeighted(gray, 1 + SHARP_AMOUNT, soft, -SHARP_AMOUNT, 0), dtype=np.uint8
        )
    raise ValueError(f"unknown preparation {how!r}")


def _zbar_reason(exc: BaseException) -> str:
    if ctypes.util.find_library("zbar") is None:
        return (
            "the zbar library is missing: sudo apt-get install --no-install-recommends libzbar0 "
            "(menwei runs without it)"
        )
    return f"pyzbar cannot load zbar: {exc}"


def make_decoder(name: str) -> Decoder:
    """A decoder by name (one of DECODER_NAMES). Raises DecoderUnavailable."""
    if name == "zxing":
        return ZxingDecoder()
    if name in ("zxing-smooth", "zxing-sharp"):
        return ZxingDecoder(prepare=name.removeprefix("zxing-"))
    if name in ("zxing-2x", "zxing-3x"):
        return ZxingDecoder(upscale=float(name[-2]))
    if name == "zbar":
        return ZbarDecoder()
    if name == "opencv":
        return OpenCVDecoder()
    raise DecoderUnavailable(f"unknown decoder {name!r} (known: {', '.join(DECODER_NAMES)})")


@dataclass(frozen=True)
class Decoding:
    """What one frame held: the distinct texts found, which stage found them, and the time taken."""

    texts: tuple[str, ...]
    stage: str | None
    ms: float


class Cascade:
    """Decoders tried in order on a frame; the first that finds anything wins."""

    def __init__(self, stages: Sequence[Decoder]) -> None:
        if not stages:
            raise DecoderUnavailable("no QR decoder is usable")
        self.stages = tuple(stages)

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(s.name for s in self.stages)

    def decode(self, frame: Image) -> Decoding:
        start = time.perf_counter()
        gray = to_gray(frame)
        for stage in self.stages:
            texts = stage.decode(gray)
            if texts:
                unique = tuple(dict.fromkeys(texts))
                return Decoding(unique, stage.name, (time.perf_counter() - start) * 1000)
        return Decoding((), None, (time.perf_counter() - start) * 1000)


def build_cascade(names: Sequence[str] = DEFAULT_CASCADE, *, strict: bool = False) -> Cascade:
    """The cascade of the named decoders, in order.

    A decoder that cannot run here is left out (zbar without libzbar0), unless `strict`; a cascade
    with nothing usable raises DecoderUnavailable.
    """
    stages: list[Decoder] = []
    problems: list[str] = []
    for name in names:
        try:
            stages.append(make_decoder(name))
        except DecoderUnavailable as exc:
            if strict:
                raise
            problems.append(f"{name}: {exc}")
    if not stages:
        raise DecoderUnavailable("no QR decoder is usable: " + "; ".join(problems))
    return Cascade(stages)


@dataclass(frozen=True)
class DecoderStatus:
    name: str
    usable: bool
    detail: str  # the library version when usable, else why not and what to install
    default: bool  # on the hot path by default


def available_decoders() -> list[DecoderStatus]:
    """Every known decoder: whether it runs here, and why not."""
    statuses = []
    for name in DECODER_NAMES:
        try:
            make_decoder(name)
        except DecoderUnavailable as exc:
            statuses.append(DecoderStatus(name, False, str(exc), name in DEFAULT_CASCADE))
        else:
            statuses.append(DecoderStatus(name, True, _version(name), name in DEFAULT_CASCADE))
    return statuses


def _version(name: str) -> str:
    if name.startswith("zxing"):
        return f"zxing-cpp {_dist_version('zxing-cpp')}"
    if name == "zbar":
        lib = ctypes.util.find_library("zbar") or "libzbar"
        return f"pyzbar {_dist_version('pyzbar')} with {lib}"
    import cv2

    return f"OpenCV {cv2.__version__}"


def _dist_version(dist: str) -> str:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return "?"
