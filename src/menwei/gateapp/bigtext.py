"""Words drawn large in block characters, readable from two steps away.

The glyphs come from a font installed on the laptop (WenQuanYi Micro Hei for Chinese, DejaVu Sans
Bold for Latin letters and the ✔ ! ✖ shapes), rendered with Pillow and turned into half blocks:
one terminal column and half a row per pixel, so a pixel is about square. Where no font is found,
`render` returns None and the caller shows the words as plain text.

Rendering costs a few milliseconds; results are cached, and the app renders its verdict words
once at start-up so a scan never waits for a font.
"""

from __future__ import annotations

import glob
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

CJK_FONTS = (
    "/usr/share/fonts/truetype/wqy/wqy-microhei.ttc",
    "/usr/share/fonts/wqy-microhei/wqy-microhei.ttc",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
)
LATIN_FONTS = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSansCondensed-Bold.ttf",
    "/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans-Bold.ttf",
)
THRESHOLD = 110
LATIN_SQUEEZE = 0.72  # grey level (0-255) from which an anti-aliased pixel counts as ink
SHAPES = {"green": "✔", "amber": "!", "red": "✖", "grey": "?", "undone": "↺"}


@lru_cache(maxsize=4)
def find_font(kind: str) -> str | None:
    """The path of an installed font for `kind` ("cjk" or "latin"), if any."""
    known = CJK_FONTS if kind == "cjk" else LATIN_FONTS
    for path in known:
        if Path(path).is_file():
            return path
    pattern = "wqy-*.tt[cf]" if kind == "cjk" else "DejaVuSans-Bold.ttf"
    found = sorted(glob.glob(f"/usr/share/fonts/**/{pattern}", recursive=True))
    return found[0] if found else None


def _font_for(text: str) -> str | None:
    if text.isascii() or all(ord(c) < 0x3000 for c in text):
        return find_font("latin") or find_font("cjk")
    return find_font("cjk")


@lru_cache(maxsize=256)
def render(text: str, rows: int, gap: int = 2) -> tuple[str, ...] | None:
    """`text` as `rows` lines of half-block characters (2 pixels a row), or None without a font.

    Glyphs are scaled so that the ink of the tallest one fills the rows; `gap` empty columns
    separate the characters.
    """
    path = _font_for(text)
    if path is None or rows < 2:
        return None
    try:
        from PIL import Image, ImageDraw, ImageFont
    except ImportError:
        return None
    height = rows * 2
    size = height
    try:
        for _ in range(3):  # fit the ink, not the font's em box, to the height
            font = ImageFont.truetype(path, size)
            boxes = [font.getbbox(c) for c in text if not c.isspace()]
            if not boxes:
                return None
            ink = max(b[3] for b in boxes) - min(b[1] for b in boxes)
            if ink <= 0:
                return None
            if abs(ink - height) <= 0:
                break
            size = max(4, round(size * height / ink))
        font = ImageFont.truetype(path, size)
    except OSError:
        return None
    boxes = [font.getbbox(c) for c in text if not c.isspace()]
    top = min(b[1] for b in boxes)
    columns: list[list[bool]] = []
    for c in text:
        if c.isspace():
            columns.extend([[False] * height] * max(2, size // 3))
            continue
        left, _, right, _ = font.getbbox(c)
        width = max(1, round(right - left))
        image = Image.new("L", (width, height), 0)
        ImageDraw.Draw(image).text((-left, -top), c, font=font, fill=255)
        if c.isascii() and c.isalpha() and width > 3:
            # Latin capitals are wide; narrower letters keep a whole word on an 80-column line.
            width = max(3, round(width * LATIN_SQUEEZE))
            image = image.resize((width, height))
        pixels = image.load()
        assert pixels is not None
        for x in range(width):
            column = []
            for y in range(height):
                value = pixels[x, y]
                column.append(isinstance(value, int) and value >= THRESHOLD)
            columns.append(column)
        columns.extend([[False] * height] * gap)
    while columns and not any(columns[-1]):
        columns.pop()
    return tuple(_half_blocks(columns, height))


def _half_blocks(columns: Sequence[Sequence[bool]], height: int) -> list[str]:
    lines = []
    for y in range(0, height, 2):
        line = []
        for column in columns:
            top, bottom = column[y], column[y + 1] if y + 1 < height else False
            line.append("█" if top and bottom else "▀" if top else "▄" if bottom else " ")
        lines.append("".join(line))
    return lines


def width_of(lines: Sequence[str] | None) -> int:
    return max((len(line) for line in lines), default=0) if lines else 0


def banner(
    words: str, verdict: str, width: int, max_rows: int, min_rows: int = 5
) -> tuple[str, ...] | None:
    """The shape and the words side by side, as tall as fits `width` (at most `max_rows`).

    None when even `min_rows` does not fit or no font is installed: show plain words then.
    """
    shape = SHAPES.get(verdict, "")
    for rows in range(max_rows, min_rows - 1, -1):
        big = render(words, rows, gap=1 if rows < 6 else 2)
        mark = render(shape, rows) if shape else ()
        if big is None or mark is None:
            return None
        mark_width = width_of(mark)
        spacer = 3 if mark_width else 0
        if mark_width + spacer + width_of(big) <= width:
            out = []
            for i in range(rows):
                left = mark[i].ljust(mark_width) if mark else ""
                out.append(left + " " * spacer + big[i])
            return tuple(out)
    return None


def warm(words: Sequence[str], width: int, max_rows: int) -> None:
    """Render `words` ahead of time (at start-up), so no scan waits for a font."""
    for w in words:
        for verdict in SHAPES:
            banner(w, verdict, width, max_rows)
