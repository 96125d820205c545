"""The pure parts of sync: bounded gzip, the anomaly fold, enrollment text, certificates."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

from menwei.core.errors import MenweiError
from menwei.sync import tls
from menwei.sync.anomalies import Trip, anomaly_id, expected_sequence_anomalies, fold_trips
from menwei.sync.client import SyncResult
from menwei.sync.enrollment import parse_enrollment
from menwei.sync.protocol import TooLarge, gunzip_bounded, gzip_bytes


def test_gzip_is_bounded() -> None:
    data = b"event " * 1000
    assert gunzip_bounded(gzip_bytes(data)) == data
    with pytest.raises(TooLarge):
        gunzip_bounded(gzip.compress(b"\0" * 100_001), limit=100_000)
    with pytest.raises(ValueError, match="not gzip"):
        gunzip_bounded(b"plain text")
    with pytest.raises(ValueError, match="truncated"):
        gunzip_bounded(gzip_bytes(data)[:-12])


def trip(n: int, kind: str, direction: str | None = None, gate: str = "g1") -> Trip:
    return Trip(f"e{n:02d}", f"2026-11-24T02:{n:02d}:00.000Z", kind, direction or kind, gate)


def test_the_fold_finds_double_exits_and_entries_without_exit() -> None:
    trips = [
        trip(1, "entry"),  # never went out
        trip(2, "exit"),
        trip(3, "override", "exit", gate="g2"),  # out again, no entry between
        trip(4, "entry"),
        trip(5, "register", "entry"),  # a returning resident: by design
        trip(6, "deny", None),  # refusals do not move anyone
    ]
    fold = fold_trips(1203, None, trips)
    assert fold.state == "in" and fold.last == trips[4]
    assert [(f.kind, f.event_ids) for f in fold.findings] == [
        ("entry_without_exit", ("e01",)),
        ("double_exit", ("e02", "e03")),
    ]
    assert fold.findings[1].gate_id == "g2"
    # The same facts give the same ids, whatever the starting point of the fold.
    later = fold_trips(1203, trips[1], trips[2:])
    assert [f.anomaly_id for f in later.findings] == [fold.findings[1].anomaly_id]
    assert anomaly_id("double_exit", "e02", "e03") == fold.findings[1].anomaly_id
    assert expected_sequence_anomalies({1203: reversed(trips)}) == {
        ("entry_without_exit", ("e01",)),
        ("double_exit", ("e02", "e03")),
    }


def test_enrollment_text() -> None:
    qr = '{"v":1,"url":"https://10.0.0.5:8470","token":"tok","cert_sha256":"ab"}'
    assert parse_enrollment(None, qr) == ("https://10.0.0.5:8470", "tok", "ab")
    assert parse_enrollment("http://h:1/", "tok") == ("http://h:1", "tok", None)
    with pytest.raises(MenweiError, match="not a server address"):
        parse_enrollment("10.0.0.5", "tok")
    with pytest.raises(MenweiError, match="not readable"):
        parse_enrollment(None, "{broken")


def test_certificates_and_fingerprints(tmp_path: Path) -> None:
    pem = tls.make_self_signed(tmp_path / "c.pem", tmp_path / "k.pem", hosts=["10.0.0.5", "gate"])
    fp = tls.fingerprint(pem)
    assert len(fp) == 64
    assert tls.normalise_fingerprint(tls.short(fp).upper().replace(" ", ":")) == fp
    with pytest.raises(MenweiError):
        tls.normalise_fingerprint("abc")
    assert (tmp_path / "k.pem").stat().st_mode & 0o777 == 0o600
    ctx = tls.pinned_context(pem)
    assert not ctx.check_hostname


def test_sync_result_words() -> None:
    r = SyncResult(gate_id="c1-g1", epoch=1, clock_offset_ms=-130_000, households=frozenset({3, 1}))
    d = r.as_dict()
    assert d["clock_warning"] and d["households"] == [1, 3] and not d["reload_needed"]
    assert SyncResult(gate_id="c1-g1", epoch=1, pulled=1).reload_needed
