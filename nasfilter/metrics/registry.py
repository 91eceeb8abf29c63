"""The metric registry.

A metric is registered once, by name, with its metadata; registering a name twice is an
error. Metrics are declared with the ``@metric`` decorator in the modules of
``nasfilter.metrics.measures`` (one file per measure or family), which are discovered and
imported automatically; third-party metrics register through the ``nasfilter.metrics``
entry-point group. A metric may provide up to three paths:

- ``analytic``: ``(space, arch, ctx) -> value`` from the identity alone, no network.
  With ``figure`` set, it is used only for spaces whose ``figures`` include that figure
  (``Space.costs``); other spaces take a model path.
- ``probe``: ``(probe, ctx) -> value`` reading the one shared no-grad forward pass
  (``ModelProbe``) that every probe metric of an architecture shares.
- ``model``: ``(inp: MetricInput) -> value`` with its own computation on the network
  (gradients, several passes, modified weights): see ``nasfilter.metrics.inputs``.

An *aggregate* metric has none of these: it is defined over other metrics (its
components, ``nasfilter.metrics.aggregate``), computed per architecture from their
values (path ``aggregate``) or by ranks within a population (path ``rank``); it needs
what its components need.

and declares what it needs (``NEEDS``):

- ``data``: real input images (``--data``); without it a metric makes its own inputs
  (random, all-ones) from ``MetricInput``;
- ``labels``: targets for a loss (real labels, or seeded random ones for synthetic data);
- ``gradients``: it runs backward passes;
- ``fresh_network``: it changes weights, masks or buffers, so it gets its own freshly
  seeded copy of the network (made by copying the pristine one, not by rebuilding);
- ``float64``: it computes in double precision (its copy of the network is converted).

The engine never looks at a metric's name: it asks which paths exist for the space and
what the metric needs. Everything here imports without torch.
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from nasfilter.errors import UnknownMetricError

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.aggregate import Aggregate
    from nasfilter.metrics.inputs import MetricInput
    from nasfilter.metrics.probe import ModelProbe
    from nasfilter.spaces.base import Space

NEEDS: tuple[str, ...] = ("data", "labels", "gradients", "fresh_network", "float64")

#: How a value was computed, as stored in ``run_metrics.path`` (a registered metric's
#: own paths; aggregates take ``aggregate`` or ``rank``, see ``nasfilter.metrics.aggregate``).
PATHS: tuple[str, ...] = ("analytic", "probe", "model")


@dataclass
class ScoreContext:
    """Settings a metric may read: dataset shape, bytes per parameter, run settings."""

    dataset: Any  # nasfilter.datasets.DatasetShape
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


Analytic = Callable[["Space", str, ScoreContext], "float | Score"]
AnalyticMany = Callable[["Space", Sequence[str], ScoreContext], Any]

#: ``analytic=FIGURE``: the analytic value is the space's figure ``figure`` (or
#: ``figure_transform(value, ctx)``), with a bulk form over many architectures
#: (``Space.costs_many``; the transform then gets an array).
FIGURE = "figure"
ProbeFn = Callable[["ModelProbe", ScoreContext], "float | Score"]
ModelFn = Callable[["MetricInput"], "float | Score"]


@dataclass(frozen=True)
class Metric:
    name: str
    version: str
    higher_is_better: bool
    description: str
    unit: str = ""
    needs: frozenset[str] = frozenset()
    #: the space figure the analytic path reads (None: analytic for every space)
    figure: str | None = None
    from_arch: Analytic | None = None
    #: the analytic path over many architectures at once (an array in their order)
    from_arch_many: AnalyticMany | None = None
    from_probe: ProbeFn | None = None
    from_model: ModelFn | None = None
    #: settings a shared probe needs for this metric (e.g. {"want_kernel": True})
    probe_options: tuple[tuple[str, Any], ...] = ()
    #: where the definition comes from (paper; reference code: repository and file)
    source: str = ""
    #: the metric's own settings, name -> default (None: required), set with
    #: ``--param NAME=VALUE``; read from ``ctx.settings[name]``
    params: tuple[tuple[str, Any], ...] = ()
    #: an aggregate's definition (``nasfilter.metrics.aggregate``); None for other metrics
    aggregate: Aggregate | None = None

    # -- declared needs -------------------------------------------------------------------
    @property
    def needs_data(self) -> bool:
        return "data" in self.needs

    @property
    def needs_labels(self) -> bool:
        return "labels" in self.needs

    @property
    def needs_gradients(self) -> bool:
        return "gradients" in self.needs

    @property
    def needs_fresh_network(self) -> bool:
        return "fresh_network" in self.needs

    @property
    def needs_float64(self) -> bool:
        return "float64" in self.needs

    @property
    def model_capable(self) -> bool:
        """Whether the metric can be computed on a built network."""
        return self.from_probe is not None or self.from_model is not None

    @property
    def components(self) -> tuple[str, ...]:
        """An aggregate's component metrics (empty for other metrics)."""
        return self.aggregate.names if self.aggregate is not None else ()

    @property
    def needs_model(self) -> bool:
        """Whether the metric needs a built network for every space (no analytic path
        at all; for an aggregate: any component does). For a given space, see
        ``analytic_in``."""
        if self.aggregate is not None:
            return any(get_metric(c).needs_model for c in self.components)
        return self.from_arch is None

    def analytic_in(self, space: Space) -> bool:
        """Whether the analytic path serves ``space``."""
        if self.from_arch is None:
            return False
        return self.figure is None or self.figure in space.figures

    def path_in(self, space: Space) -> str | None:
        """'analytic', 'probe' or 'model' for ``space`` ('aggregate' or 'rank' for an
        aggregate whose components all can be computed there); None if it cannot be
        computed."""
        if self.aggregate is not None:
            if all(get_metric(c).path_in(space) is not None for c in self.components):
                return self.aggregate.path
            return None
        if self.analytic_in(space):
            return "analytic"
        if self.from_probe is not None:
            return "probe"
        if self.from_model is not None:
            return "model"
        return None

    def metadata(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "higher_is_better": self.higher_is_better,
            "description": self.description,
            "unit": self.unit,
            "needs": sorted(self.needs),
            "figure": self.figure,
            "source": self.source,
            "params": dict(self.params),
            "needs_model": self.needs_model,
            "needs_data": self.needs_data,
            "needs_labels": self.needs_labels,
            "needs_gradients": self.needs_gradients,
            "needs_fresh_network": self.needs_fresh_network,
            "needs_float64": self.needs_float64,
            **({"aggregate": self.aggregate.as_dict()} if self.aggregate is not None else {}),
        }


_REGISTRY: dict[str, Metric] = {}
_LOADED = {"builtin": False}


def register(m: Metric) -> Metric:
    """Add a metric; a second metric of the same name is refused."""
    if m.name in _REGISTRY:
        raise ValueError(f"metric {m.name!r} is already registered")
    if m.aggregate is not None:
        m.aggregate.check(m.name)
        if m.from_arch is not None or m.model_capable:
            raise ValueError(f"aggregate {m.name!r} cannot also have its own paths")
    elif m.from_arch is None and not m.model_capable:
        raise ValueError(f"metric {m.name!r} has no way to be computed")
    bad = set(m.needs) - set(NEEDS)
    if bad:
        raise ValueError(f"metric {m.name!r} declares unknown needs {sorted(bad)}")
    if m.aggregate is not None and _LOADED.get("resolved"):
        m = _resolve(m)
    _REGISTRY[m.name] = m
    return m


def _resolve(m: Metric) -> Metric:
    """An aggregate with its components checked (registered, not aggregates) and the
    union of their needs and parameters as its own."""
    from dataclasses import replace

    assert m.aggregate is not None
    needs: set[str] = set(m.needs)
    params: dict[str, Any] = dict(m.params)
    for c in m.components:
        comp = _REGISTRY.get(c)
        if comp is None:
            raise ValueError(f"aggregate {m.name!r}: component {c!r} is not a registered metric")
        if comp.aggregate is not None:
            raise ValueError(f"aggregate {m.name!r}: component {c!r} is itself an aggregate")
        needs |= comp.needs
        for k, v in comp.params:
            params.setdefault(k, v)
    return replace(m, needs=frozenset(needs), params=tuple(sorted(params.items())))


def metric(
    name: str,
    *,
    description: str,
    higher_is_better: bool = True,
    version: str = "1",
    unit: str = "",
    needs: Iterable[str] = (),
    path: str = "model",
    figure: str | None = None,
    analytic: Analytic | str | None = None,
    figure_transform: Callable[[Any, ScoreContext], Any] | None = None,
    probe_options: dict[str, Any] | None = None,
    source: str = "",
    params: dict[str, Any] | None = None,
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as metric ``name``.

    ``path='model'``: the function takes a ``MetricInput``; ``path='probe'``: it takes
    ``(probe, ctx)`` and reads the shared forward pass; ``path='analytic'``: it takes
    ``(space, arch, ctx)``. ``analytic`` adds an analytic path beside a probe or model
    path (used for the spaces whose ``figures`` include ``figure``); ``analytic=FIGURE``
    makes that path the figure itself (or ``figure_transform(value, ctx)``), with a bulk
    form.
    """
    if path not in PATHS:
        raise ValueError(f"path must be one of {PATHS}, not {path!r}")
    many: AnalyticMany | None = None
    if analytic == FIGURE:
        if figure is None:
            raise ValueError(f"metric {name!r}: analytic=FIGURE needs figure=")
        analytic, many = _figure_paths(figure, figure_transform)
    elif isinstance(analytic, str):
        raise ValueError(f"metric {name!r}: unknown analytic {analytic!r}")

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        register(
            Metric(
                name=name,
                version=version,
                higher_is_better=higher_is_better,
                description=description,
                unit=unit,
                needs=frozenset(needs),
                figure=figure,
                from_arch=fn if path == "analytic" else analytic,  # type: ignore[arg-type]
                from_arch_many=many,
                from_probe=fn if path == "probe" else None,
                from_model=fn if path == "model" else None,
                probe_options=tuple(sorted((probe_options or {}).items())),
                source=source,
                params=tuple(sorted((params or {}).items())),
            )
        )
        return fn

    return deco


def _figure_paths(
    figure: str, transform: Callable[[Any, ScoreContext], Any] | None
) -> tuple[Analytic, AnalyticMany]:
    """The per-architecture and the bulk analytic path of a figure metric."""

    def one(space: Space, arch: str, ctx: ScoreContext) -> float:
        v = space.costs(arch, ctx.dataset).figure(figure)
        if v is None:  # pragma: no cover - a space's figures promise it
            raise ValueError(f"{space.name} computes no {figure}")
        return float(transform(float(v), ctx) if transform else v)

    def many(space: Space, archs: Sequence[str], ctx: ScoreContext) -> Any:
        v = space.costs_many(archs, ctx.dataset)[figure]
        return transform(v, ctx) if transform else v

    return one, many


def _load() -> None:
    """Import every module of ``nasfilter.metrics.measures`` (each registers its metrics;
    none imports torch at import time), then the ``nasfilter.metrics`` entry points."""
    if _LOADED["builtin"]:
        return
    _LOADED["builtin"] = True
    from nasfilter.metrics import measures

    for info in pkgutil.iter_modules(measures.__path__):
        if not info.name.startswith("_"):
            importlib.import_module(f"{measures.__name__}.{info.name}")
    from importlib.metadata import entry_points

    for ep in entry_points(group="nasfilter.metrics"):
        ep.load()
    for name, m in list(_REGISTRY.items()):
        if m.aggregate is not None:
            _REGISTRY[name] = _resolve(m)
    _LOADED["resolved"] = True


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


def parse_metric_list(text: str | Iterable[str]) -> list[Metric]:
    """Metrics from a comma-separated list (or an iterable of names), duplicates dropped,
    in the order given."""
    if isinstance(text, str):
        names = [t.strip() for t in text.split(",") if t.strip()]
    else:
        names = [str(t).strip() for t in text if str(t).strip()]
    if not names:
        raise UnknownMetricError("No metric named.", "Pass e.g. --metrics relu_count,params.")
    seen: list[Metric] = []
    for n in names:
        m = get_metric(n)
        if m not in seen:
            seen.append(m)
    return seen
