"""Errors a user can cause, each carrying the one line the CLI prints.

Every error a person can fix (a typo in ``flywheel.yaml``, a missing file, a
store written by a newer flywheel) is raised as a :class:`FlywheelError`. The CLI
prints its message as a single line and exits with code 2; the library lets it
propagate. The message follows one template: what, where, what is allowed, what
was given.
"""

from __future__ import annotations

__all__ = [
    "DataError",
    "FlywheelError",
    "ModelError",
    "ProjectError",
    "StoreError",
]


class FlywheelError(Exception):
    """A mistake in the user's input; ``str(err)`` is the one line to show."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        # Multi-line messages would break the one-line promise; fold them.
        super().__init__(" ".join(message.split()))


class ProjectError(FlywheelError):
    """The project file is malformed or names something that does not exist."""


class DataError(FlywheelError):
    """The data cannot be read, or cannot be used for the declared task."""


class ModelError(FlywheelError):
    """A model spec cannot be built or its predictions cannot be joined."""


class StoreError(FlywheelError):
    """The store cannot be opened safely (e.g. written by a newer flywheel)."""
