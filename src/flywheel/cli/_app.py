"""The Typer app and what every command shares: the consoles, the error boundary, the common options.

Every command module imports these, so they live below all of them; the commands themselves are
registered on ``app`` by ``flywheel.cli._commands``, in the order ``flywheel --help`` lists them.
Nothing here imports pandas, scikit-learn or the pipeline, so ``flywheel --version`` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, NoReturn

import typer
from rich.console import Console

from flywheel._version import __version__
from flywheel.errors import FlywheelError

__all__ = [
    "ExecutorOpt",
    "JsonOpt",
    "PathArg",
    "WorkersOpt",
    "app",
    "err",
    "out",
    "user_errors",
]


app = typer.Typer(
    name="flywheel",
    help="Run ML projects the way the best teams do: baselines first, one metric, evidence.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


@contextlib.contextmanager
def user_errors() -> Iterator[None]:
    try:
        yield
    except FlywheelError as exc:
        err.print(f"error: {exc}", markup=False, soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print("interrupted", markup=False)
        raise typer.Exit(130) from None
    except (typer.Exit, typer.Abort):
        raise
    except OSError as exc:
        if exc.filename is None:  # not about a path the user gave: an internal error below
            _internal(exc)
        err.print(f"error: {exc.filename}: {exc.strerror or exc}", markup=False, soft_wrap=True)
        raise typer.Exit(2) from None
    except Exception as exc:
        if _log_unreachable(exc):  # the prediction log's PostgreSQL database (named, password masked)
            err.print(f"error: {exc}", markup=False, soft_wrap=True)
            raise typer.Exit(2) from None
        _internal(exc)


def _log_unreachable(exc: Exception) -> bool:
    """Whether ``exc`` is the prediction log's "database cannot be reached" (a user's to fix). The log
    imports nothing of flywheel, so its error is no FlywheelError; and it is looked up only once
    raised, so that importing this module does not import the log."""
    location = sys.modules.get("flywheel.prediction_log._location")
    return location is not None and isinstance(exc, location.LogUnreachable)


def _internal(exc: BaseException) -> NoReturn:
    """One line for what no user input explains (the traceback with FLYWHEEL_DEBUG=1); exit 1."""
    if os.environ.get("FLYWHEEL_DEBUG"):
        raise exc
    line = (str(exc).strip().splitlines() or [""])[0]
    err.print(
        f"internal error: {type(exc).__name__}: {line} (set FLYWHEEL_DEBUG=1 for the "
        "traceback, and please report it)",
        markup=False,
        soft_wrap=True,
    )
    raise typer.Exit(1) from None


def _version(value: bool) -> None:
    if value:
        out.print(f"flywheel {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    """flywheel: scope, baselines, one metric, and the data loop."""


PathArg = Annotated[Path, typer.Argument(help="Project file, or the folder holding flywheel.yaml.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print the result as JSON on stdout.")]
WorkersOpt = Annotated[int | None, typer.Option(min=1, help="Fits run at once (default: all cores).")]
ExecutorOpt = Annotated[
    str | None,
    typer.Option(
        help="Where fits run: local processes (default), dask:local (a Dask cluster of this machine's "
        "cores for the command) or dask://HOST:PORT (a running Dask scheduler); both need the dask extra."
    ),
]
