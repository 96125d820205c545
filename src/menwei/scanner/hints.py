"""What to tell the person at the gate when the camera sees a QR code but cannot read it.

`find_finders` looks for the three nested squares in a QR symbol's corners (a dark ring, a light
ring, a dark core: a contour with a child and a grandchild whose areas are in a finder's
proportions); `observe` measures what the frame shows around them: the size of a module, how
sharp the edges are, how much of the symbol is blown out. `HintTracker` turns a second of such
observations without a read into one `Hint`, in both languages.
"""

from __future__ import annotations

import statistics
from collections import deque
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

Image = npt.NDArray[np.uint8]
HintCode = Literal["closer", "steady", "glare"]

SMALL_MODULE_PX = 2.6  # below this a symbol is rarely read: come closer
SHARP_EDGE = 0.35  # steepest edge / contrast below this: blurred (motion or focus)
GLARE_SHARE = 0.005  # this share of the symbol's area at sensor saturation: a reflection
SATURATED = 250
HINT_AFTER_S = 1.0


@dataclass(frozen=True)
class Hint:
    """A short instruction for the volunteer or resident, in both languages."""

    code: HintCode
    zh: str
    en: str

    def text(self, lang: str) -> str:
        return self.zh if lang == "zh" else self.en


HINTS: dict[HintCode, Hint] = {
    "closer": Hint("closer", "靠近一点", "Bring the pass closer"),
    "steady": Hint("steady", "别晃", "Hold the pass still"),
    "glare": Hint("glare", "避开反光", "Tilt the pass away from the glare"),
}


@dataclass(frozen=True)
class Finder:
    x: float  # centre, frame pixels
    y: float
    size: float  # side of the finder (7 modules), pixels


@dataclass(frozen=True)
class Observation:
    """What one frame shows of a symbol it could not read."""

    module_px: float
    sharpness: float  # steepest edge over the finder's contrast, per pixel (1: a clean step)
    saturated: float  # share of the symbol's area at sensor saturation


def find_finders(gray: Image) -> list[Finder]:
    """QR finder patterns in a grey frame (may include a few look-alikes; never raises)."""
    import cv2

    binary = cv2.adaptiveThreshold(
        gray, 255, cv2.ADAPTIVE_THRESH_MEAN_C, cv2.THRESH_BINARY_INV, 15, 6
    )
    # Sensor noise makes thousands of specks, each a contour (100 ms of findContours); an
    # opening removes them and keeps the rings of a finder with modules from ~2 px.
    binary = cv2.morphologyEx(binary, cv2.MORPH_OPEN, np.ones((2, 2), np.uint8))
    contours, hierarchy = cv2.findContours(binary, cv2.RETR_TREE, cv2.CHAIN_APPROX_SIMPLE)
    if hierarchy is None:
        return []
    tree = hierarchy[0]
    child = tree[:, 2]
    has_child = child >= 0
    grandchild = np.where(has_child, tree[np.maximum(child, 0), 2], -1)
    found = []
    for index in np.flatnonzero(grandchild >= 0):
        i = int(index)
        outer = cv2.contourArea(contours[i])
        if outer < 60:  # a finder of 1.1 px modules; smaller ones are noise
            continue
        ring = cv2.contourArea(contours[int(child[i])])
        core = cv2.contourArea(contours[int(grandchild[i])])
        if ring <= 0 or core <= 0:
            continue
        # A finder is 7x7 outside, 5x5 light ring, 3x3 dark core: area ratios ~2 and ~5.4.
        if not (1.3 < outer / ring < 3.5 and 2.5 < outer / core < 14):
            continue
        x, y, w, h = cv2.boundingRect(contours[i])
        if not 0.4 < w / h < 2.5:
            continue
        found.append(Finder(x + w / 2, y + h / 2, float(np.sqrt(outer))))
    return found


def observe(gray: Image, finders: list[Finder]) -> Observation | None:
    """Module size, edge sharpness and glare around the finders found in `gray`."""
    if not finders:
        return None
    import cv2

    # The symbol's extent: the finders' box, or about a symbol's width around a lone finder.
    size = statistics.median(f.size for f in finders)
    xs, ys = [f.x for f in finders], [f.y for f in finders]
    reach = size if len(finders) >= 2 else 3 * size
    h, w = gray.shape
    x0, x1 = max(int(min(xs) - reach), 0), min(int(max(xs) + reach), w)
    y0, y1 = max(int(min(ys) - reach), 0), min(int(max(ys) + reach), h)
    symbol = gray[y0:y1, x0:x1]
    if symbol.size == 0:
        return None
    saturated = float(np.count_nonzero(symbol >= SATURATED)) / symbol.size
    sharp = []
    for f in finders[:3]:
        half = int(f.size * 0.75) + 2
        patch = gray[
            max(int(f.y) - half, 0) : int(f.y) + half, max(int(f.x) - half, 0) : int(f.x) + half
        ]
        if patch.size < 16:
            continue
        low, high = np.percentile(patch, (5, 95))
        contrast = float(high - low)
        if contrast < 10:
            continue
        gx = cv2.Sobel(patch, cv2.CV_32F, 1, 0, ksize=3) / 8
        gy = cv2.Sobel(patch, cv2.CV_32F, 0, 1, ksize=3) / 8
        steepest = float(np.percentile(np.hypot(gx, gy), 98))
        sharp.append(steepest / contrast)
    sharpness = statistics.median(sharp) if sharp else 0.0
    return Observation(size / 7, sharpness, saturated)


def advise(observations: list[Observation]) -> Hint:
    """The one thing most likely to help, from a second of unread sightings."""
    glare = statistics.median(o.saturated for o in observations)
    module = statistics.median(o.module_px for o in observations)
    sharpness = statistics.median(o.sharpness for o in observations)
    if glare >= GLARE_SHARE:
        return HINTS["glare"]
    if module < SMALL_MODULE_PX:
        return HINTS["closer"]
    if sharpness < SHARP_EDGE:
        return HINTS["steady"]
    return HINTS["closer"]  # readable size and sharp, yet unread: larger modules help most


class HintTracker:
    """Feeds on every frame; says what to do once a symbol has been seen for `after_s` seconds
    (in at least a third of the frames: a marginal symbol's finders come and go) without a read.

    `update` returns the hint to show now, or None; a read or a second without a symbol clears
    it. The same hint is not repeated: `changed` says whether the returned value is new.
    """

    def __init__(self, after_s: float = HINT_AFTER_S) -> None:
        self.after_s = after_s
        self._seen: deque[tuple[float, Observation | None]] = deque()
        self._since: float | None = None  # when the current unread stretch began
        self.current: Hint | None = None
        self.changed = False

    def update(self, at: float, *, read: bool, seen: Observation | None) -> Hint | None:
        before = self.current
        if read:
            self._seen.clear()
            self._since = None
            self.current = None
        else:
            self._seen.append((at, seen))
            while self._seen and at - self._seen[0][0] > self.after_s:
                self._seen.popleft()
            sightings = [o for _, o in self._seen if o is not None]
            if len(sightings) * 3 < len(self._seen):
                self._since = None
                self.current = None
            else:
                if self._since is None:
                    self._since = at
                if at - self._since >= self.after_s:
                    self.current = advise(sightings)
        self.changed = self.current != before
        return self.current
