"""Benchmark: read and import a large roster.

    python scripts/bench_roster.py [--rows 150000] [--xlsx]

A community holds at most 65,535 households (the pass format's household field is 16 bits), so
the budget's 150,000 households are imported as a full community of 65,535 (all added), the same
community again with every household changed (all updated), and then as many changed
households again as make up --rows in total. Each import is one transaction in a real database
file (WAL, synchronous=FULL). Reading the CSV (and, with --xlsx, an XLSX workbook) of 65,535
rows is timed too. Prints seconds, wall and CPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from menwei.core.demo_data import demo_households, write_roster_csv
from menwei.core.model import Household
from menwei.core.roster import import_roster, read_roster
from menwei.core.store import Store

MAX_HOUSEHOLDS = 0xFFFF
T = TypeVar("T")


def timed(label: str, fn: Callable[[], T]) -> tuple[T, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    result = fn()
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    print(f"  {label:<52} {wall:7.2f} s wall {cpu:7.2f} s CPU")
    return result, wall


def changed(households: list[Household], step: int) -> list[Household]:
    return [dataclasses.replace(h, members=(h.members + step) % 100) for h in households]


def write_xlsx(path: Path, households: list[Household]) -> None:
    import openpyxl

    workbook = openpyxl.Workbook(write_only=True)
    sheet = workbook.create_sheet()
    sheet.append(["户号", "楼栋", "单元", "室号", "楼组", "人数", "类别", "联系电话"])
    for h in households:
        sheet.append([h.number, h.building, h.unit, h.room, h.group, h.members, h.category])
    workbook.save(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=150_000, help="rows imported in total")
    parser.add_argument("--xlsx", action="store_true", help="also time reading an XLSX file")
    args = parser.parse_args()

    count = min(args.rows, MAX_HOUSEHOLDS)
    households = demo_households(count, math.ceil(count / 30))
    print(f"roster: {count:,} households in {math.ceil(count / 30):,} building groups")
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        csv_path = write_roster_csv(root / "roster.csv", households)
        read, _ = timed(f"read_roster CSV, {count:,} rows", lambda: read_roster(csv_path))
        assert read == households
        if args.xlsx:
            xlsx_path = root / "roster.xlsx"
            write_xlsx(xlsx_path, households)
            timed(f"read_roster XLSX, {count:,} rows", lambda: read_roster(xlsx_path))

        store = Store.open(root / "menwei.db", create=True)
        total_rows, total_time, step = 0, 0.0, 0
        plan = [households]
        remaining = args.rows - count
        while remaining > 0:
            plan.append(households[: min(remaining, count)])
            remaining -= len(plan[-1])
        for batch in plan:
            rows = batch if step == 0 else changed(batch, step)
            now = f"2026-11-{24 + step:02d}T02:00:00.000Z"
            result, seconds = timed(
                f"import_roster {len(rows):,} rows",
                functools.partial(import_roster, store, rows, now=now),
            )
            print(
                f"    added {result.added:,}, updated {result.updated:,}, "
                f"unchanged {result.unchanged:,}"
            )
            total_rows += len(rows)
            total_time += seconds
            step += 1
        same = changed(households, step - 1)
        timed(
            f"import_roster {count:,} rows, none changed",
            functools.partial(import_roster, store, same, now="2026-12-31T00:00:00.000Z"),
        )
        store.close()
    print(f"{total_rows:,} rows imported in {total_time:.2f} s ({total_rows / total_time:,.0f}/s)")


if __name__ == "__main__":
    main()
