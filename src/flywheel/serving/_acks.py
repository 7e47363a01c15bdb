"""A request waiting for the prediction log: the acknowledgement that wakes it, and the 503 (with
``Retry-After``) it answers when the log is behind or could not write.

A request is answered only once the log holds its records (in ``durable`` mode, once they are
committed): the log settles a future on the event loop's thread, and the request awaits it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from flywheel.prediction_log import LogFull, LogWriteError, PredictionLog
from flywheel.serving._requests import _error

__all__: list[str] = []


def _log_refused(exc: LogFull | LogWriteError) -> Any:
    """503 with Retry-After: the log is behind (LogFull) or could not write (LogWriteError)."""
    if isinstance(exc, LogFull):
        return _error(503, f"{exc}; retry shortly", {"Retry-After": "1"})
    return _error(503, f"the prediction log could not be written ({exc}); retry", {"Retry-After": "1"})


def _acked(
    loop: asyncio.AbstractEventLoop,
) -> tuple[asyncio.Future[None], Callable[[BaseException | None], None]]:
    """A future and the acknowledgement that settles it (the log runs acks on the loop's thread)."""
    fut: asyncio.Future[None] = loop.create_future()

    def ack(error: BaseException | None) -> None:
        if fut.done():
            return
        if error is None:
            fut.set_result(None)
        else:
            fut.set_exception(error)

    return fut, ack


async def _durable(log: PredictionLog, submit: Callable[[Any], None]) -> Any:
    """Hand records to the log; wait for their commit in durable mode. A response, or None when done."""
    fut, ack = _acked(asyncio.get_running_loop())
    try:
        submit(ack)
        await fut
    except (LogFull, LogWriteError) as exc:
        return _log_refused(exc)
    return None
