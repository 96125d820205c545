"""Gate app speed: code received to verdict rendered, ready time, memory. Prints its figures.

    python scripts/bench_tui.py [--scans 200]

- code to verdict: a `CodeScanned` message is posted with the time it was read; the scan screen
  notes when the frame showing its verdict has been rendered (after the decision was committed
  to the log with synchronous=FULL). Headless, 80x24, a community of 2,808 households.
- ready: a fresh `python -m menwei gate` process (headless) from its start to the first frame.
- memory: the peak resident size of that process after it has decided every scan.
The tmux script (`scripts/tmux_gate.py`) measures the same from a real terminal.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

HOUSEHOLDS = 2808


def make_home(root: Path, households: int) -> list[str]:
    from menwei.core.community import init_community
    from menwei.core.home import Home
    from menwei.core.issuing import issue
    from menwei.core.store import Store

    home = Home(root)
    now = datetime.now(UTC)
    init_community(home, community=4201, name="钟楼居民区", gate="东门", now=now)
    store = Store.open(home.db_path)
    try:
        with store.write() as db:
            for i in range(households):
                db.execute(
                    "insert into households (household, building, unit, room, building_group,"
                    " members, category, updated_at) values (?, ?, ?, ?, ?, ?, ?, ?)",
                    [
                        1000 + i,
                        str(i // 12 + 1),
                        "1",
                        str(101 + i % 12),
                        str(i // 60 + 1),
                        3,
                        "normal",
                        "2026-01-01T00:00:00.000Z",
                    ],
                )
        issued = issue(home, store, households=None, now=now, valid_until=date(2099, 12, 31))
    finally:
        store.close()
    return [p.code for p in issued]


def child(home: str, codes_file: str, scans: int, started: float) -> None:
    """Runs in a fresh process: open the app headless, scan, report as JSON."""
    from menwei.core.home import Home
    from menwei.gateapp.app import make_app
    from menwei.gateapp.messages import CodeScanned
    from menwei.gateapp.settings import GateSettings

    codes = json.loads(Path(codes_file).read_text())[:scans]
    # Every pass goes out and comes back within seconds here: no repeat window and no question
    # about a quick return, so that each scan is a decision recorded (the path being measured).
    settings = GateSettings(repeat_window_s=0, return_confirm_s=0, sound=False, speech=False)
    app = make_app(Home(Path(home)), camera="none", operator="bench", settings=settings)
    result: dict[str, object] = {}

    async def drive(pilot: object) -> None:
        while app.ready_at is None:
            await asyncio.sleep(0.001)
        result["ready_s"] = app.ready_at - started
        screen = app.scan_screen
        for i in range(2 * len(codes)):  # every pass out, then every pass back in
            code = codes[i % len(codes)]
            screen.latencies_ms.clear()
            app.post_message(CodeScanned(code, "wedge", time.monotonic()))
            while not screen.latencies_ms:
                await asyncio.sleep(0.0005)
            result.setdefault("latencies_ms", [])
            result["latencies_ms"].append(screen.latencies_ms[0])  # type: ignore[attr-defined]
        app.exit()

    app.run(headless=True, size=(80, 24), auto_pilot=drive)  # type: ignore[arg-type]
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            result["peak_rss_mb"] = int(line.split()[1]) / 1024
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--scans", type=int, default=200)
    parser.add_argument(
        "--child", nargs=3, metavar=("HOME", "CODES", "STARTED"), help=argparse.SUPPRESS
    )
    args = parser.parse_args()
    if args.child:
        child(args.child[0], args.child[1], args.scans, float(args.child[2]))
        return
    with tempfile.TemporaryDirectory(prefix="menwei-bench-") as tmp:
        home = Path(tmp) / "home"
        codes = make_home(home, HOUSEHOLDS)
        codes_file = Path(tmp) / "codes.json"
        codes_file.write_text(json.dumps(codes))
        started = time.monotonic()
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--scans",
                str(args.scans),
                "--child",
                str(home),
                str(codes_file),
                repr(started),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        result = json.loads(out.stdout.strip().splitlines()[-1])
    lat = sorted(result["latencies_ms"])
    print(
        f"gate app, {HOUSEHOLDS} households, {len(lat)} scans (each pass out, then back in), 80x24"
    )
    print(
        f"code received -> verdict rendered: median {statistics.median(lat):6.1f} ms, "
        f"p95 {lat[int(0.95 * (len(lat) - 1))]:6.1f} ms, max {lat[-1]:6.1f} ms   (budget 100 ms)"
    )
    print(
        f"ready to scan from the command:    {result['ready_s'] * 1000:6.0f} ms   (budget 1,500 ms)"
    )
    print(f"peak memory:                       {result['peak_rss_mb']:6.0f} MB   (budget 200 MB)")


if __name__ == "__main__":
    main()
