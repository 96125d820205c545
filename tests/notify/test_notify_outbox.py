"""The outbox: queued with the event that causes it, each target served once, nothing lost."""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from menwei.core import keys, passes
from menwei.core.decision import Decision
from menwei.core.eventlog import Event
from menwei.core.gate import GateService
from menwei.core.policy import PERMISSIVE_TOML
from menwei.core.store import Store
from menwei.core.text import Text
from menwei.gateapp.wiring import event_hooks
from menwei.notify import outbox
from menwei.notify.due import collect_due
from menwei.notify.hooks import queue_notifications
from menwei.notify.messages import Message
from menwei.notify.outbox import Target
from menwei.notify.sender import send_due
from menwei.notify.targets import SUMMARY_AT_KEY, add_target, remove_target
from tests.conftest import T0, Community

POLICY_2H = PERMISSIVE_TOML.replace('max_time_out = ""', 'max_time_out = "2h"')


class FakeChats:
    """Stands in for apprise: records what each target got; a target can be 'down'."""

    def __init__(self) -> None:
        self.got: list[tuple[int, str, str]] = []
        self.down: set[int] = set()
        self.lock = threading.Lock()

    def __call__(
        self, target: Target, title: str, body: str, severity: str, txn: str | None = None
    ) -> str | None:
        if target.id in self.down:
            return "connection refused"
        with self.lock:
            self.got.append((target.id, title, body))
        return None

    def titles(self, target_id: int | None = None) -> list[str]:
        return [t for i, t, _ in self.got if target_id is None or i == target_id]


def gate_with_hooks(c: Community) -> GateService:
    return GateService(c.store, clock=c.clock, hooks=event_hooks())


def forged_code(household: int = 1203) -> str:
    return passes.sign(passes.PassData(0, 42, household, 1, date(2027, 5, 1)), keys.generate())


def outbox_rows(store: Store) -> list[dict[str, object]]:
    return store.query("select * from outbox order by id")


def test_the_wiring_attaches_the_hook() -> None:
    assert queue_notifications in event_hooks()


def test_nothing_is_queued_without_a_target(community: Community) -> None:
    gate = gate_with_hooks(community)
    gate.decide(forged_code(), operator="t")
    assert outbox_rows(community.store) == []


def test_a_forged_pass_queues_one_alert_per_card_and_day(community: Community) -> None:
    add_target(community.store, "json://127.0.0.1:9/x", group=None, lang="zh", now=T0)
    gate = gate_with_hooks(community)
    code = forged_code()
    for _ in range(3):
        assert gate.decide(code, operator="张三").reason == "forged"
    gate.decide(forged_code(2101), operator="张三")  # another card
    rows = outbox_rows(community.store)
    assert [r["topic"] for r in rows] == ["forged", "forged"]
    assert rows[0]["title"] == "伪造通行证" and rows[0]["title_en"] == "Forged pass"
    assert "证上户号 1203" in str(rows[0]["body"]) and "张三" in str(rows[0]["body"])
    assert rows[0]["audience"] == "community"
    event = community.store.one("select event_id from events where reason = 'forged' limit 1")
    assert event is not None and rows[0]["event_id"] == event["event_id"]


def test_green_scans_queue_nothing(community: Community) -> None:
    add_target(community.store, "json://127.0.0.1:9/x", group=None, lang="zh", now=T0)
    gate = gate_with_hooks(community)
    gate.decide(community.codes[1203], operator="t")
    community.clock.advance(timedelta(minutes=5))
    gate.decide(community.codes[1203], operator="t")
    assert outbox_rows(community.store) == []


def test_the_alert_commits_or_rolls_back_with_its_event(community: Community) -> None:
    add_target(community.store, "json://127.0.0.1:9/x", group=None, lang="zh", now=T0)

    def boom(db: object, decision: Decision, event: Event) -> None:
        raise RuntimeError("disk full")

    gate = GateService(community.store, clock=community.clock, hooks=[queue_notifications, boom])
    with pytest.raises(RuntimeError):
        gate.decide(forged_code(), operator="t")
    assert community.store.query("select * from events where kind = 'deny'") == []
    assert outbox_rows(community.store) == []


def test_revoked_pass_goes_to_the_community_and_the_group(community: Community) -> None:
    from menwei.core.issuing import revoke

    store = community.store
    old = community.codes[1203]
    revoke(community.home, store, 1203, reason="lost", now=T0)
    everyone = add_target(store, "json://127.0.0.1:9/all", group=None, lang="zh", now=T0)[0]
    group3 = add_target(store, "json://127.0.0.1:9/g3", group="3", lang="en", now=T0)[0]
    group5 = add_target(store, "json://127.0.0.1:9/g5", group="5", lang="zh", now=T0)[0]
    gate = gate_with_hooks(community)
    gate.reload()
    assert gate.decide(old, operator="t").reason == "revoked"
    chats = FakeChats()
    report = send_due(store, community.clock.now, deliver=chats)
    assert report.ok and len(report.sent) == 1
    assert chats.titles(everyone.id) == ["已作废的通行证"]
    assert chats.titles(group3.id) == ["Revoked pass"]
    assert chats.titles(group5.id) == []
    body = next(b for i, _, b in chats.got if i == group3.id)
    assert "Bldg 3, unit 2, room 301 (household 1203, group 3)" in body


def test_an_override_alerts(community: Community) -> None:
    store = community.store
    add_target(store, "json://127.0.0.1:9/x", group=None, lang="zh", now=T0)
    gate = gate_with_hooks(community)
    gate.decide(community.codes[1203], operator="t")
    again = gate.decide(community.codes[1203], operator="t", direction="exit")
    assert again.reason == "already_out" and again.event_id
    gate.override(again.event_id, reason="medical", note="发烧", operator="王五")
    (row,) = outbox_rows(store)
    assert row["topic"] == "override" and row["building_group"] == "3"
    assert "特批外出 1 人,理由:就医(发烧)" in str(row["body"])
    assert "原被拒原因:已外出未回" in str(row["body"])


def test_one_message_per_overdue_trip(community: Community) -> None:
    """Still out past the limit (collect_due) and then the late return: one message."""
    store = community.store
    add_target(store, "json://127.0.0.1:9/x", group=None, lang="zh", now=T0)
    community.home.policy_path.write_text(POLICY_2H, encoding="utf-8")
    community.set_policy(POLICY_2H)
    gate = gate_with_hooks(community)
    gate.decide(community.codes[1203], operator="t", headcount=2)
    community.clock.advance(timedelta(hours=1))
    assert collect_due(store, community.clock.now()) == []
    community.clock.advance(timedelta(hours=1, minutes=1))
    (key,) = collect_due(store, community.clock.now())
    assert key.startswith("overdue:")
    assert collect_due(store, community.clock.now()) == []  # asked again: nothing new
    community.clock.advance(timedelta(minutes=30))
    back = gate.decide(community.codes[1203], operator="t")
    assert back.reason == "overdue"
    (row,) = outbox_rows(store)
    assert row["title"] == "超时未归"
    assert "10:00 从gate-1外出 2 人,已外出2小时1分钟,超过外出时限2小时" in str(row["body"])


def test_a_late_return_alerts_when_nobody_noticed_before(community: Community) -> None:
    store = community.store
    add_target(store, "json://127.0.0.1:9/x", group=None, lang="en", now=T0)
    community.set_policy(POLICY_2H)
    gate = gate_with_hooks(community)
    gate.decide(community.codes[2101], operator="t")
    community.clock.advance(timedelta(hours=3))
    assert gate.decide(community.codes[2101], operator="t").reason == "overdue"
    (row,) = outbox_rows(store)
    assert row["title_en"] == "Late return"
    assert row["body_en"] == (
        "gate-1 · Bldg 7, unit 1, room 101 (household 2101) · 11-24 13:00\n"
        "Bldg 7, unit 1, room 101 (household 2101, group 5) came back at 13:00 via gate-1 "
        "after 3 h, over the 2 h limit."
    )
    exit_id = store.one("select event_id from events where kind = 'exit'")
    assert exit_id is not None and row["dedup_key"] == f"overdue:{exit_id['event_id']}"
    assert collect_due(store, community.clock.now()) == []


def test_each_target_gets_a_message_once_even_when_one_was_down(community: Community) -> None:
    store = community.store
    a = add_target(store, "json://127.0.0.1:9/a", group=None, lang="zh", now=T0)[0]
    b = add_target(store, "json://127.0.0.1:9/b", group=None, lang="zh", now=T0)[0]
    gate = gate_with_hooks(community)
    gate.decide(forged_code(), operator="t")
    chats = FakeChats()
    chats.down = {b.id}
    clock = community.clock
    report = send_due(store, clock.now, deliver=chats)
    assert report.failed and not report.ok
    assert "target #2: connection refused" in report.errors[report.failed[0]][0]
    assert chats.titles(a.id) == ["伪造通行证"]
    (row,) = outbox_rows(store)
    assert row["status"] == "failed" and row["attempts"] == 1
    # Backing off: an immediate second pass sends nothing.
    assert send_due(store, clock.now, deliver=chats).sent == []
    chats.down = set()
    clock.advance(timedelta(minutes=1))
    assert len(send_due(store, clock.now, deliver=chats).sent) == 1
    assert chats.titles(a.id) == ["伪造通行证"]  # not again
    assert chats.titles(b.id) == ["伪造通行证"]
    clock.advance(timedelta(hours=2))
    assert send_due(store, clock.now, deliver=chats, force=True).sent == []
    assert outbox.counts(store) == {"pending": 0, "failed": 0, "sent": 1, "withdrawn": 0}


def test_back_off_grows_with_jitter_up_to_an_hour() -> None:
    rng = random.Random(1)
    delays = [outbox.retry_delay(n, rng).total_seconds() for n in range(1, 12)]
    assert 24 <= delays[0] <= 36
    assert 48 <= delays[1] <= 72
    assert all(d <= 3600 * 1.2 for d in delays)
    assert delays[-1] >= 3600 * 0.8


def test_a_message_whose_targets_were_removed_waits_for_a_new_one(community: Community) -> None:
    store = community.store
    t = add_target(store, "json://127.0.0.1:9/a", group=None, lang="zh", now=T0)[0]
    gate_with_hooks(community).decide(forged_code(), operator="t")
    remove_target(store, str(t.id))
    chats = FakeChats()
    report = send_due(store, community.clock.now, deliver=chats)
    assert report.ok and report.no_target and not chats.got
    assert outbox.counts(store)["pending"] == 1
    add_target(store, "json://127.0.0.1:9/new", group=None, lang="zh", now=T0)
    assert len(send_due(store, community.clock.now, deliver=chats, force=True).sent) == 1


def test_two_senders_at_once_send_each_message_once(community: Community) -> None:
    store = community.store
    add_target(store, "json://127.0.0.1:9/a", group=None, lang="zh", now=T0)
    gate = gate_with_hooks(community)
    for n in range(6):
        gate.decide(forged_code(1203 + n), operator="t")
    chats = FakeChats()

    def slow(
        target: Target, title: str, body: str, severity: str, txn: str | None = None
    ) -> str | None:
        time.sleep(0.01)
        return chats(target, title, body, severity)

    assert community.store.path is not None
    path = community.store.path
    errors: list[BaseException] = []

    def run() -> None:
        own = Store.open(path)
        try:
            send_due(own, community.clock.now, deliver=slow)
        except BaseException as exc:
            errors.append(exc)
        finally:
            own.close()

    threads = [threading.Thread(target=run) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors
    assert len(chats.got) == 6
    assert len({b for _, _, b in chats.got}) == 6
    assert outbox.counts(store)["sent"] == 6


def test_a_daily_summary_per_group_at_the_configured_time(community: Community) -> None:
    store = community.store
    g3 = add_target(store, "json://127.0.0.1:9/g3", group="3", lang="zh", now=T0)[0]
    everyone = add_target(store, "json://127.0.0.1:9/all", group=None, lang="en", now=T0)[0]
    store.set_meta(SUMMARY_AT_KEY, "21:00")
    gate = gate_with_hooks(community)
    gate.decide(community.codes[1203], operator="t", headcount=2)
    gate.decide(community.codes[1204], operator="t")
    community.clock.advance(timedelta(hours=1))
    gate.decide(community.codes[1204], operator="t")
    assert collect_due(store, community.clock.now()) == []  # 11:00: not yet
    at_nine = T0 + timedelta(hours=11)  # 21:00 in Shanghai
    keys_ = collect_due(store, at_nine)
    assert keys_ == ["summary:3:2026-11-24", "summary:*:2026-11-24"]
    assert collect_due(store, at_nine + timedelta(hours=1)) == []
    chats = FakeChats()
    send_due(store, lambda: at_nine, deliver=chats)
    ((_, title, body),) = [g for g in chats.got if g[0] == g3.id]
    assert title == "第3楼组 11-24 出入小结"
    assert body.splitlines() == [
        "外出 2 户次 3 人;返回 1 户次;未归 1;超时 0;特批 0",
        "未归:3栋2单元301室",
    ]
    ((_, title, body),) = [g for g in chats.got if g[0] == everyone.id]
    assert title == "测试小区: day summary 2026-11-24"
    assert "Out: 2 trips, 3 people; back: 1" in body


def test_anomalies_after_a_sync_notify_once(community: Community) -> None:
    store = community.store
    add_target(store, "json://127.0.0.1:9/a", group=None, lang="zh", now=T0)
    with store.write() as db:
        db.execute(
            "insert into anomalies (anomaly_id, kind, household, gate_id, event_ids, detail,"
            " detected_at) values ('a1', 'double_exit', 1203, 'gate-2', '[]', NULL, ?)",
            ["2026-11-24T01:30:00.000Z"],
        )
        db.execute(
            "insert into anomalies (anomaly_id, kind, household, gate_id, event_ids, detail,"
            " detected_at) values ('old', 'gap', NULL, 'gate-2', '[]', NULL, ?)",
            ["2026-11-01T01:30:00.000Z"],
        )
    assert collect_due(store, T0) == ["anomaly:a1"]
    assert collect_due(store, T0) == []
    (row,) = outbox_rows(store)
    assert row["title"] == "异常:重复外出"
    assert row["body"] == "同步后发现:重复外出。3栋2单元301室(户号 1203,第3楼组);门岗 gate-2。"


# --- nothing lost, nothing twice, whatever the network does --------------------------------------


def _message(n: int) -> Message:
    return Message(key=f"k{n}", topic="t", title=Text(f"t{n}", f"t{n}"), body=Text("b", "b"))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("queue"), st.integers(0, 5)),
            st.tuples(st.just("net"), st.sets(st.integers(1, 3))),  # the targets that are down
            st.tuples(st.just("send"), st.integers(0, 4000)),  # seconds that pass first
        ),
        max_size=25,
    )
)
def test_every_message_reaches_every_target_exactly_once(
    steps: list[tuple[str, object]],
) -> None:
    store = Store.memory()
    for n in range(3):
        with store.write() as db:
            db.execute(
                "insert into notify_targets (url, building_group, lang, created_at)"
                " values (?, null, 'zh', 'x')",
                [f"json://h/{n}"],
            )
    now = [T0]
    chats = FakeChats()
    queued: set[str] = set()
    rng = random.Random(0)
    for op, arg in steps:
        if op == "queue":
            assert isinstance(arg, int)
            with store.write() as db:
                outbox.queue(db, _message(arg), now=now[0])
            queued.add(f"t{arg}")
        elif op == "net":
            assert isinstance(arg, set)
            chats.down = arg
        else:
            assert isinstance(arg, int)
            now[0] += timedelta(seconds=arg)
            send_due(store, lambda: now[0], deliver=chats, rng=rng)
    chats.down = set()
    for _ in range(3):
        now[0] += timedelta(hours=2)
        send_due(store, lambda: now[0], deliver=chats, rng=rng)
    got = Counter((i, t) for i, t, _ in chats.got)
    assert set(got.values()) <= {1}
    assert set(got) == {(i, t) for i in (1, 2, 3) for t in queued}
    assert outbox.counts(store)["sent"] == len(queued)
