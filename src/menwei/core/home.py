"""Where a menwei home keeps its files.

Everything lives under one directory: `MENWEI_HOME` when set, else the platform's user data dir.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import platformdirs


@dataclass(frozen=True)
class Home:
    root: Path

    @classmethod
    def resolve(cls, explicit: str | Path | None = None) -> Home:
        """The home named explicitly, else `MENWEI_HOME`, else the user data dir."""
        if explicit:
            return cls(Path(explicit).expanduser())
        env = os.environ.get("MENWEI_HOME")
        if env:
            return cls(Path(env).expanduser())
        return cls(Path(platformdirs.user_data_dir("menwei", appauthor=False)))

    @property
    def db_path(self) -> Path:
        return self.root / "menwei.db"

    @property
    def keys_dir(self) -> Path:
        return self.root / "keys"

    @property
    def public_keys_path(self) -> Path:
        return self.keys_dir / "public-keys.json"

    def signing_key_path(self, kid: int) -> Path:
        return self.keys_dir / f"signing-{kid}.pem"

    @property
    def policy_path(self) -> Path:
        return self.root / "policy.toml"

    @property
    def passes_dir(self) -> Path:
        return self.root / "passes"

    @property
    def server_dir(self) -> Path:
        return self.root / "server"

    def exists(self) -> bool:
        return self.db_path.exists()
