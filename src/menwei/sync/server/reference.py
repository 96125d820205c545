"""The reference data the server hands to gates comes from the home it runs in.

The IT person maintains the roster, revocations, policy and public keys there with the core's
commands (`menwei roster import`, `menwei passes revoke`, `policy.toml`...). The server re-reads
them whenever the home's database or policy file changed, and versions what differs in its own
database. The private signing key is never read.
"""

from __future__ import annotations

import logging
import threading
from datetime import datetime
from pathlib import Path

from menwei.core.clock import Clock
from menwei.core.community import community_info, refresh_policy_from_file
from menwei.core.home import Home
from menwei.core.store import Store
from menwei.sync.server.storage import (
    HouseholdRef,
    KeyRef,
    PolicyRef,
    ReferenceData,
    RevocationRef,
    ServerStorage,
)

log = logging.getLogger("menwei.server")


def read_home_reference(home: Home) -> tuple[int, str, ReferenceData, str | None]:
    """(community id, name, reference data, policy-file warning) from the home's database."""
    store = Store.open(home.db_path)
    try:
        _, warning = refresh_policy_from_file(home, store)
        info = community_info(store)
        households = {
            int(r["household"]): HouseholdRef(
                household=int(r["household"]),
                building=r["building"],
                unit=r["unit"] or "",
                room=r["room"],
                group=r["building_group"],
                members=int(r["members"]),
                category=r["category"],
                contact=r["contact"],
            )
            for r in store.query("select * from households")
        }
        revocations = {
            int(r["household"]): RevocationRef(
                int(r["household"]), int(r["min_serial"]), r["reason"], r["revoked_at"]
            )
            for r in store.query("select * from revocations")
        }
        keys = {
            int(r["kid"]): KeyRef(int(r["kid"]), r["public_key"], r["status"])
            for r in store.query("select kid, public_key, status from keys")
        }
        policies = tuple(
            PolicyRef(int(r["version"]), r["sha256"], r["body"], r["created_at"])
            for r in store.query(
                "select version, sha256, body, created_at from policy_versions order by version"
            )
        )
    finally:
        store.close()
    return (
        info.community,
        info.name,
        ReferenceData(households, revocations, keys, policies),
        warning,
    )


def _stat(path: Path) -> tuple[int, int] | None:
    try:
        st = path.stat()
    except OSError:
        return None
    return st.st_mtime_ns, st.st_size


class HomeReference:
    """Keeps the server's versioned reference data in step with its home."""

    def __init__(self, home: Home, storage: ServerStorage, clock: Clock) -> None:
        self.home = home
        self.storage = storage
        self.clock = clock
        self._lock = threading.Lock()
        self._signature: object = None
        self.community_id = 0
        self.community_name = ""
        self.version = 0

    def _current_signature(self) -> object:
        db = self.home.db_path
        return (
            _stat(db),
            _stat(db.with_name(db.name + "-wal")),
            _stat(self.home.policy_path),
        )

    def refresh(self, *, force: bool = False) -> int:
        """Re-read the home when it changed; return the reference version."""
        with self._lock:
            signature = self._current_signature()
            if not force and signature == self._signature:
                return self.version
            community, name, data, warning = read_home_reference(self.home)
            if warning:
                log.warning("%s", warning)
            now: datetime = self.clock.now()
            self.storage.ensure_community(community, name, now=now)
            self.version = self.storage.refresh_reference(community, data, now=now)
            self.community_id = community
            self.community_name = name
            self._signature = signature
            return self.version
