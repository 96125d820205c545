"""The sync client against a real server on 127.0.0.1 whose answers are replaced where a test says.

Each fault is asserted by its effect: what the gate says (the error and its exit code), what it
records in `sync_state`, how many requests it made, and that no event is lost or acknowledged
before the server really holds it.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from menwei.core.home import Home
from menwei.sync.client import SyncError, SyncOffline
from menwei.sync.enrollment import enroll
from tests.sync.helpers import COMMUNITY, Gate, World

Real = Callable[[], httpx.Response]
Rule = Callable[[httpx.Request, Real], httpx.Response]


class Scripted(httpx.BaseTransport):
    """Real HTTP to the test server; the answer to a path with a rule is what the rule returns."""

    def __init__(self, rules: dict[str, Rule] | None = None) -> None:
        self.inner = httpx.HTTPTransport()
        self.rules = dict(rules or {})
        self.calls: Counter[str] = Counter()

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.calls[path] += 1

        def real() -> httpx.Response:
            request.read()
            response = self.inner.handle_request(request)
            response.read()
            return response

        rule = self.rules.get(path)
        return rule(request, real) if rule else real()

    def close(self) -> None:
        self.inner.close()


def answer(status: int, body: Any = None, text: str | None = None) -> Rule:
    def rule(request: httpx.Request, real: Real) -> httpx.Response:
        if text is not None:
            return httpx.Response(status, text=text)
        return httpx.Response(status, json=body)

    return rule


def state(gate: Gate) -> dict[str, str]:
    return {r["key"]: r["value"] for r in gate.store.query("select key, value from sync_state")}


def acked(gate: Gate) -> int:
    return int(state(gate).get("acked_through_seq", 0))


def scans(w: World, gate: Gate, n: int) -> None:
    for i in range(n):
        gate.scan(w.codes[[1203, 1204, 2101][i % 3]])


def test_a_503_is_retried_then_reported_offline(w: World) -> None:
    g = w.add_gate("A")
    scans(w, g, 2)
    t = Scripted({"/v1/push": answer(503, {"error": "busy", "message": "maintenance"})})
    with pytest.raises(SyncOffline) as err:
        g.sync(transport=t, retries=2, backoff=0)
    assert t.calls["/v1/push"] == 3  # the first try and two retries
    assert err.value.exit_code == 2 and "maintenance" in err.value.message
    assert (state(g)["last_sync_outcome"], acked(g)) == ("offline", 0)
    assert w.server_event_ids() == []
    assert g.sync().pushed == 2  # nothing was lost


def test_one_503_then_the_retry_goes_through(w: World) -> None:
    g = w.add_gate("A")
    scans(w, g, 3)
    failures = iter([True])

    def once(request: httpx.Request, real: Real) -> httpx.Response:
        if next(failures, False):
            return httpx.Response(502, text="bad gateway")
        return real()

    t = Scripted({"/v1/push": once})
    result = g.sync(transport=t, retries=1, backoff=0)
    assert t.calls["/v1/push"] == 2
    assert (result.pushed, acked(g), state(g)["last_sync_outcome"]) == (3, 3, "ok")
    assert len(w.server_event_ids()) == 3


def test_a_500_is_an_error_not_retried_and_a_text_body_is_quoted(w: World) -> None:
    g = w.add_gate("A")
    scans(w, g, 1)
    t = Scripted({"/v1/push": answer(500, text="<html>Internal Server Error</html>")})
    with pytest.raises(SyncError) as err:
        g.sync(transport=t, retries=3, backoff=0)
    assert not isinstance(err.value, SyncOffline) and err.value.exit_code == 1
    assert t.calls["/v1/push"] == 1
    assert "500" in err.value.message and "<html>Internal Server Error</html>" in err.value.message
    assert (state(g)["last_sync_outcome"], acked(g)) == ("error", 0)


def test_an_error_with_a_json_code_names_it(w: World) -> None:
    g = w.add_gate("A")
    scans(w, g, 1)
    t = Scripted({"/v1/push": answer(422, {"error": "invalid", "message": "epoch must be >= 1"})})
    with pytest.raises(SyncError) as err:
        g.sync(transport=t)
    assert err.value.message == ("The server refused the request (422 invalid): epoch must be >= 1")


def test_an_answer_of_the_wrong_shape_is_not_taken(w: World) -> None:
    g = w.add_gate("A")
    scans(w, g, 2)
    t = Scripted({"/v1/push": answer(200, {"acked_through_seq": "all of them"})})
    with pytest.raises(SyncError) as err:
        g.sync(transport=t)
    assert "does not understand" in err.value.message
    assert "same version" in err.value.message
    assert acked(g) == 0  # nothing is taken as acknowledged on a bad answer
    t2 = Scripted({"/v1/status": answer(200, text="not json at all")})
    with pytest.raises(SyncError, match="does not understand"):
        g.sync(transport=t2)
    assert g.sync().pushed == 2


@pytest.mark.parametrize(
    "health",
    [
        answer(200, {"status": "ok"}),
        answer(200, ["community_id"]),
    ],
)
def test_enrolling_with_something_that_is_not_a_menwei_server(
    w: World, tmp_path: Path, health: Rule
) -> None:
    home = Home(tmp_path / "gate-X")
    t = Scripted({"/v1/health": health})
    with pytest.raises(SyncError) as err:
        enroll(home, w.server.url, w.server.token("X"), clock=w.clock, transport=t)
    assert err.value.message == f"{w.server.url} does not look like a menwei server."
    assert t.calls["/v1/enroll"] == 0
    assert not home.db_path.exists() or not (home.root / "credentials.json").exists()


def test_a_server_that_never_takes_the_events_stops_the_sync(w: World) -> None:
    g = w.add_gate("A")
    scans(w, g, 4)

    def stuck(request: httpx.Request, real: Real) -> httpx.Response:
        data = json.loads(real().content)
        data.update(acked_through_seq=0, inserted=0)
        return httpx.Response(200, json=data)

    t = Scripted({"/v1/push": stuck})
    with pytest.raises(SyncError) as err:
        g.sync(transport=t, batch_size=2)
    assert "does not take this gate's events from seq 1 on" in err.value.message
    assert t.calls["/v1/push"] == 3  # three batches without progress
    assert acked(g) == 0


def test_a_server_that_goes_back_is_sent_the_events_again(w: World) -> None:
    g = w.add_gate("A")
    scans(w, g, 4)
    assert g.sync().pushed == 4
    scans(w, g, 2)
    # The server was restored from a backup holding the first two events only: its answers say
    # so once (the events it lost are sent again), then it is honest.
    rewound = iter([2])
    sent: list[int] = []

    def back_once(request: httpx.Request, real: Real) -> httpx.Response:
        request.read()
        sent.append(json.loads(gzip.decompress(request.content))["from_seq"])
        data = json.loads(real().content)
        to = next(rewound, None)
        if to is not None:
            data["acked_through_seq"] = to
        return httpx.Response(200, json=data)

    t = Scripted({"/v1/push": back_once})
    result = g.sync(transport=t, batch_size=2)
    assert sent == [5, 3]  # told the server held only 2, the gate sent from 3 again
    assert acked(g) == 6 and result.acked_through_seq == 6
    assert len(w.server_event_ids()) == 6


def test_a_server_that_keeps_going_back_stops_the_sync(w: World) -> None:
    g = w.add_gate("A")
    scans(w, g, 6)
    assert g.sync().pushed == 6
    scans(w, g, 1)

    def always_back(request: httpx.Request, real: Real) -> httpx.Response:
        data = json.loads(real().content)
        data["acked_through_seq"] = max(0, data["acked_through_seq"] - 1 - t.calls["/v1/push"])
        return httpx.Response(200, json=data)

    t = Scripted({"/v1/push": always_back})
    with pytest.raises(SyncError, match="does not take this gate's events"):
        g.sync(transport=t, batch_size=1)
    assert state(g)["last_sync_outcome"] == "error"
    assert {e for e in w.server_event_ids()} == g.event_ids()  # the server holds all the same


def test_a_gate_of_another_community_sees_only_its_own(w: World) -> None:
    # One server may hold a whole district: a gate of another community is enrolled there in
    # its own right, and sees and touches nothing of this community.
    g = w.add_gate("A")
    scans(w, g, 1)
    assert g.sync().pushed == 1
    storage = w.server.storage
    storage.ensure_community(COMMUNITY + 1, "别的小区", now=w.clock.now())
    other = storage.add_gate(COMMUNITY + 1, "X", now=w.clock.now())
    from menwei.sync.protocol import EnrollRequest

    stranger = "s" * 43
    storage.enroll(
        COMMUNITY + 1,
        EnrollRequest(token=other.token, api_token=stranger, public_key="cd" * 32),
        now=w.clock.now(),
    )
    headers = {"Authorization": f"Bearer {stranger}"}
    pulled = httpx.get(w.server.url + "/v1/events", headers=headers)
    assert pulled.status_code == 200
    assert pulled.json()["events"] == []
    pushed = httpx.post(w.server.url + "/v1/push", headers=headers, json={})
    assert pushed.status_code in (400, 422)  # not a batch
    assert storage.event_ids(COMMUNITY + 1) == []
    held = len(storage.event_ids(COMMUNITY))
    scans(w, g, 1)
    assert g.sync().pushed == 1  # this community's own gate goes on
    assert len(storage.event_ids(COMMUNITY)) == held + 1
