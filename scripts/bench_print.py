"""Benchmark: print the passes of a whole community.

    python scripts/bench_print.py [--households 2808] [--groups 50]

QR symbols through segno's public API. Signs a pass for each household of a demo community (the seeds' 钟楼居民区: 2,808 households in
50 building groups) and times, on one core: the QR symbols alone; `print_passes` (a PNG per
household and an A4 PDF per building group, the job the committee runs); and the PDFs alone
(`write_group_pdf` per group, QR symbols included). Prints seconds, wall and CPU.
"""

from __future__ import annotations

import argparse
import os
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import TypeVar

from menwei.core import keys
from menwei.core.demo_data import demo_households
from menwei.core.passes import PassData, sign
from menwei.output.printing import (
    PrintedPass,
    find_cjk_font,
    print_passes,
    qr_matrix,
    write_group_pdf,
)

T = TypeVar("T")
COMMUNITY = "钟楼居民区"


def _cpu() -> float:
    """CPU seconds of this process and of its finished worker processes."""
    me = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def timed(label: str, fn: Callable[[], T], count: int) -> T:
    wall, cpu = time.perf_counter(), _cpu()
    result = fn()
    wall, cpu = time.perf_counter() - wall, _cpu() - cpu
    print(
        f"  {label:<44} {wall:7.2f} s wall {cpu:7.2f} s CPU  ({wall / count * 1000:5.1f} ms a pass)"
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--households", type=int, default=2808)
    parser.add_argument("--groups", type=int, default=50)
    parser.add_argument(
        "--workers", type=int, default=None, help="print_passes processes (default: one per CPU)"
    )
    args = parser.parse_args()

    key = keys.generate()
    until = date(2027, 6, 30)
    passes = [
        PrintedPass(h, 1, sign(PassData(0, 42, h.number, 1, until), key), until, COMMUNITY)
        for h in demo_households(args.households, args.groups)
    ]
    n = len(passes)
    font = find_cjk_font()
    print(f"{n:,} passes in {args.groups} building groups; CJK font: {font.path if font else None}")
    load = os.getloadavg()[0]
    print(f"{os.cpu_count()} CPUs, load average {load:.1f} (figures on a busy machine run slow)")
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        timed("QR symbols (qr_matrix)", lambda: [qr_matrix(p.code) for p in passes], n)
        result = timed(
            "print_passes: PNGs + PDFs",
            lambda: print_passes(
                out / "all", passes, community_name=COMMUNITY, workers=args.workers
            ),
            n,
        )
        groups: dict[str, list[PrintedPass]] = {}
        for p in passes:
            groups.setdefault(p.household.group, []).append(p)
        timed(
            "PDFs only (write_group_pdf per group)",
            lambda: [
                write_group_pdf(out / "pdf" / f"group-{g}.pdf", ps, title=f"{COMMUNITY} {g}")
                for g, ps in groups.items()
            ],
            n,
        )
        size = sum(p.stat().st_size for p in result.pdfs)
        png_size = sum(p.stat().st_size for p in result.pngs)
        print(
            f"{len(result.pngs):,} PNGs ({png_size / 1e6:.1f} MB), "
            f"{len(result.pdfs)} PDFs ({size / 1e6:.1f} MB)"
        )


if __name__ == "__main__":
    main()
