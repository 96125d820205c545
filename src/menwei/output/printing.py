"""Printed passes: one PNG per household and one A4 PDF of cut-out cards per building group.

Each card (85 x 54 mm, a bank-card size) carries the QR symbol on the left and, beside it, what a
volunteer reads: the household number, the address, the building group, the community, the
pass's issue (serial) and its last valid day, in Chinese with an English line.

The QR symbol (the dark modules, without the quiet zone) is 40 mm wide, as DESIGN.md asks:

- In the PDF it is drawn as vector squares at exactly 40 mm.
- In the PNG (300 dpi) a module must be a whole number of pixels, so the module size is
  40 mm x 300 / 25.4 / modules, rounded to the nearest pixel: for a real pass (version 5, 37
  modules) 13 px per module, a 481 px symbol, 40.7 mm. The 4-module quiet zone (52 px, 4.4 mm)
  is white space around it on the card.

CJK text needs a font with Chinese glyphs. `find_cjk_font` looks in the usual places and asks
fontconfig; without one the PNG falls back to English-only labels in Pillow's built-in font and
the PDF to reportlab's built-in STSong-Light (which viewers supply from their Asian font pack).
"""

from __future__ import annotations

import functools
import math
import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING

from PIL import Image, ImageDraw, ImageFont

from menwei.core.model import Household
from menwei.core.names import building_key

if TYPE_CHECKING:
    from reportlab.pdfgen.canvas import Canvas

DPI = 300
MM_PER_INCH = 25.4
PT_PER_MM = 72 / MM_PER_INCH
QR_MM = 40.0  # width of the symbol (dark modules), quiet zone not included
QUIET_MODULES = 4
CARD_W_MM = 85.0
CARD_H_MM = 54.0
QR_LEFT_MM = 5.0  # the quiet zone (about 4.4 mm) fits inside this margin
TEXT_LEFT_MM = 50.0
TEXT_RIGHT_MM = 82.5

# The A4 sheet: 2 x 4 cards with 6 mm gutters where the corner marks go.
PAGE_W_MM = 210.0
PAGE_H_MM = 297.0
COLUMNS = 2
ROWS = 4
GUTTER_MM = 6.0
GRID_TOP_MM = 26.0  # from the top of the page
MARK_OFFSET_MM = 0.8
MARK_LEN_MM = 2.2

KNOWN_CJK_FONTS: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc", 0),
    ("/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc", 0),
    ("/usr/share/fonts/truetype/droid/DroidSansFallbackFull.ttf", 0),
    ("/usr/share/fonts/truetype/arphic/uming.ttc", 0),
    ("/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc", 2),  # index 2: SC
    ("/usr/share/fonts/noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/usr/share/fonts/google-noto-cjk/NotoSansCJK-Regular.ttc", 2),
    ("/System/Library/Fonts/STHeiti Medium.ttc", 0),
    ("/System/Library/Fonts/PingFang.ttc", 0),
    ("/Library/Fonts/Arial Unicode.ttf", 0),
    ("C:/Windows/Fonts/msyh.ttc", 0),
    ("C:/Windows/Fonts/simhei.ttf", 0),
    ("C:/Windows/Fonts/simsun.ttc", 0),
)


@dataclass(frozen=True)
class PrintedPass:
    """One pass to print: the household, its QR text and what the card says about it."""

    household: Household
    serial: int
    code: str  # the QR text, "MW:..." (printed verbatim: a space is part of the code)
    valid_until: date
    community_name: str


@dataclass(frozen=True)
class PrintResult:
    """The files `print_passes` wrote: one PNG per household, one PDF per building group."""

    pngs: tuple[Path, ...]
    pdfs: tuple[Path, ...]


@dataclass(frozen=True)
class FontFile:
    """A TrueType/OpenType font file, with the face index inside a collection (.ttc)."""

    path: Path
    index: int = 0


# --- fonts ---------------------------------------------------------------------------------------


@functools.cache
def cjk_font_candidates() -> tuple[FontFile, ...]:
    """CJK font files on this machine: the known paths first, then what fontconfig lists."""
    found: list[FontFile] = []
    for path, index in KNOWN_CJK_FONTS:
        if Path(path).is_file():
            found.append(FontFile(Path(path), index))
    fc_list = shutil.which("fc-list")
    if fc_list:
        try:
            out = subprocess.run(
                [fc_list, "-f", "%{file}\t%{index}\n", ":lang=zh"],
                capture_output=True,
                text=True,
                timeout=10,
                check=False,
            ).stdout
        except (OSError, subprocess.SubprocessError):
            out = ""
        listed = []
        for line in out.splitlines():
            file, _, face = line.partition("\t")
            if file and Path(file).is_file():
                font = FontFile(Path(file), int(face) if face.isdigit() else 0)
                if font not in found:
                    listed.append(font)
        # TrueType outlines first: reportlab cannot embed CFF (.otf) fonts.
        listed.sort(key=lambda f: (f.path.suffix.lower() not in (".ttf", ".ttc"), str(f.path)))
        found.extend(listed)
    return tuple(found)


def find_cjk_font() -> FontFile | None:
    """The first CJK font found that Pillow can open, or None (passes are then printed with
    English-only labels in the PNG)."""
    for font in cjk_font_candidates():
        if _opens(font):
            return font
    return None


@functools.cache
def _opens(font: FontFile) -> bool:
    try:
        ImageFont.truetype(str(font.path), 12, index=font.index)
    except OSError:
        return False
    return True


@functools.lru_cache(maxsize=64)
def _pil_font(font: FontFile | None, size_px: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    if font is None:
        return ImageFont.load_default(size_px)
    return ImageFont.truetype(str(font.path), size_px, index=font.index)


@functools.cache
def _pdf_font(font: FontFile | None) -> str:
    """Register a CJK font with reportlab once; its name. STSong-Light when none loads."""
    from reportlab.pdfbase import pdfmetrics
    from reportlab.pdfbase.cidfonts import UnicodeCIDFont
    from reportlab.pdfbase.ttfonts import TTFont

    # Without a font of our own (none found), the built-in CID font; else this one, or another
    # found one when reportlab cannot embed it (CFF-based .otf).
    candidates: list[FontFile] = []
    if font is not None:
        candidates = [font, *(f for f in cjk_font_candidates() if f != font)]
    for i, candidate in enumerate(candidates):
        name = f"MenweiCJK-{i}-{candidate.path.stem}-{candidate.index}"
        try:
            pdfmetrics.registerFont(TTFont(name, str(candidate.path), subfontIndex=candidate.index))
        except Exception:  # reportlab raises TTFError and others for fonts it cannot embed
            continue
        return name
    pdfmetrics.registerFont(UnicodeCIDFont("STSong-Light"))
    return "STSong-Light"


# --- the QR symbol -------------------------------------------------------------------------------


def qr_matrix(code: str) -> list[list[bool]]:
    """The modules of the QR symbol for `code` (True = dark), without the quiet zone.

    Built through a QR library's public API: the text verbatim (base45 uses exactly the QR
    alphanumeric characters, so it is one alphanumeric segment), error correction M, the smallest
    version that holds it, the mask with the lowest penalty as the standard scores it. zxing-cpp's
    writer (`create_barcode`, C++, about 0.3 ms a symbol) when the installed zxing-cpp has it,
    else segno's `make_qr` (pure Python, about 3 ms: its mask scoring is most of the time).
    """
    if not _ALPHANUMERIC.issuperset(code):
        bad = next(c for c in code if c not in _ALPHANUMERIC)
        raise ValueError(f"{bad!r} is not a QR alphanumeric character")
    return _zxing_matrix(code) if _HAS_ZXING_WRITER else _segno_matrix(code)


_ALPHANUMERIC = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:")


def _zxing_matrix(code: str) -> list[list[bool]]:
    import numpy as np
    import zxingcpp

    barcode = zxingcpp.create_barcode(code, zxingcpp.BarcodeFormat.QRCode, ec_level="M")
    pixels = np.asarray(barcode.to_image(scale=1, add_quiet_zones=False))
    return (pixels < 128).tolist()  # type: ignore[no-any-return]


def _segno_matrix(code: str) -> list[list[bool]]:
    import segno

    try:
        qr = segno.make_qr(code, error="m", mode="alphanumeric", boost_error=False)
    except (ValueError, segno.DataOverflowError) as exc:
        raise ValueError(f"cannot encode {code[:16]!r}… as a QR symbol: {exc}") from None
    return [[bool(m) for m in row] for row in qr.matrix]


def _zxing_has_writer() -> bool:
    try:
        import zxingcpp
    except ImportError:
        return False
    return hasattr(zxingcpp, "create_barcode")


_HAS_ZXING_WRITER = _zxing_has_writer()


def module_pixels(modules: int, dpi: int = DPI) -> int:
    """Whole pixels per module for a symbol of `modules` modules to be nearest to 40 mm."""
    return max(1, round(QR_MM / MM_PER_INCH * dpi / modules))


def _mm_to_px(mm: float) -> int:
    return round(mm / MM_PER_INCH * DPI)


# --- what the card says --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Line:
    text: str
    size_pt: float
    baseline_mm: float  # from the top of the card
    min_pt: float


def _short_address(h: Household) -> str:
    """'Bldg 3-2-301' for '3号楼', '2', '301': the English line carries the keys, not the
    Chinese names (those are on the Chinese lines as written)."""
    building = building_key(h.building)
    parts = [building, h.unit, h.room] if h.unit else [building, h.room]
    return "Bldg " + "-".join(parts)


def _group_en(h: Household) -> str:
    return h.group_name().en


def _card_lines(p: PrintedPass, *, cjk: bool) -> list[_Line]:
    h = p.household
    until = p.valid_until.isoformat()
    if cjk:
        return [
            _Line(p.community_name, 8, 10.5, 5),
            _Line(f"户号 {h.number}", 20, 19.0, 12),
            _Line(h.address().zh, 10, 25.0, 6),
            _Line(h.group_name().zh, 10, 30.0, 6),
            _Line(f"第{p.serial}版", 8, 35.0, 5),
            _Line(f"有效期至 {until}", 8, 39.0, 5),
            _Line(f"Household {h.number} · {_short_address(h)} · {_group_en(h)}", 6, 43.5, 4),
            _Line(f"Issue {p.serial} · valid until {until}", 6, 46.5, 4),
        ]
    community = p.community_name if p.community_name.isascii() else "Household pass"
    group = _group_en(h).capitalize() if _group_en(h).isascii() else ""
    return [
        _Line(community, 8, 10.5, 5),
        _Line("Household", 7, 15.0, 5),
        _Line(str(h.number), 22, 23.5, 12),
        _Line(_short_address(h) if _short_address(h).isascii() else "", 10, 29.5, 6),
        _Line(group, 10, 34.5, 6),
        _Line(f"Issue {p.serial}", 8, 39.5, 5),
        _Line(f"Valid until {until}", 8, 44.0, 5),
    ]


def _fit(
    text: str, size: float, min_size: float, width: float, measure: Callable[[str, float], float]
) -> tuple[str, float]:
    """The text and size at which it fits `width`: smaller first, then cut short with '…'."""
    while measure(text, size) > width:
        if size <= min_size:
            break
        size = max(min_size, size - 0.5)
    else:
        return text, size
    ellipsis = "…" if not text.isascii() else "..."
    while text and measure(text + ellipsis, size) > width:
        text = text[:-1]
    return text + ellipsis, size


def _natural(value: str) -> tuple[tuple[int, int | str], ...]:
    return tuple(
        (0, int(part)) if part.isdigit() else (1, part)
        for part in re.split(r"(\d+)", value)
        if part
    )


def _card_order(p: PrintedPass) -> tuple[object, ...]:
    h = p.household
    return (_natural(h.building), _natural(h.unit), _natural(h.room), h.number)


# --- PNG -----------------------------------------------------------------------------------------


def render_pass_png(p: PrintedPass) -> Image.Image:
    """The pass as an 85 x 54 mm greyscale card image at 300 dpi."""
    return _render_png(p, qr_matrix(p.code), find_cjk_font())


def _render_png(
    p: PrintedPass, matrix: Sequence[Sequence[bool]], font: FontFile | None
) -> Image.Image:
    card = _blank_card().copy()
    n = len(matrix)
    px = module_pixels(n)
    symbol = Image.new("L", (n, n), 255)
    symbol.putdata([0 if dark else 255 for row in matrix for dark in row])
    symbol = symbol.resize((n * px, n * px), Image.Resampling.NEAREST)
    left = max(_mm_to_px(QR_LEFT_MM), QUIET_MODULES * px)
    top = max((card.height - n * px) // 2, QUIET_MODULES * px)
    card.paste(symbol, (left, top))

    x = _mm_to_px(TEXT_LEFT_MM)
    width = _mm_to_px(TEXT_RIGHT_MM) - x

    def measure(text: str, size: float) -> float:
        return _text_width(font, _pt_to_px(size), text)

    for line in _card_lines(p, cjk=font is not None):
        if not line.text:
            continue
        text, size = _fit(line.text, line.size_pt, line.min_pt, width, measure)
        _draw_text(card, font, _pt_to_px(size), x, _mm_to_px(line.baseline_mm), text)
    return card


@functools.cache
def _blank_card() -> Image.Image:
    return Image.new("L", (_mm_to_px(CARD_W_MM), _mm_to_px(CARD_H_MM)), 255)


# Text is set glyph by glyph from a cache: a community's cards use a few hundred distinct
# characters, and rendering whole lines anew was a third of the time of a card. (No kerning is
# lost that matters: CJK and digits have none, and the English lines are small.)
@dataclass(frozen=True)
class _Glyph:
    mask: Image.Image | None  # 255 = ink; None for a blank (space)
    dx: int  # from the pen position on the baseline to the mask's top left
    dy: int
    advance: float


@functools.lru_cache(maxsize=4096)
def _glyph(font: FontFile | None, size_px: int, char: str) -> _Glyph:
    face = _pil_font(font, size_px)
    advance = float(face.getlength(char))
    if isinstance(face, ImageFont.FreeTypeFont):
        left, top, right, bottom = face.getbbox(char, anchor="ls")
        anchor: str | None = "ls"
    else:  # Pillow's bitmap font has no anchors: its top sits a line's height above
        left, top, right, bottom = face.getbbox(char)
        top, bottom, anchor = top - size_px, bottom - size_px, None
    x0, y0 = math.floor(left), math.floor(top)
    width, height = math.ceil(right) - x0, math.ceil(bottom) - y0
    if width <= 0 or height <= 0:
        return _Glyph(None, 0, 0, advance)
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).text((-x0, -y0), char, font=face, fill=255, anchor=anchor)
    return _Glyph(mask, x0, y0, advance)


def _text_width(font: FontFile | None, size_px: int, text: str) -> float:
    return sum(_glyph(font, size_px, c).advance for c in text)


def _draw_text(
    image: Image.Image, font: FontFile | None, size_px: int, x: int, baseline: int, text: str
) -> None:
    pen = float(x)
    for char in text:
        glyph = _glyph(font, size_px, char)
        if glyph.mask is not None:
            image.paste(0, (round(pen) + glyph.dx, baseline + glyph.dy), glyph.mask)
        pen += glyph.advance


def _pt_to_px(pt: float) -> int:
    return max(1, round(pt / 72 * DPI))


def write_pass_png(path: Path, p: PrintedPass) -> Path:
    """Write the pass image as a black-and-white 300 dpi PNG (atomically)."""
    return _write_png(Path(path), _render_png(p, qr_matrix(p.code), find_cjk_font()))


def _write_png(path: Path, image: Image.Image) -> Path:
    # Black and white, 1 bit a pixel: at 300 dpi a print needs no grey, and the file encodes
    # in a third of the time of a greyscale one (which matters for a whole community).
    mono = image.convert("1", dither=Image.Dither.NONE)
    with _atomic(path) as tmp:
        mono.save(tmp, format="PNG", dpi=(DPI, DPI), compress_level=1)
    return path


# --- PDF -----------------------------------------------------------------------------------------


def write_group_pdf(path: Path, passes: Sequence[PrintedPass], *, title: str) -> Path:
    """Write one A4 PDF of pass cards, 8 to a page with corner cut marks (atomically).

    `title` heads every page (e.g. the community and the building group).
    """
    return _write_pdf(Path(path), [(p, qr_matrix(p.code)) for p in passes], title, find_cjk_font())


def _write_pdf(
    path: Path,
    cards: Sequence[tuple[PrintedPass, Sequence[Sequence[bool]]]],
    title: str,
    font: FontFile | None,
) -> Path:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.pdfbase.pdfmetrics import stringWidth
    from reportlab.pdfgen.canvas import Canvas

    if not cards:
        raise ValueError("no passes to print")
    face = _pdf_font(font)
    cards = sorted(cards, key=lambda c: _card_order(c[0]))
    per_page = COLUMNS * ROWS
    pages = math.ceil(len(cards) / per_page)
    groups = sorted({p.household.group for p, _ in cards}, key=_natural)
    subtitle = (
        f"Household passes · {'group ' + groups[0] if len(groups) == 1 else f'{len(groups)} groups'}"
        f" · {len(cards)} passes"
    )
    grid_w = COLUMNS * CARD_W_MM + (COLUMNS - 1) * GUTTER_MM
    left_mm = (PAGE_W_MM - grid_w) / 2

    def measure(text: str, size: float) -> float:
        return float(stringWidth(text, face, size)) / PT_PER_MM

    with _atomic(path) as tmp:
        canvas = Canvas(str(tmp), pagesize=A4, invariant=True, pageCompression=1)
        canvas.setTitle(title)
        canvas.setCreator("menwei")
        canvas.setSubject(subtitle)
        for page in range(pages):
            # Header and footer.
            top = PAGE_H_MM - 12
            text, size = _fit(title, 13, 8, grid_w - 45, measure)
            canvas.setFont(face, size)
            canvas.drawString(left_mm * mm, top * mm, text)
            canvas.setFont(face, 8)
            canvas.drawString(left_mm * mm, (top - 5) * mm, subtitle)
            canvas.drawRightString(
                (left_mm + grid_w) * mm,
                top * mm,
                f"第 {page + 1} / {pages} 页 · page {page + 1} of {pages}",
            )
            canvas.setFont(face, 7)
            canvas.drawCentredString(
                PAGE_W_MM / 2 * mm,
                12 * mm,
                "沿角标裁切,一户一证 · cut at the corner marks; one pass per household",
            )
            for slot, (p, matrix) in enumerate(cards[page * per_page : (page + 1) * per_page]):
                col, row = slot % COLUMNS, slot // COLUMNS
                x = left_mm + col * (CARD_W_MM + GUTTER_MM)
                y = PAGE_H_MM - GRID_TOP_MM - (row + 1) * CARD_H_MM - row * GUTTER_MM
                _draw_card(canvas, p, matrix, x, y, face, measure)
            canvas.showPage()
        canvas.save()
    return path


def _draw_card(
    canvas: Canvas,
    p: PrintedPass,
    matrix: Sequence[Sequence[bool]],
    x_mm: float,
    y_mm: float,
    face: str,
    measure: Callable[[str, float], float],
) -> None:
    """One card with its bottom-left corner at (x_mm, y_mm) on the page."""
    from reportlab.lib.units import mm

    # Corner marks, just outside each corner, along the card's edges.
    canvas.setLineWidth(0.3)
    canvas.setStrokeGray(0.35)
    path = canvas.beginPath()
    for cx, dx in ((x_mm, -1), (x_mm + CARD_W_MM, 1)):
        for cy, dy in ((y_mm, -1), (y_mm + CARD_H_MM, 1)):
            start_x, end_x = cx + dx * MARK_OFFSET_MM, cx + dx * (MARK_OFFSET_MM + MARK_LEN_MM)
            path.moveTo(start_x * mm, cy * mm)
            path.lineTo(end_x * mm, cy * mm)
            start_y, end_y = cy + dy * MARK_OFFSET_MM, cy + dy * (MARK_OFFSET_MM + MARK_LEN_MM)
            path.moveTo(cx * mm, start_y * mm)
            path.lineTo(cx * mm, end_y * mm)
    canvas.drawPath(path, stroke=1, fill=0)

    # The QR symbol, in module units: each run of dark modules in a row is one rectangle. The
    # operators are written directly: reportlab's path object formats every number as a float
    # in Python, which costs more than the rest of the card.
    n = len(matrix)
    module = QR_MM / n
    canvas.saveState()
    canvas.setFillGray(0)
    canvas.translate((x_mm + QR_LEFT_MM) * mm, (y_mm + (CARD_H_MM - QR_MM) / 2) * mm)
    canvas.scale(module * mm, module * mm)
    canvas.addLiteral(_qr_operators(matrix))
    canvas.restoreState()

    width = TEXT_RIGHT_MM - TEXT_LEFT_MM
    canvas.setFillGray(0)
    for line in _card_lines(p, cjk=True):
        text, size = _fit(line.text, line.size_pt, line.min_pt, width, measure)
        canvas.setFont(face, size)
        canvas.drawString(
            (x_mm + TEXT_LEFT_MM) * mm, (y_mm + CARD_H_MM - line.baseline_mm) * mm, text
        )


def _qr_operators(matrix: Sequence[Sequence[bool]]) -> str:
    """PDF path operators filling the dark modules, one unit per module, origin bottom left."""
    n = len(matrix)
    ops: list[str] = []
    for r, cells in enumerate(matrix):
        y = n - 1 - r
        c = 0
        while c < n:
            if cells[c]:
                start = c
                while c < n and cells[c]:
                    c += 1
                ops.append(f"{start} {y} {c - start} 1 re")
            else:
                c += 1
    ops.append("f")
    return "\n".join(ops)


# --- the whole job -------------------------------------------------------------------------------


def _file_part(name: str) -> str:
    """A group name fit for a file name: letters, digits (any script), '-', '_' and '.'."""
    safe = re.sub(r"[^\w.-]+", "_", name).strip("._") or "group"
    return safe


# A community's worth of passes is printed on every core: below this many, one process is faster.
PARALLEL_FROM = 200


def print_passes(
    out_dir: Path,
    passes: Sequence[PrintedPass],
    *,
    community_name: str,
    sheet: str | None = None,
    workers: int | None = None,
) -> PrintResult:
    """Write `<household>.png` for each pass and `group-<group>.pdf` per building group, or with
    `sheet` one `<sheet>.pdf` for all of them (a reissued pass never overwrites a group's sheet).

    Every file is written atomically (a temporary file, then renamed). The QR symbol of each
    pass is computed once and used for both files. A large job is shared among `workers`
    processes (default: one per CPU), a building group each at a time.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    font = find_cjk_font()
    by_group: dict[str, list[PrintedPass]] = {}
    for p in passes:
        by_group.setdefault(p.household.group, []).append(p)
    jobs: list[_GroupJob] = []
    if sheet is not None:
        title = f"{community_name} 补发出入证"
        jobs.append(_GroupJob(out_dir, list(passes), f"{_file_part(sheet)}.pdf", title, font))
    else:
        used: set[str] = set()
        for group in sorted(by_group, key=_natural):
            stem = f"group-{_file_part(group)}"
            candidate, k = stem, 1
            while candidate.lower() in used:
                k += 1
                candidate = f"{stem}-{k}"
            used.add(candidate.lower())
            label = by_group[group][0].household.group_name().zh
            title = f"{community_name} {label} 出入证"
            jobs.append(_GroupJob(out_dir, by_group[group], f"{candidate}.pdf", title, font))
    workers = workers if workers is not None else (os.cpu_count() or 1)
    if workers > 1 and len(passes) >= PARALLEL_FROM and len(jobs) > 1:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
            done = list(pool.map(_print_group, jobs))
    else:
        done = [_print_group(job) for job in jobs]
    pngs = {png.name: png for pngs_, _ in done for png in pngs_}
    ordered = tuple(pngs[f"{p.household.number}.png"] for p in passes)
    return PrintResult(pngs=ordered, pdfs=tuple(pdf for _, pdf in done))


@dataclass(frozen=True)
class _GroupJob:
    out_dir: Path
    passes: list[PrintedPass]
    pdf_name: str
    title: str
    font: FontFile | None


def _print_group(job: _GroupJob) -> tuple[list[Path], Path]:
    """One building group's PNGs and its PDF sheet (in a worker process for a large job)."""
    matrices = [qr_matrix(p.code) for p in job.passes]
    pngs = [
        _write_png(job.out_dir / f"{p.household.number}.png", _render_png(p, matrix, job.font))
        for p, matrix in zip(job.passes, matrices, strict=True)
    ]
    pdf = _write_pdf(
        job.out_dir / job.pdf_name,
        list(zip(job.passes, matrices, strict=True)),
        job.title,
        job.font,
    )
    return pngs, pdf


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary path next to `path`, renamed over it when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
