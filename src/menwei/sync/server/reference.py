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
            self.storage.ensure_community(
                community, name, now=now, home=str(self.home.root.resolve())
            )
            self.version = self.storage.refresh_reference(community, data, now=now)
            self.community_id = community
            self.community_name = name
            self._signature = signature
            return self.version


class ServedCommunities:
    """The communities a server serves: its own home's (when the home holds one) and those
    added with `menwei server community add HOME` (each from its committee's home)."""

    def __init__(self, home: Home, storage: ServerStorage, clock: Clock) -> None:
        self.home = home
        self.storage = storage
        self.clock = clock
        self._lock = threading.Lock()
        self._refs: dict[int, HomeReference] = {}
        self.home_community: HomeReference | None = None
        if home.db_path.exists():
            self.home_community = HomeReference(home, storage, clock)
            self.home_community.refresh(force=True)
            self._refs[self.home_community.community_id] = self.home_community
        self.reload()

    def reload(self) -> None:
        """Pick up communities added since (their homes are read once here)."""
        homes = self.storage.community_homes()  # type: ignore[attr-defined]
        with self._lock:
            for community, path in homes.items():
                if community in self._refs or not path:
                    continue
                ref = HomeReference(Home(Path(path)), self.storage, self.clock)
                try:
                    ref.refresh(force=True)
                except Exception as exc:  # a moved or broken home: serve what is stored
                    log.warning("community %s: cannot read its home %s: %s", community, path, exc)
                    continue
                self._refs[community] = ref

    def ids(self) -> list[int]:
        """Every community served (its data held here, from a home or migrated)."""
        return sorted(self.storage.community_homes())  # type: ignore[attr-defined]

    def refresh(self, community_id: int) -> None:
        """Bring a community's reference data up to date with its home, if it has one."""
        ref = self._refs.get(community_id)
        if ref is None:
            self.reload()
            ref = self._refs.get(community_id)
        if ref is not None:
            ref.refresh()
