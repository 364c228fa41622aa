"""Names a module still gives after they moved to a module of their own, loaded with their first
use (a module ``__getattr__``, PEP 562): what a function's first answer does not use stays off
its cold start (docs/benchmarks.md, "Cold start, fourth round (issue 25)"), and every
``from old import Name`` keeps working. Standard library only."""

from __future__ import annotations

from collections.abc import Callable, Mapping, MutableMapping
from importlib import import_module
from typing import Any


def later(
    module: MutableMapping[str, Any], source: str, names: frozenset[str]
) -> Callable[[str], Any]:
    """The ``__getattr__`` of the module whose ``globals()`` is ``module``: each of ``names``
    taken from the module ``source`` when first asked for, and kept in ``module``."""
    return later_from(module, {source: names})


def later_from(
    module: MutableMapping[str, Any], sources: Mapping[str, frozenset[str]]
) -> Callable[[str], Any]:
    """``later`` for names kept in several modules: ``sources`` maps each module to its names."""
    where = {name: source for source, names in sources.items() for name in names}

    def module_getattr(name: str) -> Any:
        source = where.get(name)
        if source is not None:
            value = module[name] = getattr(import_module(source), name)
            return value
        raise AttributeError(f"module {module['__name__']!r} has no attribute {name!r}")

    return module_getattr
