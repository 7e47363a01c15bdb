"""The project folder's own modules: rules, factories and model classes a team writes next to
``flywheel.yaml``.

Paths in the project file name objects (``module:function``, ``pkg.mod.Class``); they are imported
explicitly, never evaluated as text, with the project folder on ``sys.path`` for the duration, and
only what the trust model allows is returned (:mod:`flywheel.project._trust`): an estimator
class with ``fit`` and ``predict``, or a function from the project folder or a trusted package.
Two projects in one process may both have ``my_models.py``: a module the folder provides is
imported afresh from *this* folder, and its name is remembered in :data:`PROJECT_MODULES` so an
executor that ships work to other machines sends it by value.
"""

from __future__ import annotations

import contextlib
import importlib
import inspect
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

from flywheel.errors import ModelError
from flywheel.project._schema import PROJECT_FILE
from flywheel.project._trust import findable, in_project_folder, lies_in, trust_refusal

__all__ = [
    "PROJECT_MODULES",
    "import_estimator_class",
    "import_trusted_callable",
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


def _import_module(module_name: str, path: str, field: str, where: str, folder: Path | None) -> Any:
    try:
        _forget_project_modules(module_name, folder)
        with importable(folder):
            return importlib.import_module(module_name)
    except Exception as exc:  # user modules may raise anything at import time
        raise ModelError(f"{where}: {field} {path!r} does not import: {type(exc).__name__}: {exc}") from None


def _attribute(module: Any, module_name: str, attr: str, path: str, field: str, where: str) -> Any:
    try:
        return getattr(module, attr)
    except AttributeError:
        raise ModelError(
            f"{where}: {field} {path!r} does not import: module {module_name!r} has no attribute {attr!r}"
        ) from None


def import_estimator_class(
    path: str, *, field: str, where: str = PROJECT_FILE, folder: Path | None = None
) -> type:
    """Import the class ``pkg.mod.Name`` explicitly and check it is an estimator class.

    Only a class with ``fit`` and ``predict`` is returned: anything else (``os.system``,
    ``builtins.exec``) is refused before it could be called or instantiated.

    Raises
    ------
    ModelError
        ``flywheel.yaml: models[0].estimator 'sklearn.svm.SVX' does not import: …``, or
        ``… 'os.system' must name an estimator class with fit and predict, …; got a function``
    """
    module_name, sep, attr = path.partition(":")
    if not sep:
        module_name, _, attr = path.rpartition(".")
    obj = _attribute(
        _import_module(module_name, path, field, where, folder), module_name, attr, path, field, where
    )
    allowed = "must name an estimator class with fit and predict, like sklearn.svm.SVC"
    if not inspect.isclass(obj):
        raise ModelError(f"{where}: {field} {path!r} {allowed}; got a {type(obj).__name__}")
    # Looked up statically: reading an attribute may run code (a property), and nothing may run yet.
    missing = [m for m in ("fit", "predict") if inspect.getattr_static(obj, m, None) is None]
    if missing:
        without = " or ".join(missing)
        raise ModelError(
            f"{where}: {field} {path!r} {allowed}; got class {obj.__qualname__} without {without}"
        )
    return obj


def import_trusted_callable(
    path: str,
    *,
    field: str,
    where: str = PROJECT_FILE,
    folder: Path | None = None,
    trust: tuple[str, ...] | list[str] = (),
) -> Callable[..., Any]:
    """Import the function ``module:function`` if its module is one the project may call.

    The module must lie in ``folder`` (the project folder) or in a package listed in ``trust``;
    that is decided from where the import system would find it, before anything foreign is
    imported, and checked again on the imported module's file.

    Raises
    ------
    ModelError
        ``flywheel.yaml: models[0].factory 'os:system' is not in the project folder nor a
        trusted package; …``, or when it does not import or is not callable.
    """
    module_name, _, attr = path.partition(":")
    top = module_name.split(".")[0]
    trusted = top in trust
    if not trusted and not (folder is not None and in_project_folder(top, folder)):
        if findable(top):  # found, but outside the project folder: never imported, never called
            raise ModelError(trust_refusal(field, path, where))
        raise ModelError(
            f"{where}: {field} {path!r} does not import: ModuleNotFoundError: No module named {top!r}"
        )
    module = _import_module(module_name, path, field, where, folder)
    if not trusted and (folder is None or not lies_in(module, folder)):  # the import found another
        raise ModelError(trust_refusal(field, path, where))
    obj = _attribute(module, module_name, attr, path, field, where)
    if not callable(obj):
        raise ModelError(f"{where}: {field} {path!r} is not callable; got a {type(obj).__name__}")
    return cast(Callable[..., Any], obj)
