"""How the service runs: the options ``flywheel serve`` turns its flags into.

A module of its own because the app, its state and its routes all read them, and none of those
may import the others' modules just for this.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from flywheel.prediction_log import LogLocation

__all__ = [
    "ServeOptions",
]


@dataclass
class ServeOptions:
    """How the service runs (see ``flywheel serve --help``)."""

    alias: str = "champion"
    ack: Literal["durable", "fast"] = "durable"
    max_batch: int = 1_000  # rows in one /predict request (413 above)
    max_body_bytes: int = 8 << 20  # a request body's bytes, checked before it is read (413 above)
    queue_size: int = 10_000
    log_batch: int = 1_000
    retention_rows: int | None = None
    retention_days: float | None = None
    reload_s: float = 1.0
    allow_new_classes: bool = False
    log_path: LogLocation | None = None  # the project's log (see flywheel.registry.log_location) when None
    model_process: bool = True  # model calls in a worker process (False: on the event loop)
    # With a token, /feedback and /review need "Authorization: Bearer <token>"; ``token_file`` is
    # read for it (generated first when it does not exist) unless ``token`` is given.
    token: str | None = None
    token_file: Path | None = None
    # A second model on the same requests (see _shadow.py), fixed for the service's life: ``shadow``
    # runs it on every request and logs its answers, never returning them; ``pilot`` (name, share)
    # answers that share of the requests with it, the served model running as their shadow.
    shadow: str | None = None
    pilot: tuple[str, float] | None = None
    # ``serve --workers N``: N processes answer on one socket and log through the one writer
    # listening at ``writer_socket`` (set by the supervisor, see _workers.py).
    workers: int = 1
    writer_socket: Path | None = None
