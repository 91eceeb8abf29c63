"""Search-space registry: ``get_space(name)``, ``list_spaces()``."""

from __future__ import annotations

from nasfilter.errors import UnknownSpaceError
from nasfilter.spaces.base import DATASETS, Costs, DatasetShape, Space

_REGISTRY: dict[str, Space] = {}


def register_space(cls: type[Space]) -> type[Space]:
    inst = cls()
    if inst.name in _REGISTRY:
        raise ValueError(f"search space {inst.name!r} is already registered")
    _REGISTRY[inst.name] = inst
    return cls


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
    from nasfilter.errors import UsageError

    key = name.lower()
    if key not in DATASETS:
        raise UsageError(f"Unknown dataset {name!r}.", f"Choose one of: {', '.join(DATASETS)}.")
    return DATASETS[key]


def _load() -> None:
    if not _REGISTRY:
        from nasfilter.spaces import nats  # noqa: F401  (registers nats-tss, nats-sss)


__all__ = [
    "Costs",
    "DatasetShape",
    "Space",
    "get_space",
    "list_spaces",
    "register_space",
    "get_dataset_shape",
    "DATASETS",
]
