"""Package attributes imported on first use (PEP 562), so that a command pays only for what it uses.

`flywheel --version` and the commands that only read the store must not import scikit-learn,
SciPy and pandas, which the run's modules need; a package's ``__init__`` names what it exports
and where each name lives, and :func:`lazy_attributes` imports the module when a name is first
read. (The metric engine keeps its own copy: it imports nothing of flywheel.)
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

__all__ = [
    "lazy_attributes",
]


def lazy_attributes(package: str, where: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``package`` + ``where[name]`` when ``name`` is first read.

    ``where`` maps each lazy name to its module, relative (``"_mine"``) or absolute
    (``"flywheel.data"``). The value is cached in the package, so the next read is a plain lookup.
    """

    def __getattr__(name: str) -> Any:
        module = where.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        path = module if module.startswith("flywheel.") else f"{package}.{module}"
        value = getattr(importlib.import_module(path), name)
        importlib.import_module(package).__dict__[name] = value
        return value

    return __getattr__
