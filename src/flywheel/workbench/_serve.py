"""Serving the workbench: what ``flywheel ui`` runs (its socket and token file are the service's own).

The address is bound before anything is printed, so the one line says the port that is really
listened on (``--port 0`` picks a free one), and a port in use is one line rather than a traceback.
Labelling always needs a token: the token file's, or a session token the queue page carries
(on a loopback address only; elsewhere, without a token file, nothing listens).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "serve",
]


def serve(
    paths: Sequence[str | os.PathLike[str]],
    *,
    host: str = "127.0.0.1",
    port: int = 8765,
    token_file: Path | None = None,
    read_only: bool = False,
) -> None:
    """Load the projects, bind, print the URL on one line, and serve until interrupted.

    Raises
    ------
    FlywheelError
        When a path holds no project, two projects share a name, the token file is unusable,
        labelling would be served on a non-loopback ``host`` without a token file, or the address
        cannot be bound — before anything listens.
    """
    import uvicorn

    from flywheel.serving import listen, load_token  # one token file can guard the service and this
    from flywheel.workbench._app import create_app

    token, note = None, ""
    if token_file is not None and not read_only:
        token, created = load_token(token_file)
        made = "a new token, mode 0600, " if created else "the token "
        note = f"; labelling needs {made}in {token_file}"
    app = create_app(paths, token=token, read_only=read_only, host=host)
    if app.state.token_embedded:
        note = ", guarded by a session token embedded in the page"
    sock = listen(host, port)
    shown = f"[{host}]" if ":" in host else host
    mode = "read-only" if read_only else "labelling on"
    print(
        f"flywheel ui: {len(app.state.projects)} project(s) on http://{shown}:{sock.getsockname()[1]}/ "
        f"({mode}{note})",
        flush=True,
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False)
    uvicorn.Server(config).run(sockets=[sock])
