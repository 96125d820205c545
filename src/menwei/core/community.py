"""Setting up a community in a home, and the reference data a gate decides with:
identity, public keys, revocations and the policy in effect (with every earlier version kept).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from menwei.core import keys as keymod
from menwei.core.clock import iso
from menwei.core.errors import MenweiError, PolicyError
from menwei.core.home import Home
from menwei.core.policy import (
    PERMISSIVE_TOML,
    Policy,
    digest,
    parse_policy,
    policy_text,
    policy_warnings,
)
from menwei.core.store import Store
from menwei.core.text import Text


@dataclass(frozen=True)
class CommunityInfo:
    community: int
    name: str
    gate_id: str
    gate_name: str
    epoch: int


def init_community(
    home: Home, *, community: int, name: str, gate: str = "gate-1", now: datetime | None = None
) -> CommunityInfo:
    """Create the home, its database, signing key 0, the public-key set and a permissive policy.

    Refuses to touch a home that already has a community.
    """
    if not 1 <= community <= 0xFFFF:
        raise MenweiError(
            "The community id must be a number from 1 to 65535.",
            zh="小区编号必须是 1 到 65535 之间的数字。",
            code="bad_value",
        )
    if not name.strip():
        raise MenweiError("The community needs a name.", zh="小区需要一个名称。", code="bad_value")
    if not gate.strip():
        raise MenweiError("The gate needs a name.", zh="门岗需要一个名称。", code="bad_value")
    if home.db_path.exists():
        from menwei.core import integrity

        # An emptied or foreign file is named as such, not taken for a community.
        integrity.classify_file(home.db_path)
        probe = Store.open(home.db_path)
        probe.close()
    if home.db_path.exists() or home.signing_key_path(0).exists():
        raise MenweiError(
            f"{home.root} already holds a community; nothing was changed. "
            "Use another MENWEI_HOME for a new one (or `menwei restore` a backup into an empty "
            "one).",
            zh=f"{home.root} 已经有一个小区,没有做任何改动。新小区请用另一个 MENWEI_HOME"
            "(或用 menwei restore 把备份恢复到空目录)。",
            code="already_initialised",
        )
    stamp = iso(now or datetime.now(UTC))
    home.root.mkdir(parents=True, exist_ok=True)
    key = keymod.generate()
    keymod.write_private(home.signing_key_path(0), key)
    pub = keymod.PublicKey(0, keymod.public_hex(key))
    store = Store.open(home.db_path, create=True)
    try:
        with store.write() as db:
            for k, v in {
                "community_id": str(community),
                "community_name": name.strip(),
                "gate_id": gate.strip(),
                "gate_name": gate.strip(),
                "device_epoch": "1",
                "created_at": stamp,
            }.items():
                db.execute("insert into meta(key, value) values (?, ?)", [k, v])
            db.execute(
                "insert into keys(kid, public_key, status, created_at) values (0, ?, 'active', ?)",
                [pub.public_hex, stamp],
            )
            adopt_policy(store, PERMISSIVE_TOML, origin="init", now=stamp)
    finally:
        store.close()
    keymod.write_public_set(home.public_keys_path, community, [pub])
    if not home.policy_path.exists():
        home.policy_path.write_text(PERMISSIVE_TOML, encoding="utf-8")
    return CommunityInfo(community, name.strip(), gate.strip(), gate.strip(), 1)


def rename_gate(store: Store, name: str) -> CommunityInfo:
    """Give this gate a new name (shown in alerts, registers and the app). Its id (in the event
    log and on the sync server) stays as it is, so nothing recorded changes meaning."""
    name = name.strip()
    if not name or len(name) > 40:
        raise MenweiError(
            "A gate name is 1-40 characters, e.g. 东门.",
            zh="门岗名称是 1 到 40 个字符,例如 东门。",
            code="bad_value",
        )
    store.set_meta("gate_name", name)
    return community_info(store)


def community_info(store: Store) -> CommunityInfo:
    cid = store.meta("community_id")
    if cid is None:
        raise MenweiError(
            "This home has no community yet: run `menwei init` first.",
            zh="这个目录还没有小区:请先运行 menwei init。",
            code="not_initialised",
        )
    return CommunityInfo(
        community=int(cid),
        name=store.meta("community_name", "") or "",
        gate_id=store.meta("gate_id", "gate-1") or "gate-1",
        gate_name=store.meta("gate_name", "gate-1") or "gate-1",
        epoch=int(store.meta("device_epoch", "1") or 1),
    )


def public_keys(store: Store) -> dict[int, tuple[Ed25519PublicKey, str]]:
    return {
        int(r["kid"]): (keymod.PublicKey(int(r["kid"]), r["public_key"]).load(), r["status"])
        for r in store.query("select kid, public_key, status from keys")
    }


# --- policy --------------------------------------------------------------------------------------


def roster_names(store: Store) -> tuple[set[str], set[str]]:
    """The building groups and buildings of the roster (empty roster: no check)."""
    groups = {r["g"] for r in store.query("select distinct building_group as g from households")}
    buildings = {r["b"] for r in store.query("select distinct building as b from households")}
    return groups, buildings


def check_policy(store: Store, source: str) -> Policy:
    groups, buildings = roster_names(store)
    return parse_policy(source, groups=groups or None, buildings=buildings or None)


def check_policy_warnings(store: Store, policy: Policy) -> list[Text]:
    """What `policy check` warns about, against this store's roster (see `policy_warnings`)."""
    pairs = [
        (str(r["g"]), str(r["c"]))
        for r in store.query("select distinct building_group as g, category as c from households")
    ]
    return policy_warnings(policy, pairs)


def adopt_policy(store: Store, source: str, *, origin: str = "file", now: str | None = None) -> int:
    """Store a policy as the new version if it differs from the one in effect; return the version.

    `origin` says where it came from: init, file or server. Raises PolicyError (and stores
    nothing) when the policy has errors.
    """
    now = now or iso(datetime.now(UTC))
    check_policy(store, source)
    sha = digest(source)
    with store.write() as db:
        latest = next(
            iter(
                db.query(
                    "select version, sha256 from policy_versions order by version desc limit 1"
                )
            ),
            None,
        )
        if latest is not None and latest["sha256"] == sha:
            return int(latest["version"])
        version = 1 if latest is None else int(latest["version"]) + 1
        db.execute(
            "insert into policy_versions(version, sha256, source, body, created_at)"
            " values (?, ?, ?, ?, ?)",
            [version, sha, origin, source, now],
        )
    return version


def current_policy(store: Store) -> tuple[int, Policy]:
    row = store.one("select version, body from policy_versions order by version desc limit 1")
    if row is None:
        return 0, Policy()
    # A stored policy was valid against the roster when adopted; re-parse without the roster check.
    return int(row["version"]), parse_policy(row["body"])


def policy_version(store: Store, version: int) -> tuple[str, Policy] | None:
    """The text and meaning of any past policy version, to explain an old decision."""
    row = store.one("select body from policy_versions where version = ?", [version])
    if row is None:
        return None
    return row["body"], parse_policy(row["body"])


def refresh_policy_from_file(home: Home, store: Store) -> tuple[int, str | None]:
    """Adopt the home's policy file if it changed. Returns (version, warning or None).

    A file with errors leaves the policy in effect unchanged and comes back as a warning, so a
    typo never stops a gate.
    """
    version, _ = current_policy(store)
    if not home.policy_path.exists():
        return version, None
    try:
        text = policy_text(home.policy_path.read_bytes())
    except OSError as exc:
        return version, f"policy file unreadable: {exc}"
    except PolicyError as exc:
        return version, f"policy file unreadable: {exc.message}"
    last_file = store.one(
        "select sha256 from policy_versions where source in ('file', 'init') "
        "order by version desc limit 1"
    )
    if last_file is not None and last_file["sha256"] == digest(text):
        return version, None
    try:
        return adopt_policy(store, text, origin="file"), None
    except PolicyError as exc:
        return (
            version,
            f"{home.policy_path} has errors; still using policy version {version}: {exc}",
        )
