"""Errors a user can act on: each carries a message fit to print as it is."""


class MenweiError(Exception):
    """A problem to report in words, with a non-zero exit, never as a traceback."""

    exit_code = 1

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.problems = problems or []

    def __str__(self) -> str:
        if not self.problems:
            return self.message
        return self.message + "\n" + "\n".join(f"  - {p}" for p in self.problems)


class NotInitialised(MenweiError):
    """The home has no community yet."""


class SchemaTooNew(MenweiError):
    """The database was written by a newer menwei."""


class RosterError(MenweiError):
    """A roster file was refused; `problems` lists each bad line."""


class PolicyError(MenweiError):
    """A policy file was refused; `problems` lists what is wrong."""


class GateError(MenweiError):
    """A gate action that cannot be done (undo too late, override of a forged pass...).

    `message` is English; `zh` is the same in Chinese, for the gate's screens.
    """

    def __init__(self, message: str, zh: str | None = None) -> None:
        super().__init__(message)
        self.zh = zh or message
