"""Typed run settings: what a score run computes, and the key under which a stored value
may be reused.

``RunSettings`` is everything a ``Scorer`` needs (space, metrics, seed, shape, input data,
batch size, device, BatchNorm mode, bytes per parameter, size penalty); ``ArchPlan`` says
which architectures a run scores (a seeded sample, the whole space, or a recorded list).
Both are stored together as the run's settings JSON (``to_json``) and read back from it
(``from_json``, which also reads runs written by nasfilter 0.x). ``reuse_key`` is the one
place that says when a stored value of a metric can stand in for a new one.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from nasfilter.datasets import (
    DEFAULT_SHAPE,
    INPUT_DATA,
    SYNTHETIC,
    DatasetShape,
    check_input_data,
    get_shape,
)
from nasfilter.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.registry import Metric
    from nasfilter.spaces.base import Space

#: Metrics every score run records: `top` and `export` need them.
ALWAYS: tuple[str, ...] = ("params", "size_kb")
BN_MODES: tuple[str, ...] = ("batch", "eval")
DEVICES: tuple[str, ...] = ("auto", "cpu", "cuda", "mps")
#: How networks and batches are laid out in memory (``--memory-format``).
MEMORY_FORMATS: tuple[str, ...] = ("channels_last", "contiguous")
DEFAULT_MEMORY_FORMAT = "channels_last"
INIT = "torch default init, seeded per architecture by blake2b(seed, arch)"
SETTINGS_VERSION = 2


def _is_rank(m: Metric) -> bool:
    """A rank aggregate (its value depends on the population; never size-penalized:
    its log form is at most 0, which a factor <= 1 would raise)."""
    return m.aggregate is not None and m.aggregate.kind == "rank"


def arch_seed(run_seed: int, arch: str) -> int:
    """The weight-initialization seed of one architecture in a run."""
    h = hashlib.blake2b(f"{run_seed}\x00{arch}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & 0x7FFF_FFFF_FFFF_FFFF


def penalized_name(metric: str, penalty: str) -> str:
    """Name of the penalized form of a metric, e.g. ``relu_count_gdf``."""
    return f"{metric}_{penalty}"


@dataclass(frozen=True)
class PenaltySettings:
    """A size penalty: ``penalty`` (gdf, hsdf, rdf) with its target ``mu`` and width
    ``sigma`` in MB."""

    penalty: str
    mu: float
    sigma: float

    @classmethod
    def make(cls, name: str, mu: float, sigma: float) -> PenaltySettings:
        from nasfilter.penalties import get_penalty, validate_params

        m, s = validate_params(mu, sigma)
        return cls(get_penalty(name).name, m, s)

    def as_dict(self) -> dict[str, Any]:
        from nasfilter.penalties import get_penalty

        return {
            "penalty": self.penalty,
            "mu": self.mu,
            "sigma": self.sigma,
            "formula": get_penalty(self.penalty).formula,
        }

    def name_of(self, metric: str) -> str:
        return penalized_name(metric, self.penalty)

    def label(self) -> str:
        return f"{self.penalty}(size; mu={self.mu:g} MB, sigma={self.sigma:g} MB)"


def _check_int(name: str, value: Any, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        try:
            as_int = int(value)
        except (TypeError, ValueError):
            raise UsageError(f"{name} must be an integer (got {value!r}).") from None
        if as_int != value:
            raise UsageError(f"{name} must be an integer (got {value!r}).")
        value = as_int
    if value < low:
        raise UsageError(f"{name} must be at least {low} (got {value}).")
    return int(value)


@dataclass(frozen=True)
class RunSettings:
    """Everything a scorer needs; validated by ``check``.

    ``data``: input images for data-dependent metrics (``cifar10``, ``cifar100``,
    ``imagenet16-120``, ``synthetic``) or None when no metric needs images. ``shape``:
    the dataset shape networks are built at (for real data, the data's own shape).
    ``batch``: the description of the batch read at start (hashes, indices); it is
    recorded, not chosen, and checked again when a run resumes. ``memory_format``: how
    networks and batches are laid out (``channels_last``, NHWC, the default: 1.6-2.5x
    faster convolutions on CPU; ``contiguous``, NCHW, what runs before it existed used);
    None when the run builds no network. Values agree across formats to float rounding
    only, so it is part of the reuse key.
    """

    space: str
    metrics: tuple[str, ...]
    seed: int = 0
    shape: str = DEFAULT_SHAPE
    data: str | None = None
    data_dir: str | None = None
    batch_size: int = 128
    device: str = "auto"
    bn_mode: str = "batch"
    bytes_per_param: float = 1.0
    penalty: PenaltySettings | None = None
    memory_format: str | None = DEFAULT_MEMORY_FORMAT
    #: metrics' own settings (``--param NAME=VALUE``), sorted by name
    params: tuple[tuple[str, float], ...] = ()
    batch: dict[str, Any] | None = field(default=None, compare=False)

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def make(
        cls,
        space: str,
        metrics: str | tuple[str, ...] | list[str],
        *,
        seed: int = 0,
        data: str | None = None,
        shape: str | None = None,
        data_dir: str | None = None,
        batch_size: int = 128,
        device: str = "auto",
        bn_mode: str = "batch",
        bytes_per_param: float = 1.0,
        penalty: str | None = None,
        mu: float = 0.2,
        sigma: float = 0.4,
        params: dict[str, float] | None = None,
        memory_format: str = DEFAULT_MEMORY_FORMAT,
    ) -> RunSettings:
        """Validated settings from user-level options (what the CLI passes).

        ``ALWAYS`` metrics are added; ``shape`` defaults to the data's shape, else the
        space's default shape; input data is kept only if a metric needs images (a
        data-free run records none, so its values are reusable whatever --data was).
        """
        from nasfilter.metrics.registry import parse_metric_list
        from nasfilter.spaces import get_space

        sp = get_space(space)
        ms = parse_metric_list(metrics)
        names = []
        for m in ms:  # an aggregate brings its components, listed before it
            for c in m.components:
                if c not in names:
                    names.append(c)
            if m.name not in names:
                names.append(m.name)
        for extra in ALWAYS:
            if extra not in names:
                names.append(extra)
        if data is not None:
            data = check_input_data(data)
        data_shape = INPUT_DATA.get(data) if data else None
        if shape is not None:
            shape = get_shape(shape).name
            if data_shape is not None and shape != data_shape:
                raise UsageError(
                    f"--shape {shape} does not match --data {data}, whose images are {data_shape}.",
                    "Drop --shape (real data sets the shape), or use --data synthetic.",
                )
        chosen = shape or data_shape or sp.shapes[0]
        pen = PenaltySettings.make(penalty, mu, sigma) if penalty is not None else None
        s = cls(
            space=sp.name,
            metrics=tuple(names),
            seed=seed,
            shape=chosen,
            data=data,
            data_dir=str(data_dir) if data_dir is not None else None,
            batch_size=batch_size,
            device=str(device).strip().lower(),
            bn_mode=bn_mode,
            bytes_per_param=bytes_per_param,
            penalty=pen,
            memory_format=str(memory_format).strip().lower().replace("-", "_"),
            params=tuple(sorted((params or {}).items())),
        )
        s.check()
        if not s.builds_networks:  # no network, no layout: analytic values do not depend on it
            s = replace(s, memory_format=None)
        if not s.needs_images:  # a data-free run does not depend on (or record) --data
            s = replace(s, data=None, data_dir=None)
        return s

    def check(self) -> None:
        """Raise UsageError (exit 2) for anything invalid; touches no data or device."""
        from nasfilter.metrics.registry import get_metric
        from nasfilter.spaces import get_space

        sp = get_space(self.space)
        _check_int("--seed", self.seed, 0)
        sp.shape(self.shape)  # refuses shapes the space does not build at
        for name in self.metrics:
            m = get_metric(name)
            missing = [c for c in m.components if c not in self.metrics]
            if missing:
                raise UsageError(
                    f"{name} is computed from {', '.join(m.components)}; "
                    f"{', '.join(missing)} {'is' if len(missing) == 1 else 'are'} not in the run.",
                    "Build the settings with RunSettings.make, which adds them.",
                )
            if m.aggregate is not None and m.path_in(sp) is None:
                gone = [c for c in m.components if get_metric(c).path_in(sp) is None]
                raise UsageError(
                    f"{name} is not available for the {sp.name} space: its component(s) "
                    f"{', '.join(gone)} cannot be computed there.",
                    "Drop it from --metrics.",
                )
            if m.path_in(sp) is None:
                raise UsageError(
                    f"{name} is not available for the {sp.name} space (it has no analytic "
                    f"{m.figure or 'value'} there, and {name} cannot be measured on a network).",
                    "Drop it from --metrics.",
                )
        bpp = self.bytes_per_param
        if isinstance(bpp, bool) or not isinstance(bpp, (int, float)) or not math.isfinite(bpp):
            raise UsageError(f"--bytes-per-param must be a positive number (got {bpp!r}).")
        if bpp <= 0:
            raise UsageError(f"--bytes-per-param must be positive (got {bpp}).")
        if self.data is not None and self.data not in INPUT_DATA:
            raise UsageError(
                f"Unknown --data {self.data!r}.", f"Choose one of: {', '.join(INPUT_DATA)}."
            )
        needers = [m.name for m in self.metric_objs() if m.needs_data]
        if needers and self.data is None:
            raise UsageError(
                f"{', '.join(needers)} {'needs' if len(needers) == 1 else 'need'} input images.",
                "Pass --data cifar10 --data-dir DIR (or cifar100, imagenet16-120), "
                "or --data synthetic for seeded Gaussian inputs.",
            )
        if self.builds_networks:
            _check_int("--batch-size", self.batch_size, 2)
        declared: dict[str, dict[str, Any]] = {}
        for m in self.metric_objs():
            for name, default in m.params:
                declared.setdefault(name, {})[m.name] = default
        given = dict(self.params)
        for name in given:
            if name not in declared:
                have = ", ".join(sorted(declared)) or "none"
                raise UsageError(
                    f"--param {name}: no metric of this run takes it.",
                    f"The metrics' parameters: {have}.",
                )
        for name, by in sorted(declared.items()):
            if name not in given and all(d is None for d in by.values()):
                raise UsageError(
                    f"{', '.join(sorted(by))} {'needs' if len(by) == 1 else 'need'} "
                    f"--param {name}=VALUE (it has no default).",
                    "See docs/metrics.md for what it means.",
                )
        if self.bn_mode not in BN_MODES:
            raise UsageError(f"--bn-mode must be 'batch' or 'eval' (got {self.bn_mode!r}).")
        if self.memory_format is not None and self.memory_format not in MEMORY_FORMATS:
            raise UsageError(
                f"Unknown --memory-format {self.memory_format!r}.",
                f"Choose one of: {', '.join(MEMORY_FORMATS)}.",
            )
        if self.device.split(":")[0] not in DEVICES:
            raise UsageError(
                f"Unknown --device {self.device!r}.", f"Choose one of: {', '.join(DEVICES)}."
            )

    # -- derived ------------------------------------------------------------------------------
    def space_obj(self) -> Space:
        from nasfilter.spaces import get_space

        return get_space(self.space)

    def metric_objs(self) -> list[Metric]:
        from nasfilter.metrics.registry import get_metric

        return [get_metric(n) for n in self.metrics]

    def dataset_shape(self) -> DatasetShape:
        return self.space_obj().shape(self.shape)

    def paths(self) -> dict[str, str]:
        """metric -> 'analytic', 'probe' or 'model' for this run's space."""
        sp = self.space_obj()
        return {m.name: m.path_in(sp) or "unavailable" for m in self.metric_objs()}

    @property
    def builds_networks(self) -> bool:
        return any(p in ("probe", "model") for p in self.paths().values())

    @property
    def needs_images(self) -> bool:
        return any(m.needs_data for m in self.metric_objs())

    @property
    def needs_labels(self) -> bool:
        return any(m.needs_labels for m in self.metric_objs())

    def metric_params(self) -> dict[str, Any]:
        """Every declared parameter of the run's metrics: the given value, else the
        metric's default."""
        out: dict[str, Any] = {}
        for m in self.metric_objs():
            for name, default in m.params:
                out.setdefault(name, default)
        out.update(dict(self.params))
        return out

    def penalized_of(self) -> dict[str, str]:
        """base metric -> its penalized name, for every higher-is-better metric."""
        if self.penalty is None:
            return {}
        return {
            m.name: self.penalty.name_of(m.name)
            for m in self.metric_objs()
            if m.higher_is_better and not _is_rank(m)
        }

    def metric_records(self) -> list[dict[str, Any]]:
        """``run_metrics`` rows: each metric with its metadata and the path it takes here,
        plus a derived ``<metric>_<penalty>`` row per penalized metric."""
        paths = self.paths()
        out = []
        for m in self.metric_objs():
            d = m.metadata()
            d["path"] = paths[m.name]
            out.append(d)
        if self.penalty is not None:
            pen = self.penalty
            for m in self.metric_objs():
                if not m.higher_is_better or _is_rank(m):
                    continue
                d = m.metadata()
                d.update(
                    name=pen.name_of(m.name),
                    version=f"{m.version}+{pen.penalty}",
                    path="penalized",
                    description=f"{m.name} x {pen.label()}, size = size_kb / 1000",
                )
                out.append(d)
        return out

    # -- the reuse key --------------------------------------------------------------------------
    def reuse_key(self, metric: str, version: str | None = None, path: str | None = None) -> str:
        """The settings a stored value of ``metric`` depends on, as canonical JSON: two
        runs whose keys are equal computed the same number for the same architecture.

        Always: the space, the metric's name and version, whether it was analytic, the
        dataset shape and bytes per parameter. For values computed on networks: the seed
        (which also seeds each architecture's weights), the init scheme, the BatchNorm
        mode and the device setting; and for metrics that read images, the input batch
        (data name, batch size and the SHA-256 of the images recorded at start).
        """
        from nasfilter.metrics.registry import get_metric

        m = get_metric(metric)
        version = version or m.version
        if m.aggregate is not None:
            # an aggregate's value is its definition applied to its components' values:
            # equal when the definition (version) and every component's key are equal
            # (a rank aggregate's value also depends on the population: searches reuse
            # its components, never its stored values)
            return json.dumps(
                {
                    "space": self.space,
                    "metric": metric,
                    "version": version,
                    "aggregate": m.aggregate.as_dict(),
                    "components": {c: json.loads(self.reuse_key(c)) for c in m.components},
                },
                sort_keys=True,
            )
        path = path or self.paths().get(metric) or m.path_in(self.space_obj()) or "model"
        shape = self.dataset_shape()
        key: dict[str, Any] = {
            "space": self.space,
            "metric": metric,
            "version": version,
            "analytic": path == "analytic",
            "shape": shape.as_dict(),
            "bytes_per_param": float(self.bytes_per_param),
        }
        mine = {name for name, _ in m.params}
        if mine:
            values = self.metric_params()
            key["params"] = {name: values.get(name) for name in sorted(mine)}
        if path != "analytic":
            key.update(seed=self.seed, init=INIT, bn_mode=self.bn_mode, device=self.device)
            key["memory_format"] = self.memory_format or "contiguous"
            if m.needs_data or m.needs_labels:
                batch = self.batch or {}
                key.update(
                    data=self.data,
                    batch_size=self.batch_size,
                    images_sha256=batch.get("images_sha256"),
                )
            elif path == "model":
                key.update(batch_size=self.batch_size)  # data-free inputs have K rows
        return json.dumps(key, sort_keys=True)

    # -- JSON ---------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        shape = self.dataset_shape()
        d: dict[str, Any] = {
            "settings_version": SETTINGS_VERSION,
            "space": self.space,
            "seed": self.seed,
            "metrics": list(self.metrics),
            "dataset_shape": shape.as_dict(),
            "bytes_per_param": self.bytes_per_param,
            "builds_networks": self.builds_networks,
            "penalty": self.penalty.as_dict() if self.penalty else None,
        }
        if self.params:
            d["params"] = dict(self.params)
        if self.builds_networks:
            d.update(
                data=self.data,
                data_dir=self.data_dir,
                batch_size=self.batch_size,
                device=self.device,
                bn_mode=self.bn_mode,
                memory_format=self.memory_format,
                init=INIT,
            )
            if self.batch is not None:
                d["batch"] = self.batch
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> RunSettings:
        """Settings from a run's stored JSON (this version's, or nasfilter 0.x's)."""
        pen = d.get("penalty")
        shape = d.get("dataset_shape") or {}
        data = d.get("data")
        if data is not None and data == SYNTHETIC and not d.get("builds_networks", True):
            data = None
        return cls(
            space=d["space"],
            metrics=tuple(d["metrics"]),
            seed=int(d.get("seed", 0)),
            shape=str(shape.get("name", DEFAULT_SHAPE)),
            data=data,
            data_dir=d.get("data_dir"),
            batch_size=int(d.get("batch_size", 128)),
            device=d.get("device", "auto"),
            bn_mode=d.get("bn_mode", "batch"),
            bytes_per_param=float(d.get("bytes_per_param", 1.0)),
            # runs recorded before the option existed laid networks out contiguously
            memory_format=(d.get("memory_format") or "contiguous")
            if d.get("builds_networks", True)
            else None,
            penalty=PenaltySettings(pen["penalty"], float(pen["mu"]), float(pen["sigma"]))
            if pen
            else None,
            params=tuple(sorted((d.get("params") or {}).items())),
            batch=d.get("batch"),
        )


@dataclass(frozen=True)
class ArchPlan:
    """Which architectures a run scores: ``sample`` (``n`` drawn with the run's seed),
    ``all`` (the whole space, enumerated) or ``list`` (identities recorded with the run
    in ``run_archs``, in order)."""

    kind: str
    n: int

    def to_json(self) -> dict[str, Any]:
        return {"archs": self.kind, "n": self.n, "all": self.kind == "all"}

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> ArchPlan:
        if "archs" in d:
            return cls(str(d["archs"]), int(d["n"]))
        if d.get("explicit_archs"):  # nasfilter 0.x: a search's run, list not recorded
            return cls("unrecorded", int(d.get("n", 0)))
        return cls("all" if d.get("all") else "sample", int(d["n"]))
