"""``flywheel ui``: the workbench in the browser.

The web app and its libraries (FastAPI, Jinja2, Plotly) are imported inside the command, so the
CLI starts without them.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from flywheel.cli._app import user_errors

__all__ = [
    "ui",
]


def ui(
    paths: Annotated[
        list[Path] | None, typer.Argument(help="Project files or folders (default: the current folder).")
    ] = None,
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. Off loopback (127.0.0.1, ::1, localhost), labelling needs "
            "--token-file (or use --read-only)."
        ),
    ] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(min=0, max=65535, help="Port (0 picks a free one; the line printed says which).")
    ] = 8765,
    token_file: Annotated[
        Path | None,
        typer.Option(
            help="Labelling needs this token, typed in the page or sent as 'Authorization: Bearer' (the "
            "same file as `flywheel serve --token-file`); it is read from the file, or generated into it "
            "(mode 0600) when missing. Pages stay open. Without it, labelling needs a session token made "
            "at start and embedded in the queue page."
        ),
    ] = None,
    read_only: Annotated[
        bool, typer.Option("--read-only", help="Serve the pages without any write route (no labelling).")
    ] = False,
) -> None:
    """Open the workbench: portfolio, project, runs, monitoring and the review queue in the browser."""
    from flywheel.workbench import serve

    with user_errors():
        serve(paths or [Path(".")], host=host, port=port, token_file=token_file, read_only=read_only)
