"""Which code a project file may have flywheel call: the trust model.

A project file is data. Cloning a repository and running ``flywheel run`` in it must not let its
``flywheel.yaml`` alone run a command, so a name in the file is checked *before* the code it
names is called, and for factories and rules before a foreign module is even imported:

* ``estimator:`` may name a class from any installed package or the project folder, but it must
  be a class with ``fit`` and ``predict``; that is checked before it is instantiated (see
  :func:`flywheel.project.import_estimator_class`). ``os.system`` is not a class; it is refused.
* ``factory:`` and ``baselines.rules`` name functions flywheel calls with the file's ``params``
  (or the data's rows), so their module must lie in the project folder, or in a package the file
  lists under ``trust:``. Where a module would come from is asked of the import system
  (:func:`importlib.util.find_spec` on the top-level name, which imports nothing), so
  ``os:system`` is refused before ``os`` is looked at, let alone called.

``trust:`` takes top-level module names of installed packages; the standard library cannot be
trusted, since its functions run commands and delete files.
"""

from __future__ import annotations

import importlib.machinery
import importlib.util
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Annotated

from pydantic import AfterValidator

__all__ = [
    "TrustedPackage",
    "findable",
    "in_project_folder",
    "lies_in",
    "trust_refusal",
    "untrusted",
]

_TOP_LEVEL = re.compile(r"^[A-Za-z_]\w*$")
# Names the standard library owns: no project folder can provide them (Python's own module is
# found first, or a file there would shadow it), and none may be trusted.
_STANDARD = frozenset(sys.stdlib_module_names) | frozenset(sys.builtin_module_names)


def _check_trusted_name(name: str) -> str:
    if not _TOP_LEVEL.match(name):
        raise ValueError(f"must be a top-level module name like sklearn or team_models; got {name!r}")
    if name in _STANDARD:
        raise ValueError(
            "must name an installed package, not Python's standard library (its functions run "
            f"commands and delete files); got {name!r}"
        )
    return name


# One entry of ``trust:``: a top-level module name of an installed package.
TrustedPackage = Annotated[str, AfterValidator(_check_trusted_name)]


def in_project_folder(top: str, folder: Path) -> bool:
    """Whether the top-level module ``top`` is a module or package in ``folder`` (nothing imported)."""
    if top in _STANDARD:
        return False
    try:
        spec = importlib.machinery.PathFinder.find_spec(top, [str(folder.resolve())])
    except (ImportError, OSError, ValueError):
        return False
    return spec is not None and (spec.has_location or bool(spec.submodule_search_locations))


def findable(top: str) -> bool:
    """Whether the top-level module ``top`` can be imported at all (asked without importing it)."""
    try:
        return importlib.util.find_spec(top) is not None
    except (ImportError, ValueError):  # e.g. a module in sys.modules without a spec: it exists
        return True


def untrusted(path: str, *, folder: Path | None, trust: tuple[str, ...] | list[str]) -> bool:
    """Whether ``module:function`` comes from outside the project folder and the trusted packages.

    A module found nowhere is not called untrusted: importing it will say it does not exist.
    """
    top = path.partition(":")[0].split(".")[0]
    if top in trust or (folder is not None and in_project_folder(top, folder)):
        return False
    return findable(top)


def lies_in(module: ModuleType, folder: Path) -> bool:
    """Whether an imported module's file lies inside ``folder`` (checked after importing it)."""
    file = getattr(module, "__file__", None)
    if not file:
        return False
    return Path(file).resolve().is_relative_to(folder.resolve())


def trust_refusal(field: str, path: str, where: str) -> str:
    """The one line that refuses a function from outside the project folder and ``trust:``."""
    return (
        f"{where}: {field} {path!r} is not in the project folder nor a trusted package; allowed: "
        f"a module next to {Path(where).name}, or list its package under trust:"
    )
