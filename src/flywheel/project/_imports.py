"""The project folder's own modules: rules, factories and model classes a team writes next to
``flywheel.yaml``.

Paths in the project file name objects (``module:function``, ``pkg.mod.Class``); they are imported
explicitly, never evaluated as text, with the project folder on ``sys.path`` for the duration.
Two projects in one process may both have ``my_models.py``: a module the folder provides is
imported afresh from *this* folder, and its name is remembered in :data:`PROJECT_MODULES` so an
executor that ships work to other machines sends it by value.
"""

from __future__ import annotations

import contextlib
import importlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from flywheel.errors import ModelError
from flywheel.project._schema import PROJECT_FILE

__all__ = [
    "PROJECT_MODULES",
    "import_object",
    "importable",
]

# Modules imported from project folders (rules, factories): an executor that ships work to other
# machines sends them by value, since those machines cannot import them from the project folder.
PROJECT_MODULES: set[str] = set()


@contextlib.contextmanager
def importable(folder: Path | None) -> Iterator[None]:
    """``folder`` first on ``sys.path`` while the block runs (nothing when ``folder`` is None)."""
    if folder is None:
        yield
        return
    entry = str(folder.resolve())
    sys.path.insert(0, entry)
    try:
        yield
    finally:
        with contextlib.suppress(ValueError):
            sys.path.remove(entry)


def _forget_project_modules(module_name: str, folder: Path | None) -> None:
    """Drop cached modules that the project folder provides, so they import from *this* folder.

    Two projects in one process may both have ``my_models.py``; without this the
    second would silently get the first one's module (and an edited file would
    be ignored).
    """
    if folder is None:
        return
    top = module_name.split(".")[0]
    if not ((folder / f"{top}.py").is_file() or (folder / top / "__init__.py").is_file()):
        return
    PROJECT_MODULES.add(top)
    for name in [n for n in sys.modules if n == top or n.startswith(top + ".")]:
        del sys.modules[name]


def import_object(path: str, *, field: str, where: str = PROJECT_FILE, folder: Path | None = None) -> Any:
    """Import ``pkg.mod.Name`` or ``pkg.mod:name`` explicitly; never evaluates text.

    Raises
    ------
    ModelError
        ``flywheel.yaml: models[0].estimator 'sklearn.svm.SVX' does not import: …``
    """
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    try:
        _forget_project_modules(module_name, folder)
        with importable(folder):
            module = importlib.import_module(module_name)
    except Exception as exc:  # user modules may raise anything at import time
        raise ModelError(f"{where}: {field} {path!r} does not import: {type(exc).__name__}: {exc}") from None
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ModelError(
            f"{where}: {field} {path!r} does not import: module {module_name!r} has no attribute {attr!r}"
        ) from None
