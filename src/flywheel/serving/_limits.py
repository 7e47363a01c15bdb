"""The request body's byte limit, enforced before anything reads or parses the body.

Why a middleware of its own: a handler that calls ``request.body()`` and then checks the size has
already spent the time and memory the limit is meant to save — a 117 MB ``/predict`` body took 10 s
of reading and JSON parsing before its 413. Here a request whose ``Content-Length`` is over the
limit is answered 413 before the application sees it, and a body without one (chunked) is counted
as it arrives and refused the moment it passes the limit. What the client still sends after that
is read and dropped, unparsed, for a few seconds at most, so that the 413 reaches it (``_refuse``).

A plain ASGI middleware, not Starlette's ``BaseHTTPMiddleware``: the cost for a request within
the limit is one header lookup, since a declared length is enforced by the HTTP server's framing.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

__all__: list[str] = []

_Receive = Any
_Send = Any


class _TooLarge(Exception):
    """Raised from ``receive`` once a body without a declared length passes the limit."""

    def __init__(self, seen: int) -> None:
        super().__init__(seen)
        self.seen = seen


def _size(n: int) -> str:
    """Bytes for people: ``8 MB (8,388,608 bytes)``."""
    mb = n / (1 << 20)
    return f"{mb:.3g} MB ({n:,} bytes)" if n >= 1 << 20 else f"{n:,} bytes"


def _declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    for name, value in headers:
        if name.lower() == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # the HTTP server refuses such a request before it gets here
    return None


class _BodyLimit:
    """Answer 413 (one line of JSON) for a request body over ``max_bytes``, before parsing it."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: dict[str, Any], receive: _Receive, send: _Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _declared_length(scope["headers"])
        if declared is not None:
            if declared > self.max_bytes:
                await self._refuse(receive, send, f"Content-Length says {_size(declared)}")
                return
            await self.app(scope, receive, send)  # the server delivers no more than declared
            return
        await self._counted(scope, receive, send)

    async def _counted(self, scope: dict[str, Any], receive: _Receive, send: _Send) -> None:
        """A body of unknown length: count its bytes as the application reads them."""
        seen = 0
        started = False

        async def counting() -> Any:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge(seen)
            return message

        async def watching(message: Any) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting, watching)
        except _TooLarge as exc:
            if started:
                raise
            await self._refuse(receive, send, f"{_size(exc.seen)} had arrived when reading stopped")

    async def _refuse(self, receive: _Receive, send: _Send, given: str) -> None:
        """The 413, then a lingering close: what the client still sends is read and dropped.

        Why linger: closing a socket with unread input makes the kernel answer with a reset, and a
        reset makes the client's kernel drop the 413 it had not read yet — the client sees
        "connection reset" instead of the reason. So the whole answer goes out first (its length
        is declared), and only then, while the response is held open, the rest of the body is
        read and dropped: until it ends, the client goes quiet for a second, or ten seconds pass.
        Nothing of it is kept or parsed.
        """
        detail = f"body: more than the limit of {_size(self.max_bytes)} per request (--max-body-mb); {given}"
        body = json.dumps({"detail": detail}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body, "more_body": True})
        await _drain(receive)
        await send({"type": "http.response.body", "body": b"", "more_body": False})


async def _drain(receive: _Receive, quiet_s: float = 1.0, most_s: float = 10.0) -> None:
    """Read and drop the rest of a request body (see :meth:`_BodyLimit._refuse`)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + most_s
    while (left := deadline - loop.time()) > 0:
        try:
            message = await asyncio.wait_for(receive(), min(quiet_s, left))
        except TimeoutError:
            return
        if message["type"] != "http.request" or not message.get("more_body", False):
            return
