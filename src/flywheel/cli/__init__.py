"""The ``flywheel`` command line: every command is a thin call into one module.

Errors a user can fix print one line on stderr and exit with code 2; anything
else is an internal error, printed as one line with exit code 1 (set
``FLYWHEEL_DEBUG=1`` to see the traceback). A traceback is never the answer to
bad input.
"""

from __future__ import annotations

from flywheel.cli._commands import app, main

__all__ = [
    "app",
    "main",
]
