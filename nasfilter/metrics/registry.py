"""The metric registry.

A metric is registered once, by name, with its metadata; registering a name twice is an
error. Each metric may provide:

- ``from_arch(space, arch, ctx)``: an analytic value from the identity alone (no network);
- ``from_model(probe, ctx)``: a value from a built network, given a ``ModelProbe`` that
  runs (at most) one forward pass shared by every metric of the run.

The engine never looks at a metric's name: it asks ``needs_model`` and which of the two
paths exist. Everything here imports without torch.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from nasfilter.errors import UnknownMetricError

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.probe import ModelProbe
    from nasfilter.spaces.base import Space


@dataclass
class ScoreContext:
    """Settings a metric may read: dataset shape, bytes per parameter, batch settings."""

    dataset: Any  # nasfilter.spaces.base.DatasetShape
    bytes_per_param: float = 1.0
    settings: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Score:
    """A metric value with its status. Non-finite values are kept, never replaced."""

    value: float
    status: str = "ok"

    @staticmethod
    def of(value: float | Score) -> Score:
        if isinstance(value, Score):
            return value
        v = float(value)
        if v != v:
            return Score(v, "nan")
        if v in (float("inf"), float("-inf")):
            return Score(v, "inf" if v > 0 else "-inf")
        return Score(v, "ok")


@dataclass(frozen=True)
class Metric:
    name: str
    version: str
    higher_is_better: bool
    needs_data: bool
    needs_gradients: bool
    description: str
    unit: str = ""
    from_arch: Callable[[Space, str, ScoreContext], float | Score] | None = None
    from_model: Callable[[ModelProbe, ScoreContext], float | Score] | None = None
    # settings a probe needs for this metric (e.g. {"want_kernel": True})
    probe_options: tuple[tuple[str, Any], ...] = ()

    @property
    def needs_model(self) -> bool:
        return self.from_arch is None

    def metadata(self) -> dict[str, Any]:
        d = {
            k: v
            for k, v in asdict(self).items()
            if k not in ("from_arch", "from_model", "probe_options")
        }
        d["needs_model"] = self.needs_model
        return d


_REGISTRY: dict[str, Metric] = {}

# One module per metric family; each registers its metrics when imported.
FAMILIES = ("nasfilter.metrics.counting", "nasfilter.metrics.naswot")


def register(metric: Metric) -> Metric:
    if metric.name in _REGISTRY:
        raise ValueError(f"metric {metric.name!r} is already registered")
    if metric.from_arch is None and metric.from_model is None:
        raise ValueError(f"metric {metric.name!r} has no way to be computed")
    _REGISTRY[metric.name] = metric
    return metric


def _load() -> None:
    # Importing the families registers their metrics (none of them imports torch).
    # import_module, not `from nasfilter.metrics import naswot`: the package exports a
    # function of that name, which would shadow the module.
    for family in FAMILIES:
        importlib.import_module(family)


def get_metric(name: str) -> Metric:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownMetricError(
            f"Unknown metric {name!r}.", f"Choose from: {', '.join(sorted(_REGISTRY))}."
        ) from None


def list_metrics() -> list[Metric]:
    _load()
    return [_REGISTRY[k] for k in sorted(_REGISTRY)]


def parse_metric_list(text: str) -> list[Metric]:
    names = [t.strip() for t in text.split(",") if t.strip()]
    if not names:
        raise UnknownMetricError("No metric named.", "Pass e.g. --metrics relu_count,params.")
    seen: list[Metric] = []
    for n in names:
        m = get_metric(n)
        if m not in seen:
            seen.append(m)
    return seen
