"""Backing up a home and restoring it on another machine.

A backup is one ZIP file:

- `menwei.db`: a consistent copy of the database made with SQLite's online backup API, so gates
  (and this machine's app) can keep scanning while it runs;
- `keys/signing-<kid>.pem`: each signing key, encrypted with the backup's passphrase (PKCS#8,
  the best encryption `cryptography` offers); without the passphrase the backup cannot mint passes;
- every other file of the home (`policy.toml`, `keys/public-keys.json`, `sync/`, a community
  server's `server/`, its database copied the same online way), except printed passes
  (`passes/`, printable again);
- `menwei-backup.json`: what the backup holds.

Restoring writes the files into an empty home; the restored home signs with the same keys, so
every pass already printed is accepted there.
"""

from __future__ import annotations

import json
import os
import sqlite3
import tempfile
import zipfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from menwei.core.clock import iso
from menwei.core.errors import MenweiError, OutputError
from menwei.core.home import Home

MANIFEST = "menwei-backup.json"
FORMAT = 1
MIN_PASSPHRASE = 8
_SKIP_DIRS = {"passes"}
_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class BackupInfo:
    path: Path
    community: int | None
    name: str | None
    households: int
    events: int
    keys: int
    files: tuple[str, ...]
    created_at: str


def _check_passphrase(passphrase: str) -> bytes:
    if len(passphrase) < MIN_PASSPHRASE:
        raise MenweiError(
            f"The passphrase needs at least {MIN_PASSPHRASE} characters.",
            zh=f"口令至少需要 {MIN_PASSPHRASE} 个字符。",
            code="weak_passphrase",
        )
    return passphrase.encode("utf-8")


def backup_home(
    home: Home, out: Path, passphrase: str, *, now: datetime | None = None
) -> BackupInfo:
    """Write a backup of `home` to `out` (atomically). Raises OutputError when `out` cannot be
    written (nothing is left behind then)."""
    secret = _check_passphrase(passphrase)
    if not home.db_path.exists():
        raise MenweiError(
            f"No menwei home with a database at {home.root}: nothing to back up.",
            zh=f"{home.root} 没有 menwei 数据库,没有可备份的内容。",
            code="not_initialised",
        )
    out = Path(out)
    if out.is_dir() or out.suffix.lower() != ".zip":  # a folder (made if need be): a dated file
        out = out / f"menwei-backup-{datetime.now(UTC):%Y%m%d-%H%M%S}.zip"
    stamp = iso(now or datetime.now(UTC))
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp")
    except OSError as exc:
        raise _cannot_write(out, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        with tempfile.TemporaryDirectory() as work:
            db_copy = Path(work) / "menwei.db"
            source = sqlite3.connect(home.db_path, timeout=30)
            target = sqlite3.connect(db_copy)
            try:
                source.backup(target)  # the online backup API: a consistent snapshot
                households = target.execute("select count(*) from households").fetchone()[0]
                events = target.execute("select count(*) from events").fetchone()[0]
                meta = dict(target.execute("select key, value from meta").fetchall())
            finally:
                target.close()
                source.close()
            files: list[str] = []
            keys = 0
            with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
                zf.write(db_copy, "menwei.db")
                for path in sorted(home.root.rglob("*")):
                    rel = path.relative_to(home.root)
                    if not path.is_file() or rel.parts[0] in _SKIP_DIRS:
                        continue
                    if path.name.endswith((".tmp", *_SQLITE_SIDE_FILES)) or rel.as_posix() == (
                        "menwei.db"
                    ):
                        continue
                    if path.name.startswith("menwei-backup-") and path.suffix == ".zip":
                        continue  # an earlier backup kept in the home
                    if path.suffix == ".db":  # another SQLite database (the server's)
                        other = Path(work) / f"copy-{len(files)}.db"
                        try:
                            _online_copy(path, other)
                        except sqlite3.DatabaseError:
                            other = path  # not SQLite after all: the file as it is
                        zf.write(other, rel.as_posix())
                    elif rel.parts[0] == "keys" and path.name.startswith("signing-"):
                        zf.writestr(rel.as_posix(), _encrypt_key(path, secret))
                        keys += 1
                    else:
                        zf.write(path, rel.as_posix())
                    files.append(rel.as_posix())
                manifest = {
                    "format": FORMAT,
                    "created_at": stamp,
                    "community": int(meta["community_id"]) if "community_id" in meta else None,
                    "name": meta.get("community_name"),
                    "households": households,
                    "events": events,
                    "signing_keys": keys,
                    "files": files,
                }
                zf.writestr(MANIFEST, json.dumps(manifest, ensure_ascii=False, indent=2))
        os.replace(tmp, out)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise _cannot_write(out, exc) from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return BackupInfo(
        out,
        manifest["community"],  # type: ignore[arg-type]
        manifest["name"],  # type: ignore[arg-type]
        households,
        events,
        keys,
        tuple(files),
        stamp,
    )


def _online_copy(source_path: Path, target_path: Path) -> None:
    source = sqlite3.connect(source_path, timeout=30)
    target = sqlite3.connect(target_path)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _cannot_write(out: Path, exc: OSError) -> OutputError:
    why = exc.strerror or str(exc)
    return OutputError(
        f"Cannot write the backup {out}: {why}. Choose another place (--out).",
        zh=f"无法写入备份 {out}:{why}。请用 --out 换一个位置。",
    )


def _encrypt_key(path: Path, secret: bytes) -> bytes:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(secret),
    )


def restore_home(home: Home, backup: Path, passphrase: str) -> BackupInfo:
    """Bring a backup back into an empty `home`. Refuses a home that already has a community,
    a file that is not a menwei backup, and a wrong passphrase (nothing is written then)."""
    from menwei.core import keys as keymod

    backup = Path(backup)
    if home.db_path.exists() or home.keys_dir.exists():
        raise MenweiError(
            f"{home.root} already holds a community; restore into an empty home "
            "(set MENWEI_HOME to a new folder).",
            zh=f"{home.root} 已经有小区;请恢复到一个空目录(把 MENWEI_HOME 设为新文件夹)。",
            code="already_initialised",
        )
    try:
        zf = zipfile.ZipFile(backup)
    except FileNotFoundError:
        raise MenweiError(
            f"No such file: {backup}", zh=f"没有这个文件:{backup}", code="no_such_file"
        ) from None
    except (zipfile.BadZipFile, OSError) as exc:
        raise MenweiError(
            f"{backup} is not a menwei backup ({exc}).",
            zh=f"{backup} 不是 menwei 备份文件。",
            code="not_a_backup",
        ) from None
    with zf:
        names = set(zf.namelist())
        if MANIFEST not in names or "menwei.db" not in names:
            raise MenweiError(
                f"{backup} is not a menwei backup (no {MANIFEST}).",
                zh=f"{backup} 不是 menwei 备份文件。",
                code="not_a_backup",
            )
        manifest = json.loads(zf.read(MANIFEST))
        keys: dict[str, Ed25519PrivateKey] = {}
        for name in names:
            if name.startswith("keys/signing-") and name.endswith(".pem"):
                try:
                    key = serialization.load_pem_private_key(
                        zf.read(name), password=passphrase.encode("utf-8")
                    )
                except (ValueError, TypeError):
                    raise MenweiError(
                        "Wrong passphrase for this backup; nothing was restored.",
                        zh="备份口令不对,没有恢复任何内容。",
                        code="wrong_passphrase",
                    ) from None
                if not isinstance(key, Ed25519PrivateKey):
                    raise MenweiError(f"{name} in the backup is not an Ed25519 key.")
                keys[name] = key
        home.root.mkdir(parents=True, exist_ok=True)
        for name in sorted(names):
            if name == MANIFEST or name.endswith("/") or name in keys:
                continue
            target = home.root / name
            if not target.resolve().is_relative_to(home.root.resolve()):
                continue  # a path leading out of the home is never written
            target.parent.mkdir(parents=True, exist_ok=True)
            # Private, like the home's own files: the database holds phone numbers.
            fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as f:
                f.write(zf.read(name))
        for name, key in keys.items():
            keymod.write_private(home.root / name, key)
    # Open once: brings an older backup's schema up to date.
    from menwei.core.store import Store

    store = Store.open(home.db_path)
    try:
        households = int(store.one("select count(*) as n from households")["n"])  # type: ignore[index]
        events = int(store.one("select count(*) as n from events")["n"])  # type: ignore[index]
    finally:
        store.close()
    return BackupInfo(
        backup,
        manifest.get("community"),
        manifest.get("name"),
        households,
        events,
        len(keys),
        tuple(manifest.get("files", [])),
        str(manifest.get("created_at", "")),
    )
