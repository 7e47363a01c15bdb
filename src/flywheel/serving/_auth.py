"""The optional bearer token that guards the routes that write labels and outcomes (``/feedback``,
``/outcome``, ``/review``).

``/predict`` stays open: a prediction changes nothing a model learns from, while a label does —
one forged label per prediction is enough to steer a retrain — and an outcome is what a pilot is
judged on. ``flywheel serve --token-file PATH``
reads the token from ``PATH``, or, when there is no such file, generates one
(:func:`secrets.token_urlsafe`) and writes it there readable by its owner only (mode 0600), so
the operator hands it to the labelling tools and nothing else needs configuring.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

from fastapi import HTTPException

from flywheel.errors import FlywheelError

__all__: list[str] = []


def load_token(path: Path) -> tuple[str, bool]:
    """The token in ``path`` and whether it was generated just now (written with mode 0600).

    Raises
    ------
    FlywheelError
        When the file cannot be read or written, or holds no token.
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return _read_token(path), False
    except OSError as exc:
        raise FlywheelError(f"--token-file {path}: cannot write a new token there ({exc.strerror})") from None
    token = secrets.token_urlsafe(32)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(token + "\n")
    return token, True


def _read_token(path: Path) -> str:
    try:
        token = path.read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise FlywheelError(f"--token-file {path}: cannot be read ({exc})") from None
    if not token or any(c.isspace() for c in token):
        raise FlywheelError(
            f"--token-file {path}: must hold one token on one line; delete the file to have one generated"
        )
    return token


def _guard(token: str) -> Any:
    """A FastAPI dependency: 401 unless the request carries ``Authorization: Bearer <token>``.

    Built on :class:`fastapi.security.HTTPBearer`, so the OpenAPI document declares the scheme and
    ``/docs`` offers to send the token; the answer without it is this service's one-line 401.
    """
    from fastapi import Depends
    from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

    scheme = HTTPBearer(auto_error=False, description="The token in the file given to --token-file.")
    expected = token.encode()

    async def bearer(credentials: HTTPAuthorizationCredentials | None = Depends(scheme)) -> None:
        if credentials is None:
            raise _unauthorized("Authorization: required here; send 'Authorization: Bearer <token>'")
        if not secrets.compare_digest(credentials.credentials.encode("utf-8", "replace"), expected):
            raise _unauthorized(
                "Authorization: not this service's bearer token (the one in the file given to --token-file)"
            )

    return bearer


def _unauthorized(detail: str) -> HTTPException:
    return HTTPException(401, detail, headers={"WWW-Authenticate": "Bearer"})
