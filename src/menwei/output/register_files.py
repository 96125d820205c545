"""The movement register and the day summary as files: CSV for Excel, A4 PDF for the printer.

CSV is UTF-8 with a BOM, which is what makes Excel show the Chinese instead of mojibake. The PDFs
use the CJK font the pass printer finds on this machine, else reportlab's built-in STSong-Light.
"""

from __future__ import annotations

import csv
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from menwei.core.register import (
    REGISTER_COLUMNS,
    DaySummary,
    Register,
    group_sort_key,
    summary_lines,
    summary_title,
    window_words,
)
from menwei.core.text import group_label


@contextmanager
def _atomic(path: Path) -> Iterator[Path]:
    """A temporary path next to `path`, renamed over it when the block succeeds."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        tmp.chmod(0o644)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_register_csv(register: Register, path: Path, lang: str = "zh") -> Path:
    """The register as CSV: UTF-8 with a BOM so Excel shows the Chinese, one line per trip."""
    with _atomic(path) as tmp, tmp.open("w", encoding="utf-8-sig", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(register.header(lang))
        writer.writerows(register.rows(lang))
    return path


def _pdf_font_name() -> str:
    from menwei.output.printing import _pdf_font, find_cjk_font

    # The pass printer already knows how to find and register a CJK font (STSong-Light otherwise).
    return _pdf_font(find_cjk_font())


# Column widths of the register table in millimetres (A4 portrait, 15 mm margins: 180 mm).
_REGISTER_WIDTHS_MM = (8, 13, 10, 9, 11, 10, 17, 17, 25, 24, 11, 25)


def _pdf_doc(path: Path, title: str, footer: str) -> tuple[Any, Any]:
    """An A4 document and the page callback that prints its footer and page number."""
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.units import mm
    from reportlab.platypus import SimpleDocTemplate

    font = _pdf_font_name()

    def on_page(canvas: Any, doc: Any) -> None:
        canvas.saveState()
        canvas.setFont(font, 8)
        canvas.drawString(15 * mm, 10 * mm, footer)
        canvas.drawRightString(A4[0] - 15 * mm, 10 * mm, f"{doc.page}")
        canvas.restoreState()

    doc = SimpleDocTemplate(
        str(path),
        pagesize=A4,
        leftMargin=15 * mm,
        rightMargin=15 * mm,
        topMargin=15 * mm,
        bottomMargin=18 * mm,
        title=title,
        author="menwei",
    )
    return doc, on_page


def _styles() -> dict[str, Any]:
    from reportlab.lib.styles import ParagraphStyle

    font = _pdf_font_name()
    return {
        "title": ParagraphStyle("title", fontName=font, fontSize=16, leading=20, spaceAfter=4),
        "sub": ParagraphStyle("sub", fontName=font, fontSize=9.5, leading=12, spaceAfter=8),
        "cell": ParagraphStyle("cell", fontName=font, fontSize=8, leading=10, wordWrap="CJK"),
        "head": ParagraphStyle("head", fontName=font, fontSize=8, leading=10, wordWrap="CJK"),
        "line": ParagraphStyle("line", fontName=font, fontSize=10, leading=14, wordWrap="CJK"),
        "detail": ParagraphStyle(
            "detail", fontName=font, fontSize=9.5, leading=13, leftIndent=14, wordWrap="CJK"
        ),
    }


def _para(text: str, style: Any) -> Any:
    from xml.sax.saxutils import escape

    from reportlab.platypus import Paragraph

    return Paragraph(escape(text), style)


def write_register_pdf(register: Register, path: Path, lang: str = "zh") -> Path:
    """The register as a printable A4 page (or pages): a table, the totals and a signature line."""
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import KeepTogether, Spacer, Table, TableStyle

    st = _styles()
    title = register.title.get(lang)
    story: list[Any] = [
        _para(title, st["title"]),
        _para(register.subtitle(lang), st["sub"]),
    ]
    data = [[_para(h, st["head"]) for h in register.header(lang)]]
    data += [[_para(c, st["cell"]) for c in row] for row in register.rows(lang)]
    empty = len(data) == 1
    if empty:
        text = "本日无出入记录" if lang == "zh" else "No movements this day"
        data.append([_para(text, st["cell"])] + [""] * (len(REGISTER_COLUMNS) - 1))
    table = Table(data, colWidths=[w * mm for w in _REGISTER_WIDTHS_MM], repeatRows=1)
    style: list[tuple[Any, ...]] = [("SPAN", (0, 1), (-1, 1))] if empty else []
    style += [
        ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
        ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)),
        ("VALIGN", (0, 0), (-1, -1), "TOP"),
        ("LEFTPADDING", (0, 0), (-1, -1), 2),
        ("RIGHTPADDING", (0, 0), (-1, -1), 2),
    ]
    for i, trip in enumerate(register.trips, 1):
        if trip.overdue:
            style.append(("BACKGROUND", (0, i), (-1, i), colors.Color(1, 0.92, 0.85)))
    table.setStyle(TableStyle(style))
    sign = (
        "楼组长签字:______________    值班志愿者:______________    日期:__________"
        if lang == "zh"
        else "Group leader: ______________    Volunteer: ______________    Date: __________"
    )
    closing = [
        Spacer(1, 6 * mm),
        _para(register.totals_text().get(lang), st["line"]),
        Spacer(1, 10 * mm),
        _para(sign, st["line"]),
    ]
    story += [table, KeepTogether(closing)]
    footer = f"{register.community_name} · {register.title.get(lang)} · {register.day:%Y-%m-%d}"
    with _atomic(path) as tmp:
        doc, on_page = _pdf_doc(tmp, title, footer)
        doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return path


def write_summary_pdf(summary: DaySummary, path: Path, lang: str = "zh") -> Path:
    """The community's day summary as an A4 page."""
    from reportlab.lib import colors
    from reportlab.lib.units import mm
    from reportlab.platypus import Spacer, Table, TableStyle

    st = _styles()
    title = summary_title(summary).get(lang)
    printed = summary.policy.local(summary.as_of)
    sub = f"{summary.day:%Y-%m-%d} · " + (
        f"截至 {printed:%m-%d %H:%M}" if lang == "zh" else f"as of {printed:%m-%d %H:%M}"
    )
    story: list[Any] = [_para(title, st["title"]), _para(sub, st["sub"])]
    windows = summary.trips_by_window_group()
    groups = sorted({g for row in windows.values() for g in row}, key=group_sort_key)
    if groups:
        head = ["时段" if lang == "zh" else "Window"]
        head += [group_label(g).get(lang) for g in groups] + ["合计" if lang == "zh" else "Total"]
        data = [[_para(h, st["head"]) for h in head]]
        for window, row in windows.items():
            cells = [window_words(window).get(lang)]
            cells += [str(row.get(g, "")) for g in groups] + [str(sum(row.values()))]
            data.append([_para(c, st["cell"]) for c in cells])
        table = Table(data, repeatRows=1, hAlign="LEFT")
        table.setStyle(
            TableStyle(
                [
                    ("GRID", (0, 0), (-1, -1), 0.5, colors.black),
                    ("BACKGROUND", (0, 0), (-1, 0), colors.Color(0.9, 0.9, 0.9)),
                ]
            )
        )
        story += [table, Spacer(1, 5 * mm)]
    for line in summary_lines(summary, lang, windows=False):
        detail = line.startswith("  ")
        story.append(_para(line.strip(), st["detail"] if detail else st["line"]))
    with _atomic(path) as tmp:
        doc, on_page = _pdf_doc(tmp, title, f"{summary.community_name} · {summary.day:%Y-%m-%d}")
        doc.build(story, onFirstPage=on_page, onLaterPages=on_page)
    return path
