"""The exceptions simd raises on purpose. The CLI turns each into one line and an exit code.

Rule (STYLE.md habit 5 and 14): a user's mistake (`UserError` and its children) is never a
traceback; a run that could not complete (`RunError`) exits 3.
"""

from __future__ import annotations

from collections.abc import Sequence

# what a command's exit status says (README, Exit codes): passed; an SLO failed; bad input; the
# run could not do what it was asked
EXIT_OK, EXIT_SLO, EXIT_INPUT, EXIT_RUN = 0, 1, 2, 3


class SimdError(Exception):
    """Base of every error simd raises on purpose."""


class UserError(SimdError):
    """Bad input: a scenario, a flag, a file. The CLI exits 2."""


class ScenarioError(UserError):
    """A scenario file that cannot be used; `problems` holds one line per error."""

    def __init__(self, path: str, problems: Sequence[str]) -> None:
        self.path = path
        self.problems = list(problems)
        super().__init__("\n".join(f"{path}: {p}" for p in self.problems))


class RunError(SimdError):
    """A run that could not complete (a worker died, the target vanished). The CLI exits 3."""


class LogFormatError(SimdError):
    """An event log whose header is not one simd wrote, or cannot be read (a torn tail or a
    damaged range after the header is not this: the reader reports those)."""


class TornAtCreation(LogFormatError):
    """A segment cut before its header was whole: it never held a row."""


def first_leaf(exc: BaseException) -> BaseException:
    """The first non-group exception inside (possibly nested) exception groups: trio wraps a
    task's error in one, and the CLI wants the error itself."""
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return exc
