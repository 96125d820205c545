"""Errors a user can act on: each carries a message fit to print as it is, in both languages.

`message` is English, `zh` the same in Chinese (the CLI prints Chinese first, then English, on
lines of their own); `code` is a stable word for scripts (`--json` errors carry it).
"""


class MenweiError(Exception):
    """A problem to report in words, with a non-zero exit, never as a traceback."""

    exit_code = 1
    code = "error"

    def __init__(
        self,
        message: str,
        *,
        zh: str | None = None,
        problems: list[str] | None = None,
        code: str | None = None,
        more: int = 0,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.zh = zh
        self.problems = problems or []
        self.more = more  # problems found beyond those listed (a file with thousands)
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class NotInitialised(MenweiError):
    """The home has no community yet."""

    code = "not_initialised"


class SchemaTooNew(MenweiError):
    """The database was written by a newer menwei."""

    code = "schema_too_new"


class RosterError(MenweiError):
    """A roster file was refused; `problems` lists each bad line."""

    code = "roster_refused"


class PolicyError(MenweiError):
    """A policy file was refused; `problems` lists what is wrong."""

    code = "policy_refused"


class OutputError(MenweiError):
    """A file could not be written (a folder that is not writable, a full disk)."""

    code = "cannot_write"


class GateError(MenweiError):
    """A gate action that cannot be done (undo too late, override of a forged pass...).

    `message` is English; `zh` is the same in Chinese, for the gate's screens.
    """

    code = "gate_refused"

    def __init__(self, message: str, zh: str | None = None) -> None:
        super().__init__(message, zh=zh or message)
