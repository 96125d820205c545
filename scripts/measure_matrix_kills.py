"""Measure: alerts to a real Matrix homeserver that is killed (SIGKILL) while menwei sends.

    python scripts/measure_matrix_kills.py [--kills 6] [--alerts 10] [--seed 1]

Starts matrix-synapse from `.venv-synapse` (`make synapse-env`) on 127.0.0.1, and for an
access-token URL and a password URL: queues N forged-pass alerts, sends them in a thread, kills
the homeserver at a random moment, restarts it, sends again until everything is sent, and counts
what the reader sees in the room: alerts missing, alerts shown twice. Prints one line per kill
and the totals. Uses nothing beyond 127.0.0.1.
"""

from __future__ import annotations

import argparse
import random
import sys
import tempfile
import threading
import time
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.notify.synapse import running_synapse, synapse_python  # noqa: E402

from menwei.core import keys, passes  # noqa: E402
from menwei.core.clock import FrozenClock  # noqa: E402
from menwei.core.community import init_community  # noqa: E402
from menwei.core.gate import GateService  # noqa: E402
from menwei.core.home import Home  # noqa: E402
from menwei.core.store import Store  # noqa: E402
from menwei.notify import outbox  # noqa: E402
from menwei.notify.hooks import queue_notifications  # noqa: E402
from menwei.notify.sender import send_due  # noqa: E402
from menwei.notify.targets import add_target  # noqa: E402

T0 = datetime(2026, 11, 24, 2, 0, tzinfo=UTC)


def forged() -> str:
    return passes.sign(passes.PassData(0, 42, 1203, 1, date(2027, 5, 1)), keys.generate())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kills", type=int, default=6)
    parser.add_argument("--alerts", type=int, default=10)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if synapse_python() is None:
        sys.exit("matrix-synapse is not installed: make synapse-env")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        servers = running_synapse(Path(tmp) / "synapse")
        synapse = next(servers)
        try:
            bot = synapse.register("gatebot", "bot-pass")
            reader = synapse.register("reader", "reader-pass")
            for auth in ("token", "password"):
                totals = Counter[str]()
                for kill in range(args.kills):
                    alias = f"{auth}{kill}"
                    room = synapse.create_room(bot, alias, [reader])
                    who = bot.token if auth == "token" else "gatebot:bot-pass"
                    url = f"matrix://{who}@{synapse.host}/#{alias}"
                    home = Home(Path(tmp) / f"home-{alias}")
                    init_community(home, community=42, name="测试小区", now=T0)
                    store = Store.open(home.db_path)
                    clock = FrozenClock(T0)
                    add_target(store, url, group=None, lang="zh", now=T0)
                    gate = GateService(store, clock=clock, hooks=[queue_notifications])
                    for _ in range(args.alerts):
                        clock.advance(timedelta(seconds=61))
                        gate.decide(forged(), operator="t")
                    path = home.db_path

                    def send(db_path: Path = path, now: FrozenClock = clock) -> None:
                        own = Store.open(db_path)
                        try:
                            send_due(own, now.now)
                        finally:
                            own.close()

                    sender = threading.Thread(target=send)
                    sender.start()
                    time.sleep(rng.uniform(0.2, 0.5 * args.alerts))
                    synapse.kill()
                    sender.join(300)
                    sent_before = outbox.counts(store)["sent"]
                    synapse.start()
                    for _ in range(5):
                        if send_due(store, clock.now, force=True).ok:
                            break
                    seen = Counter(b.split("\n")[0] for b in synapse.texts(reader, room))
                    missing = args.alerts - len(seen)
                    twice = sum(n - 1 for n in seen.values())
                    totals.update(alerts=args.alerts, missing=missing, duplicates=twice)
                    print(
                        f"{auth:8} kill {kill + 1}: {sent_before}/{args.alerts} sent before the "
                        f"kill; in the room {len(seen)}, missing {missing}, duplicates {twice}"
                    )
                    store.close()
                print(
                    f"{auth:8} total: {totals['alerts']} alerts over {args.kills} kills, "
                    f"missing {totals['missing']}, duplicates {totals['duplicates']}"
                )
        finally:
            for _ in servers:
                pass


if __name__ == "__main__":
    main()
