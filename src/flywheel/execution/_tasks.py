"""What every executor shares: a task, its outcome, the executor protocol, closing at the end."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, Self

__all__ = ["Closing", "Executor", "OnDone", "Outcome", "Task", "one_line"]


@dataclass(frozen=True)
class Task:
    """One independent unit of work: a name, a function of no arguments, and a time budget."""

    name: str
    fn: Callable[[], Any]
    budget_s: float


@dataclass(frozen=True)
class Outcome:
    """A task's value, or the one-line reason it has none."""

    name: str
    value: Any = None
    error: str | None = None
    elapsed_s: float = 0.0


OnDone = Callable[[Outcome, int, int], None]


class Executor(Protocol):
    """Runs tasks and returns their outcomes in the tasks' order.

    An executor may also say ``same_machine = False`` when its tasks may run on other machines;
    timings that must be this machine's are then taken here (``flywheel.pipeline``).
    """

    def run(self, tasks: Sequence[Task], on_done: OnDone | None = None) -> list[Outcome]: ...


def one_line(exc: BaseException) -> str:
    """An exception as the one line an outcome carries: its type and the first line of its text."""
    text = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class Closing:
    """``with executor:`` closes it at the end, on error too."""

    def close(self) -> None:
        """Release what the executor holds (a local run leaves no process behind)."""

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
