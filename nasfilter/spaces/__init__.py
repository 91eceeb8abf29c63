"""Search-space registry: ``get_space(name)``, ``list_spaces()``.

Built-in spaces are discovered: every module and subpackage of ``nasfilter.spaces``
registers its spaces with ``@register_space`` when imported (modules whose name starts
with ``_`` or ends with ``_torch`` hold helpers or torch code and are not imported here;
``base`` is the interface). Third-party spaces register through the ``nasfilter.spaces``
entry-point group, or by calling ``register_space`` themselves; either way the built-in
spaces stay registered. Nothing here imports torch.
"""

from __future__ import annotations

import importlib
import pkgutil

from nasfilter.datasets import DatasetShape, get_shape
from nasfilter.errors import UnknownSpaceError
from nasfilter.spaces.base import DATASETS, Costs, MixedRadixSpace, Space

_REGISTRY: dict[str, Space] = {}
_LOADED = {"builtin": False}
_SKIP = {"base"}


def register_space(cls: type[Space]) -> type[Space]:
    """Class decorator: register one instance of ``cls`` under ``cls.name``; a second
    space of the same name is refused."""
    inst = cls()
    if inst.name in _REGISTRY and type(_REGISTRY[inst.name]) is not cls:
        raise ValueError(f"search space {inst.name!r} is already registered")
    _REGISTRY[inst.name] = inst
    return cls


def _load() -> None:
    if _LOADED["builtin"]:
        return
    _LOADED["builtin"] = True
    for info in pkgutil.iter_modules(__path__):
        name = info.name
        if name in _SKIP or name.startswith("_") or name.endswith("_torch"):
            continue
        importlib.import_module(f"{__name__}.{name}")
    from importlib.metadata import entry_points

    for ep in entry_points(group="nasfilter.spaces"):
        ep.load()


def get_space(name: str) -> Space:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        known = ", ".join(sorted(_REGISTRY))
        raise UnknownSpaceError(
            f"Unknown search space {name!r}.", f"Choose one of: {known}."
        ) from None


def list_spaces() -> list[Space]:
    _load()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def get_dataset_shape(name: str) -> DatasetShape:
    """A dataset shape by name (see ``nasfilter.datasets``)."""
    return get_shape(name)


__all__ = [
    "Costs",
    "DatasetShape",
    "MixedRadixSpace",
    "Space",
    "get_space",
    "list_spaces",
    "register_space",
    "get_dataset_shape",
    "DATASETS",
]
