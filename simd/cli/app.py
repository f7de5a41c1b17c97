"""The `simd` command line: thin. Parses, calls library functions, renders; maps errors to exits.

Exit codes (the README's contract): 0 done and SLOs met, 1 an SLO failed, 2 bad input,
3 the run could not complete.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

import typer
from rich.console import Console

from simd.errors import EXIT_INPUT, EXIT_RUN, RunError, ScenarioError, UserError

app = typer.Typer(
    no_args_is_help=True,
    rich_markup_mode="markdown",  # docstrings' wrapped lines are joined, not kept as they stand
    help="Simulate fleets of IoT devices against real message systems.",
)


def _version(value: bool) -> None:
    if value:
        from simd._version import __version__

        print(f"simd {__version__}")
        raise typer.Exit(0)


@app.callback()
def _options(
    version: bool = typer.Option(
        False, "--version", "-V", callback=_version, is_eager=True, help="print the version"
    ),
) -> None:
    """Simulate fleets of IoT devices against real message systems."""


out = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 200)


F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int) -> None:
    for line in message.splitlines():
        sys.stderr.write(f"simd: error: {line}\n")
    raise typer.Exit(code)


def guarded(fn: F) -> F:
    """User errors become one line per problem and exit 2; run failures exit 3."""

    @wraps(fn)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except ScenarioError as exc:
            fail(str(exc), EXIT_INPUT)
        except UserError as exc:
            fail(str(exc), EXIT_INPUT)
        except RunError as exc:
            fail(str(exc), EXIT_RUN)
        except duckdb_error() as exc:  # a results file that cannot answer: one line, not a trace
            fail(f"results: {first_line(exc)}", EXIT_RUN)
        except KeyboardInterrupt as exc:
            by = f" by {exc.args[0]}" if exc.args else ""
            fail(f"interrupted{by}; what was written so far is kept", EXIT_RUN)

    return wrapper  # type: ignore[return-value]


def duckdb_error() -> type[Exception]:
    import duckdb

    return duckdb.Error


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0][:200]


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(signal.Signals(signum).name)


def main() -> None:
    # SIGTERM ends a command as Ctrl-C does (one line, exit 3; logs are kept), not silently;
    # `simd run` handles both itself while workers run (simd.runtime.supervisor)
    signal.signal(signal.SIGTERM, _interrupt)
    app()
