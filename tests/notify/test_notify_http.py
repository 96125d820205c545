"""Notifications over a real socket: a webhook on 127.0.0.1 receiving apprise's `json://` posts,
taken down and brought back; the background sender; the `menwei notify` commands."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from datetime import date, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from click.testing import CliRunner

from menwei.cli import cli
from menwei.core import keys, passes
from menwei.core.gate import GateService
from menwei.core.policy import PERMISSIVE_TOML
from menwei.gateapp.wiring import event_hooks
from menwei.notify import outbox
from menwei.notify.due import collect_due
from menwei.notify.sender import send_due
from menwei.notify.targets import add_target
from menwei.notify.worker import OutboxWorker
from tests.conftest import T0, Community

POLICY_2H = PERMISSIVE_TOML.replace('max_time_out = ""', 'max_time_out = "2h"')


class Webhook:
    """An HTTP server on 127.0.0.1 that records every POST; stop() closes the port."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []
        self.hold: threading.Event | None = None  # when set, requests wait for it
        self.entered = threading.Event()
        self._server: ThreadingHTTPServer | None = None
        self.port = 0

    def start(self, tls: tuple[Any, Any] | None = None) -> None:
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                hook.entered.set()
                if hook.hold is not None:
                    hook.hold.wait(5)
                size = int(self.headers.get("Content-Length", 0))
                hook.posts.append((self.path, json.loads(self.rfile.read(size) or b"{}")))
                reply = b'{"ok": true, "result": {"message_id": 1}}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        if tls is not None:
            import ssl

            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        ).start()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    @property
    def url(self) -> str:
        return f"json://127.0.0.1:{self.port}/hook"

    def titles(self) -> list[str]:
        """What each message says happened: its first line up to the first ' · '."""
        return [str(body.get("message")).split(" · ")[0] for _, body in self.posts]


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    hook.start()
    yield hook
    hook.stop()


def forged_code(household: int = 1203) -> str:
    return passes.sign(passes.PassData(0, 42, household, 1, date(2027, 5, 1)), keys.generate())


def test_overdue_return_and_forged_pass_each_one_message_across_an_outage(
    community: Community, webhook: Webhook
) -> None:
    store, clock = community.store, community.clock
    add_target(store, webhook.url, group=None, lang="zh", now=T0)
    community.set_policy(POLICY_2H)
    gate = GateService(store, clock=clock, hooks=event_hooks())

    webhook.stop()  # the network is down
    assert gate.decide(forged_code(), operator="张三").reason == "forged"
    gate.decide(community.codes[1203], operator="张三", headcount=2)
    report = send_due(store, clock.now)
    assert report.failed and not report.sent
    assert report.errors[report.failed[0]] == ["target #1: cannot_connect"]
    assert report.causes == {1: "cannot_connect"} and report.waiting_for == {1: 1}

    clock.advance(timedelta(hours=2, minutes=5))
    collect_due(store, clock.now())
    report = send_due(store, clock.now)
    assert len(report.failed) == 2  # both wait, neither lost
    clock.advance(timedelta(minutes=10))
    assert gate.decide(community.codes[1203], operator="李四").reason == "overdue"
    assert outbox.counts(store) == {"pending": 0, "failed": 2, "sent": 0, "withdrawn": 0}

    webhook.start()  # back, on the same port
    clock.advance(timedelta(hours=2))
    report = send_due(store, clock.now)
    assert report.ok and len(report.sent) == 2
    for _ in range(2):
        clock.advance(timedelta(hours=2))
        collect_due(store, clock.now())
        assert send_due(store, clock.now, force=True).sent == []
    assert sorted(webhook.titles()) == ["伪造通行证", "超时未归"]
    bodies = [body for _, body in webhook.posts]
    assert all(b["type"] == "warning" or b["type"] == "failure" for b in bodies)
    assert all(b["title"] == "" for b in bodies)  # the first line is the title: no '# ' anywhere
    overdue = next(b for b in bodies if b["message"].startswith("超时未归"))
    first, second = overdue["message"].split("\n")
    assert first == "超时未归 · gate-1 · 3栋2单元301室(户号 1203) · 11-24 12:05"
    assert second.startswith("3栋2单元301室(户号 1203,第3楼组)10:00 从gate-1外出 2 人")


def test_a_chat_platform_url_goes_through_apprise_too(
    community: Community, webhook: Webhook, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Telegram as an example of a chat URL: its API base pointed at the local server."""
    from apprise.plugins.telegram import NotifyTelegram

    monkeypatch.setattr(NotifyTelegram, "notify_url", f"http://127.0.0.1:{webhook.port}/bot")
    store = community.store
    url = "tgram://123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw/-1001234567890"
    add_target(store, url, group="3", lang="zh", now=T0)
    gate = GateService(store, clock=community.clock, hooks=event_hooks())
    from menwei.core.issuing import revoke

    old = community.codes[1203]
    revoke(community.home, store, 1203, reason="lost", now=T0)
    gate.reload()
    assert gate.decide(old, operator="t").reason == "revoked"
    assert send_due(store, community.clock.now).ok
    ((path, body),) = webhook.posts
    assert path.endswith("/sendMessage")
    assert body["chat_id"] == -1001234567890
    assert "已作废的通行证" in body["text"] and "3栋2单元301室" in body["text"]


def test_the_background_sender_never_holds_up_a_scan(
    community: Community, webhook: Webhook
) -> None:
    store, clock = community.store, community.clock
    add_target(store, webhook.url, group=None, lang="zh", now=T0)
    gate = GateService(store, clock=clock, hooks=event_hooks())
    worker = OutboxWorker(community.home, interval=3600, clock=clock)
    worker.start()
    try:
        assert worker.wait_idle(10)
        webhook.hold = threading.Event()
        gate.decide(forged_code(1203), operator="t")
        worker.wake()
        assert webhook.entered.wait(10)  # the sender is inside an HTTP request...
        # ...and the gate records the next scans meanwhile (a held write lock would stop them).
        assert gate.decide(community.codes[2101], operator="t").recorded
        assert gate.decide(forged_code(2102), operator="t").recorded
        assert not webhook.posts
        webhook.hold.set()
        worker.wake()
        assert worker.wait_idle(10)
        worker.wake()
        assert worker.wait_idle(10)
    finally:
        worker.stop()
    assert worker.last_error is None
    assert webhook.titles() == ["伪造通行证", "伪造通行证"]
    assert outbox.counts(store)["sent"] == 2


# --- the commands --------------------------------------------------------------------------------


def run(*args: str) -> Any:
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    return result


def test_notify_commands(community: Community, webhook: Webhook) -> None:
    bad = run("notify", "add", "nosuchchat://whatever")
    assert bad.exit_code == 1 and "apprise does not understand" in bad.output

    added = run("notify", "add", webhook.url + "?+X-Token=s3cret", "--json")
    assert added.exit_code == 0, added.output
    target = json.loads(added.output)
    assert target["added"] and target["group"] is None
    again = json.loads(run("notify", "add", webhook.url + "?+X-Token=s3cret", "--json").output)
    assert not again["added"] and again["id"] == target["id"]
    grp = run("notify", "add", webhook.url.replace("hook", "g3"), "--group", "3", "--lang", "en")
    assert grp.exit_code == 0 and "楼组 3" in grp.output

    listed = json.loads(run("notify", "list", "--json").output)
    assert [t["group"] for t in listed["targets"]] == [None, "3"]
    assert listed["settings"] == {"summary_at": None, "anomalies": True, "escort": True}

    tested = run("notify", "test", "--json")
    assert tested.exit_code == 0, tested.output
    assert sorted(webhook.titles()) == ["menwei test", "门卫测试"]
    assert webhook.posts[0][1]["message"]

    gate = GateService(community.store, clock=community.clock, hooks=event_hooks())
    gate.decide(forged_code(), operator="t")
    webhook.stop()
    failed = run("notify", "send", "--json", "--at", "2026-11-24T10:01")
    assert failed.exit_code == 1
    result = json.loads(failed.output)
    assert result["ok"] is False and len(result["failed"]) == 1
    status = json.loads(run("notify", "status", "--json").output)
    assert status["counts"] == {"pending": 0, "failed": 1, "sent": 0, "withdrawn": 0}
    (waiting,) = status["waiting"]
    assert waiting["title"] == "伪造通行证" and waiting["attempts"] == 1
    assert waiting["deliveries"][0]["status"] == "failed"
    text = run("notify", "status")
    assert "失败待重试 1" in text.output and "连不上聊天服务器" in text.output

    webhook.start()
    sent = run("notify", "send", "--force", "--at", "2026-11-24T10:02")
    assert sent.exit_code == 0, sent.output
    assert "sent 1" in sent.output
    assert webhook.titles().count("伪造通行证") == 1

    settings = json.loads(run("notify", "settings", "--summary-at", "21:00", "--json").output)
    assert settings == {"summary_at": "21:00", "anomalies": True, "escort": True}
    assert run("notify", "settings", "--summary-at", "25:00").exit_code == 1

    removed = run("notify", "remove", str(target["id"]), "--json")
    assert removed.exit_code == 0 and "s3cret" not in removed.output
    assert run("notify", "remove", "99").exit_code == 1
    assert len(json.loads(run("notify", "list", "--json").output)["targets"]) == 1


def test_notify_test_fails_loudly_when_the_target_is_down(
    community: Community, webhook: Webhook
) -> None:
    add_target(community.store, webhook.url, group=None, lang="zh", now=T0)
    webhook.stop()
    result = run("notify", "test")
    assert result.exit_code == 1 and "失败" in result.output
    assert result.output.count("连不上聊天服务器") == 1
    assert result.output.count("cannot connect to the chat server") == 1


def test_the_background_sender_sends_an_escort_call_without_being_woken(
    community: Community, webhook: Webhook
) -> None:
    """The resident waits at the gate: the call goes out within a poll, not at the next round."""
    import time

    store, clock = community.store, community.clock
    add_target(store, webhook.url.replace("hook", "g3"), group="3", lang="zh", now=T0)
    gate = GateService(store, clock=clock, hooks=event_hooks())
    worker = OutboxWorker(community.home, interval=3600, poll=0.05, clock=clock)
    worker.start()
    try:
        # The first round over: wait_idle alone may answer before it began (nothing was asked
        # yet), and that round would then send the call itself.
        deadline = time.monotonic() + 10
        while worker.rounds < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert worker.rounds == 1
        gate.register_return(1203, note="外地返岗", operator="张三", headcount=1)
        deadline = time.monotonic() + 10
        while not webhook.posts and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        worker.stop()
    ((path, body),) = webhook.posts
    assert path == "/g3"
    assert body["message"].split("\n")[1] == (
        "gate-1:3栋2单元301室 返回 1 人已登记(外地返岗),请第3楼组红色管家到门口接回。值班:张三。"
    )
    assert worker.rounds == 2  # the first round, then the one the fresh message started


def test_a_self_signed_target_with_verify_no_prints_no_warnings(
    community: Community, tmp_path: Any
) -> None:
    """`verify=no` is the user's choice, made once in the URL: no urllib3 warning per request."""
    import warnings

    from menwei.sync.tls import make_self_signed

    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    make_self_signed(cert, key, hosts=["127.0.0.1"])
    hook = Webhook()
    hook.start(tls=(cert, key))
    try:
        url = f"jsons://127.0.0.1:{hook.port}/hook?verify=no"
        assert run("notify", "add", url).exit_code == 0
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            tested = run("notify", "test")
    finally:
        hook.stop()
    assert tested.exit_code == 0, tested.output
    assert len(hook.posts) == 1
    assert [w for w in caught if "Insecure" in type(w.message).__name__] == []
    assert "Warning" not in tested.output
