"""Alerts on a real Matrix homeserver (matrix-synapse on 127.0.0.1), counted as the reader sees
them through the client-server API: each alert in the room exactly once, whatever the URL form."""

from __future__ import annotations

import json
import re
import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from itertools import count
from typing import Any

import pytest
from click.testing import CliRunner, Result

from menwei.cli import cli
from menwei.core import keys, passes
from menwei.core.gate import GateService
from menwei.notify import outbox
from menwei.notify.hooks import queue_notifications
from menwei.notify.sender import send_due
from menwei.notify.targets import add_target
from tests.conftest import T0, Community
from tests.notify.synapse import Synapse, User

_rooms = count(1)


def run(*args: str) -> Result:
    return CliRunner().invoke(cli, list(args), catch_exceptions=False)


def forged_code(household: int = 1203) -> str:
    return passes.sign(passes.PassData(0, 42, household, 1, date(2027, 5, 1)), keys.generate())


def gate_of(c: Community) -> GateService:
    return GateService(c.store, clock=c.clock, hooks=[queue_notifications])


def new_room(synapse: Synapse, bot: User, reader: User) -> tuple[str, str]:
    """A room the bot made and the reader joined: (alias name, room id)."""
    alias = f"gate{next(_rooms)}"
    return alias, synapse.create_room(bot, alias, [reader])


def url_for(synapse: Synapse, bot: User, auth: str, room: str) -> str:
    who = f"{bot.user_id[1:].split(':')[0]}:{bot.password}" if auth == "password" else bot.token
    return f"matrix://{who}@{synapse.host}/{room}"


def firsts(bodies: list[str]) -> Counter[str]:
    """How often each message (by its first line) is in the room."""
    return Counter(b.split("\n")[0] for b in bodies)


# --- sent means accepted: N alerts, N messages --------------------------------------------------


@pytest.mark.parametrize("auth", ["password", "token"])
@pytest.mark.parametrize("by", ["alias", "room_id"])
def test_three_alerts_in_one_run_are_three_messages(
    community: Community, synapse: Synapse, bot: User, reader: User, auth: str, by: str
) -> None:
    alias, room_id = new_room(synapse, bot, reader)
    url = url_for(synapse, bot, auth, f"#{alias}" if by == "alias" else room_id)
    added = run("notify", "add", url, "--json")
    assert added.exit_code == 0, added.output
    assert json.loads(added.output)["warnings"] == []
    if by == "room_id":  # room version 12: no ':server' part, apprise needs hsreq=no
        assert ":" not in room_id
        (stored,) = community.store.query("select url from notify_targets")
        assert stored["url"].endswith("?hsreq=no")

    gate = gate_of(community)
    for n, household in enumerate((1203, 1204, 2101)):
        community.clock.advance(timedelta(minutes=n))
        assert gate.decide(forged_code(household), operator="张三").reason == "forged"
    report = send_due(community.store, community.clock.now)
    assert report.ok and len(report.sent) == 3

    seen = firsts(synapse.texts(reader, room_id))
    assert sorted(seen.values()) == [1, 1, 1], seen
    assert sorted(seen) == [
        "伪造通行证 · gate-1 · 证上户号 1203 · 11-24 10:00",
        "伪造通行证 · gate-1 · 证上户号 1204 · 11-24 10:01",
        "伪造通行证 · gate-1 · 证上户号 2101 · 11-24 10:03",
    ]
    (event, *_) = synapse.events(reader, room_id)
    # Rendered in the client: the first line bold, no Markdown heading anywhere.
    assert event["content"]["formatted_body"].startswith("<b>伪造通行证</b> · gate-1")
    assert not event["content"]["body"].startswith("#")
    assert "# " not in event["content"]["body"]

    # A second run sends nothing again.
    assert send_due(community.store, community.clock.now, force=True).sent == []
    assert len(synapse.texts(reader, room_id)) == 3


# --- targets that reach a reader ------------------------------------------------------------------


def test_a_misspelt_alias_is_refused_and_no_room_is_created(
    community: Community, synapse: Synapse, bot: User, reader: User
) -> None:
    alias, _ = new_room(synapse, bot, reader)
    rooms_before = {r["room_id"] for r in synapse.all_rooms()}
    typo = url_for(synapse, bot, "token", f"#{alias}-typo")
    refused = run("notify", "add", typo)
    assert refused.exit_code == 1
    assert "聊天室不存在" in refused.output and "no such room" in refused.output
    refused_json = json.loads(run("notify", "add", typo, "--json").output)
    assert refused_json["ok"] is False and refused_json["code"] == "unknown_room"
    assert community.store.query("select * from notify_targets") == []

    # Added anyway (--no-check): `notify test` still catches it before apprise makes a room.
    assert run("notify", "add", typo, "--no-check").exit_code == 0
    tested = run("notify", "test")
    assert tested.exit_code == 1 and tested.output.count("聊天室不存在") == 1
    assert {r["room_id"] for r in synapse.all_rooms()} == rooms_before


def test_a_room_the_bot_cannot_join_is_refused(
    community: Community, synapse: Synapse, bot: User, reader: User
) -> None:
    private = synapse.create_room(reader, f"private{next(_rooms)}", [])  # the bot is not invited
    result = run("notify", "add", url_for(synapse, bot, "password", private), "--json")
    assert result.exit_code == 1
    assert json.loads(result.output)["code"] == "cannot_join"


def test_errors_name_the_cause_once(
    community: Community, synapse: Synapse, bot: User, reader: User
) -> None:
    alias, _ = new_room(synapse, bot, reader)
    wrong = f"matrix://{bot.user_id[1:].split(':')[0]}:wrong@{synapse.host}/#{alias}"
    refused = run("notify", "add", wrong)
    assert refused.exit_code == 1 and refused.output.count("拒绝登录") == 1
    assert "refused the login" in refused.output

    # A server that is not there: added with a warning (it may only be down now), then the
    # test says so once, and no urllib3 or apprise warning is printed.
    down = f"matrix://{bot.token}@127.0.0.1:9/#{alias}"
    added = run("notify", "add", down)
    assert added.exit_code == 0 and "连不上聊天服务器" in added.output
    tested = run("notify", "test")
    assert tested.exit_code == 1
    assert tested.output.count("连不上聊天服务器") == 1
    assert tested.output.count("cannot connect to the chat server") == 1
    assert "Warning" not in tested.output and "apprise" not in tested.output.lower()


# --- outages and crashes --------------------------------------------------------------------------


@pytest.fixture
def restarts(synapse: Synapse) -> Iterator[Synapse]:
    """The test may stop or kill the homeserver: it is running again afterwards."""
    yield synapse
    if synapse.proc is None:
        synapse.start()


def test_alerts_wait_while_the_homeserver_is_down_and_arrive_once(
    community: Community, restarts: Synapse, bot: User, reader: User
) -> None:
    synapse = restarts
    alias, room_id = new_room(synapse, bot, reader)
    add_target(
        community.store, url_for(synapse, bot, "token", f"#{alias}"), group=None, lang="zh", now=T0
    )
    gate = gate_of(community)
    synapse.stop()
    for household in (1203, 1204, 2101):
        gate.decide(forged_code(household), operator="t")
    failed = run("notify", "send", "--at", "2026-11-24T10:01")
    assert failed.exit_code == 1
    assert failed.output.count("连不上聊天服务器") == 1  # the cause once, not once per message
    assert "3 条消息等待重试" in failed.output
    assert outbox.counts(community.store)["failed"] == 3

    synapse.start()
    sent = run("notify", "send", "--force", "--at", "2026-11-24T10:02")
    assert sent.exit_code == 0, sent.output
    assert sorted(firsts(synapse.texts(reader, room_id)).values()) == [1, 1, 1]


class DropReplies:
    """A TCP relay in front of the homeserver that forwards the Nth message PUT and then hangs
    up without passing the answer on: the homeserver stored the message, the sender never
    heard so. The deterministic form of 'the homeserver died after storing, before answering'."""

    def __init__(self, upstream: int, drop: set[int]) -> None:
        import socket

        self.upstream = upstream
        self.drop = drop
        self.puts = 0
        self.lock = threading.Lock()
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: Any) -> None:
        import socket

        with client, socket.create_connection(("127.0.0.1", self.upstream)) as up:
            client.settimeout(5)
            up.settimeout(30)
            while True:
                request = self._read_request(client)
                if not request:
                    return
                drop = False
                if re.match(rb"PUT /_matrix/client/v3/rooms/[^ ]+/send/", request):
                    with self.lock:
                        self.puts += 1
                        drop = self.puts in self.drop
                up.sendall(request)
                reply = self._read_reply(up)
                if drop:
                    return  # stored upstream; the sender sees the connection drop
                client.sendall(reply)

    @staticmethod
    def _read_request(sock: Any) -> bytes:
        data = b""
        while b"\r\n\r\n" not in data:
            try:
                chunk = sock.recv(65536)
            except OSError:
                return b""
            if not chunk:
                return b""
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        found = re.search(rb"(?i)content-length: *(\d+)", head)
        length = int(found.group(1)) if found else 0
        while len(body) < length:
            body += sock.recv(65536)
        return head + b"\r\n\r\n" + body

    _read_reply = _read_request

    def close(self) -> None:
        self.server.close()


@pytest.mark.parametrize("auth", ["token", "password"])
def test_a_reply_lost_after_the_homeserver_stored_the_message(
    community: Community, restarts: Synapse, bot: User, reader: User, auth: str
) -> None:
    synapse = restarts
    alias, room_id = new_room(synapse, bot, reader)
    relay = DropReplies(synapse.port, drop={2, 4})
    try:
        url = url_for(synapse, bot, auth, f"#{alias}").replace(
            synapse.host, f"127.0.0.1:{relay.port}"
        )
        add_target(community.store, url, group=None, lang="zh", now=T0)
        gate = gate_of(community)
        for household in (1203, 1204, 2101, 2102, 3301):
            gate.decide(forged_code(household), operator="t")
        # A lost reply looks like a lost connection: the rest of that run waits for the next.
        assert not send_due(community.store, community.clock.now).ok
        # The homeserver restarts before the retry: what it remembers is on disk.
        synapse.stop()
        synapse.start()
        for _ in range(6):
            if send_due(community.store, community.clock.now, force=True).ok:
                break
        assert outbox.counts(community.store)["sent"] == 5
        assert relay.puts >= 7  # two replies lost, so two more sends
    finally:
        relay.close()
    seen = firsts(synapse.texts(reader, room_id))
    assert len(seen) == 5  # nothing lost
    if auth == "token":
        # The retry carries the same transaction id: the homeserver knows it and keeps one.
        assert sorted(seen.values()) == [1, 1, 1, 1, 1]
    else:
        # A password URL logs in anew (a new device) for every message, and transaction ids
        # are per device: each lost reply is one duplicate, and no more.
        assert sorted(seen.values()) == [1, 1, 1, 2, 2]


def test_the_homeserver_killed_mid_send(
    community: Community, restarts: Synapse, bot: User, reader: User
) -> None:
    """SIGKILL while 30 alerts go out; restart; send again: every alert is there, once."""
    synapse = restarts
    alias, room_id = new_room(synapse, bot, reader)
    add_target(
        community.store, url_for(synapse, bot, "token", f"#{alias}"), group=None, lang="zh", now=T0
    )
    gate = gate_of(community)
    for n in range(30):
        community.clock.advance(timedelta(seconds=61))
        gate.decide(forged_code(1203), operator=f"值班{n}")
    assert community.store.path is not None
    from menwei.core.store import Store

    def send() -> None:
        own = Store.open(community.store.path)  # type: ignore[arg-type]
        try:
            send_due(own, community.clock.now)
        finally:
            own.close()

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 60
    while outbox.counts(community.store)["sent"] < 5 and time.monotonic() < deadline:
        time.sleep(0.05)
    synapse.kill()
    sender.join(120)
    sent_before = outbox.counts(community.store)["sent"]
    synapse.start()
    for _ in range(3):
        if send_due(community.store, community.clock.now, force=True).ok:
            break
    assert outbox.counts(community.store)["sent"] == 30
    seen = firsts(synapse.texts(reader, room_id))
    print(
        f"killed after {sent_before} of 30 were sent; in the room: {len(seen)} alerts, "
        f"{sum(seen.values()) - len(seen)} duplicate(s)"
    )
    assert len(seen) == 30
    assert set(seen.values()) == {1}


# --- the escort call ------------------------------------------------------------------------------


def test_a_returning_resident_calls_the_building_groups_steward(
    community: Community, synapse: Synapse, bot: User, reader: User
) -> None:
    group_alias, group_room = new_room(synapse, bot, reader)
    committee_alias, committee_room = new_room(synapse, bot, reader)
    assert (
        run(
            "notify", "add", url_for(synapse, bot, "token", f"#{group_alias}"), "--group", "3"
        ).exit_code
        == 0
    )
    assert (
        run("notify", "add", url_for(synapse, bot, "token", f"#{committee_alias}")).exit_code == 0
    )

    registered = run("register-return", "1203", "--note", "外地返岗", "--headcount", "2")
    assert registered.exit_code == 0, registered.output
    assert run("notify", "send").exit_code == 0
    (call,) = synapse.texts(reader, group_room)
    first, second = call.split("\n")
    assert first.startswith("请到门口接回 · gate-1 · 3栋2单元301室(户号 1203) · ")
    assert second.startswith(
        "gate-1:3栋2单元301室 返回 2 人已登记(外地返岗),请第3楼组红色管家到门口接回。"
    )
    assert synapse.texts(reader, committee_room) == []  # the committee is not called for this

    # Turned off: a registration calls nobody.
    assert run("notify", "settings", "--escort", "off").exit_code == 0
    assert run("register-return", "1204", "--note", "出院").exit_code == 0
    assert run("notify", "send").exit_code == 0
    assert len(synapse.texts(reader, group_room)) == 1
    assert community.store.query("select topic from outbox") == [{"topic": "escort"}]


def test_the_daily_summary_counts_escorts(community: Community) -> None:
    from menwei.notify.due import collect_due
    from menwei.notify.targets import SUMMARY_AT_KEY

    store = community.store
    add_target(store, "json://127.0.0.1:9/g3", group="3", lang="zh", now=T0)
    add_target(store, "json://127.0.0.1:9/all", group=None, lang="zh", now=T0)
    store.set_meta(SUMMARY_AT_KEY, "21:00")
    gate = gate_of(community)
    gate.register_return(1203, note="外地返岗", operator="t", headcount=2)
    gate.register_return(2101, note="出院", operator="t")
    community.clock.advance(timedelta(minutes=1))
    gate.register_return(1204, note="录错", operator="t")
    gate.annul_last(operator="t")  # undone: not an escort
    community.clock.advance(timedelta(hours=11))
    collect_due(store, community.clock.now())
    bodies = {r["dedup_key"]: r["body"] for r in store.query("select * from outbox")}
    assert "返回登记 1 次 2 人" in bodies["summary:3:2026-11-24"]
    assert "返回登记 2 次 3 人" in bodies["summary:*:2026-11-24"]


# --- undo withdraws -------------------------------------------------------------------------------


def test_an_undone_override_is_withdrawn_or_corrected(
    community: Community, synapse: Synapse, bot: User, reader: User
) -> None:
    alias, room_id = new_room(synapse, bot, reader)
    add_target(
        community.store, url_for(synapse, bot, "token", f"#{alias}"), group=None, lang="zh", now=T0
    )
    gate = gate_of(community)
    gate.decide(community.codes[1203], operator="t")
    refused = gate.decide(community.codes[1203], operator="t", direction="exit")
    gate.override(refused.event_id or "", reason="medical", operator="王五")
    gate.annul_last(operator="王五")  # before the sender got to it
    assert outbox.counts(community.store)["withdrawn"] == 1
    assert send_due(community.store, community.clock.now).sent == []
    assert synapse.texts(reader, room_id) == []

    community.clock.advance(timedelta(minutes=5))
    refused = gate.decide(community.codes[1204], operator="t", direction="entry")
    gate.override(refused.event_id or "", reason="medical", operator="王五")
    assert len(send_due(community.store, community.clock.now).sent) == 1
    gate.annul_last(operator="王五")  # after: a correction follows
    assert len(send_due(community.store, community.clock.now).sent) == 1
    alert, correction = synapse.texts(reader, room_id)
    assert alert.startswith("特批通行 · gate-1 · 3栋2单元302室(户号 1204)")
    assert correction == (
        "更正 · gate-1 · 11-24 10:05\n"
        "上一条「特批通行 · gate-1 · 3栋2单元302室(户号 1204) · 11-24 10:05」的门岗记录"
        "已由值班员撤销(录错),请忽略。值班:王五。"
    )


def test_a_room_removed_after_it_was_added_swallows_nothing(
    community: Community, synapse: Synapse, bot: User, reader: User
) -> None:
    from urllib.parse import quote

    alias, _ = new_room(synapse, bot, reader)
    assert run("notify", "add", url_for(synapse, bot, "password", f"#{alias}")).exit_code == 0
    synapse.call(
        "DELETE", f"/_matrix/client/v3/directory/room/{quote(f'#{alias}:localhost')}", bot.token
    )
    rooms_before = {r["room_id"] for r in synapse.all_rooms()}
    gate_of(community).decide(forged_code(), operator="t")
    failed = run("notify", "send", "--json")
    assert failed.exit_code == 1
    (target,) = json.loads(failed.output)["targets_failed"]
    assert target["code"] == "unknown_room" and target["waiting"] == 1
    assert {r["room_id"] for r in synapse.all_rooms()} == rooms_before
    assert outbox.counts(community.store)["failed"] == 1  # kept, to be sent once it is fixed
