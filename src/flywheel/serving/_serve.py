"""``flywheel serve``: load the model, bind, say where it listens, and serve — in this process, or
with ``--workers N`` through the supervisor of :mod:`._workers`."""

from __future__ import annotations

import dataclasses

from flywheel.errors import FlywheelError
from flywheel.prediction_log import LogUnreachable, PostgresLog, connect, short_slice
from flywheel.project import Project
from flywheel.serving._app import _settle_heap, create_app, listen
from flywheel.serving._auth import load_token
from flywheel.serving._options import ServeOptions
from flywheel.serving._served import Served, load_served
from flywheel.serving._shadow import load_second

__all__ = [
    "serve",
]


def serve(
    project: Project, *, host: str = "127.0.0.1", port: int = 8000, options: ServeOptions | None = None
) -> None:
    """Load the model, bind, print where it listens, and serve until interrupted.

    Raises
    ------
    FlywheelError
        When no model can be served or the address cannot be bound (before anything listens).
    """

    import uvicorn

    opts = _with_log(project, options or ServeOptions())
    served = load_served(project, opts.alias)
    second = load_second(project, opts, served)
    guarded = ""
    if opts.token is None and opts.token_file is not None:
        token, created = load_token(opts.token_file)
        opts = dataclasses.replace(opts, token=token)
        made = "a new token, mode 0600, " if created else "the token "
        guarded = f"; /feedback, /outcome and /review need {made}in {opts.token_file}"
    if opts.workers > 1:
        from flywheel.serving._workers import serve_workers

        writers = "each its own log writer" if isinstance(opts.log_path, PostgresLog) else "one log writer"
        banner = (
            f"flywheel serve: {served.alias} = {served.name} v{served.version} on http://{host}:{{port}} "
            f"({opts.workers} workers, {writers}; ack: {opts.ack}{_second_note(opts, second)}{guarded})"
        )
        del served, second  # each worker loads its own
        if serve_workers(project, host=host, port=port, options=opts, banner=banner):
            raise FlywheelError("flywheel serve: the workers kept dying (their errors are above); stopped")
        return
    app = create_app(project, served, opts, second)
    sock = listen(host, port, 2048)
    bound = sock.getsockname()[1]
    print(
        f"flywheel serve: {served.alias} = {served.name} v{served.version} on http://{host}:{bound} "
        f"(ack: {opts.ack}{_second_note(opts, second)}{guarded})",
        flush=True,
    )
    config = uvicorn.Config(app, log_level="warning", access_log=False, timeout_graceful_shutdown=10)
    _settle_heap()
    # The event loop's wake-ups are short and requests wait on them; the model process and the
    # log's writer, started from here, inherit this (see short_slice).
    short_slice()
    uvicorn.Server(config).run(sockets=[sock])


def _with_log(project: Project, opts: ServeOptions) -> ServeOptions:
    """The options with the log's location settled: a PostgreSQL log is connected to (and its
    tables made) now, so a database that cannot be reached is one line before anything listens."""
    from flywheel.registry import log_location

    log = opts.log_path or log_location(project)
    if isinstance(log, PostgresLog):
        try:
            connect(log).close()
        except LogUnreachable as exc:
            raise FlywheelError(f"flywheel serve: {exc}") from None
    return dataclasses.replace(opts, log_path=log)


def _second_note(opts: ServeOptions, second: Served | None) -> str:
    """What the first line says of the second model: which one, and how it runs."""
    if second is None:
        return ""
    model = f"{second.name} v{second.version}"
    if opts.pilot is not None:
        return f"; pilot {opts.pilot[0]} = {model} answers {opts.pilot[1] * 100:g}% of requests, shadowed"
    return f"; shadow {opts.shadow} = {model}, logged, never returned"
