"""The pure per-architecture scorer: ``Scorer(settings).score(arch) -> ArchResult``.

A scorer is built once per process (or actor) from typed ``RunSettings``: it resolves
the space and metrics, and, when any metric needs a network, imports torch, picks the
device and loads the input batch and labels once. It never touches the store.

For each architecture it computes, in this order:

1. analytic metrics, from the identity alone (``metric.from_arch``);
2. the network, built once with ``space.build(arch, shape)`` under the architecture's
   seed (``arch_seed(run seed, arch)``) and kept pristine;
3. one shared no-grad forward pass (``ModelProbe``) for the probe metrics (relu_count,
   naswot, measured flops), with the run's BatchNorm mode: on the run's batch when a
   probe metric reads images, else on zeros of the run's shape (counts do not depend on
   values);
4. each model-path metric with a ``MetricInput`` (a fresh copy of the network when it
   declares ``fresh_network`` or ``float64``; see ``nasfilter.metrics.inputs``);
5. formula aggregates (``nasfilter.metrics.aggregate``), from the values of their
   components (which the run's settings always include); rank aggregates depend on the
   population and are computed over a whole run when it completes, not here;
6. penalized values ``<metric>_<penalty>`` = value x p(size_kb / 1000).

Times: ``seconds`` of a row is the metric's own computation; building the network and
the shared pass are measured once per architecture (``build_seconds``, ``pass_seconds``)
and ``standalone_seconds(metric)`` adds what a metric used of them.

Failures are values with a status: an exception in one metric becomes ``error: ...`` for
that metric; a network that cannot be built gives ``error: ...`` for every metric that
needs it; running out of device memory gives ``oom`` once the scorer has scored an
architecture successfully, and ends the run with a one-line DeviceError before that (the
settings, not one architecture, are then the problem).

``map(items)`` scores a stream of (position, arch) pairs; on an accelerator it builds the
next network in a background thread while the current one is scored.
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from nasfilter.errors import DataError, DeviceError
from nasfilter.metrics.registry import Metric, Score, ScoreContext
from nasfilter.scoring.settings import RunSettings, arch_seed


@dataclass
class ArchResult:
    """Every value of one architecture: rows of (metric, value, status, seconds)."""

    position: int
    arch: str
    rows: list[tuple[str, float, str, float]] = field(default_factory=list)
    params: int | None = None  # reference figures for the architectures table
    flops: int | None = None
    build_seconds: float | None = None
    pass_seconds: float | None = None
    paths: dict[str, str] = field(default_factory=dict)
    #: an aggregate's components, by aggregate
    parts: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def value(self, metric: str) -> tuple[float, str]:
        for name, v, st, _ in self.rows:
            if name == metric:
                return v, st
        raise KeyError(metric)

    def standalone_seconds(self, metric: str) -> float:
        """The time this metric alone would have taken for this architecture: its own
        time, plus building the network and the shared pass when it used them."""
        paths = {self.paths.get(metric, "analytic")}
        if metric in self.parts:  # an aggregate's own time includes its components'
            paths = {self.paths.get(c, "analytic") for c in self.parts[metric]}
        own = next((s for name, _, _, s in self.rows if name == metric), None)
        if own is None:  # a rank aggregate (not computed per architecture): its parts
            if metric not in self.parts:
                raise KeyError(metric)
            own = sum(s for name, _, _, s in self.rows if name in self.parts[metric])
        if paths & {"probe", "model"}:
            own += self.build_seconds or 0.0
        if "probe" in paths:
            own += self.pass_seconds or 0.0
        return own


@dataclass
class ChunkResult:
    """Every value of many architectures of an analytic-only run, by column: per metric
    (values, statuses, seconds per architecture) in the order of ``archs``."""

    positions: list[int]
    archs: list[str]
    columns: dict[str, tuple[Any, list[str], float]] = field(default_factory=dict)
    params: Any = None  # reference figures (float arrays, NaN = none) for architectures
    flops: Any = None

    def __len__(self) -> int:
        return len(self.archs)


def _statuses(values: Any) -> list[str]:
    """The status of each value of a float array: ok, nan, inf, -inf."""
    import numpy as np

    v = np.asarray(values, dtype=np.float64)
    out = np.full(v.shape, "ok", dtype=object)
    out[np.isnan(v)] = "nan"
    out[np.isposinf(v)] = "inf"
    out[np.isneginf(v)] = "-inf"
    return list(out)


def _error(e: BaseException) -> Score:
    return Score(math.nan, f"error: {type(e).__name__}: {e}"[:200])


class Scorer:
    """Scores architectures with one run's settings (see module doc)."""

    def __init__(self, settings: RunSettings, verify_batch: bool = True) -> None:
        self.settings = settings
        self.space = settings.space_obj()
        self.shape = settings.dataset_shape()
        self.metrics: list[Metric] = settings.metric_objs()
        self.paths = settings.paths()
        self.analytic = [m for m in self.metrics if self.paths[m.name] == "analytic"]
        self.probe_metrics = [m for m in self.metrics if self.paths[m.name] == "probe"]
        self.model_metrics = [m for m in self.metrics if self.paths[m.name] == "model"]
        self.formulas = [m for m in self.metrics if self.paths[m.name] == "aggregate"]
        self.parts = {m.name: m.components for m in self.metrics if m.aggregate is not None}
        self.penalized = settings.penalized_of()
        self.row_paths = dict(self.paths)
        for name in self.penalized.values():
            self.row_paths[name] = "penalized"
        self.ctx = ScoreContext(
            dataset=self.shape,
            bytes_per_param=settings.bytes_per_param,
            settings={**settings.to_json(), **settings.metric_params()},
        )
        self.ref_costs = {"params", "flops"} <= self.space.figures
        self.builds = bool(self.probe_metrics or self.model_metrics)
        self.succeeded = 0
        self._pool: ThreadPoolExecutor | None = None
        self.device: Any = None
        self.prefetch = False
        #: lend the pristine network to fresh_network metrics (see nasfilter.metrics.inputs)
        self.lend = True
        self.inputs: Any = None
        self.targets: Any = None
        if self.builds:
            self._setup_torch(verify_batch)

    # -- setup ------------------------------------------------------------------------------
    def _setup_torch(self, verify_batch: bool) -> None:
        import torch

        from nasfilter.devices import resolve_device

        self.torch = torch
        self.device = resolve_device(self.settings.device)
        self.prefetch = self.device.type != "cpu"  # see map()
        self.memory_format = (
            torch.channels_last
            if self.settings.memory_format == "channels_last"
            else torch.contiguous_format
        )
        if self.device.type == "cpu":
            from nasfilter.metrics.probe import retain_freed_memory

            retain_freed_memory()  # no page-fault churn between forward passes
        s = self.settings
        if s.data is not None:
            info = load_inputs(s)
            recorded = (s.batch or {}).get("images_sha256")
            if verify_batch and recorded is not None:
                from nasfilter.data import describe

                if describe(info)["images_sha256"] != recorded:
                    raise DataError(
                        f"The {s.data} batch read now differs from the one this run "
                        "started with (the data files changed?).",
                        "Restore the original files, or start a new run.",
                    )
            self.inputs = self._laid_out(torch.from_numpy(info.images).to(self.device))
            if any(m.needs_labels for m in self.metrics):
                labels = torch.from_numpy(info.labels).long()
                if int(labels.max()) >= self.shape.num_classes:  # pragma: no cover
                    raise DataError("labels exceed the number of classes of the shape")
                self.targets = labels.to(self.device)
        self.probe_options: dict[str, Any] = {}
        for m in self.probe_metrics:
            self.probe_options.update(dict(m.probe_options))
        self.probe_reads_images = any(m.needs_data for m in self.probe_metrics)
        if self.probe_metrics and not self.probe_reads_images:
            self.zeros = torch.zeros(self.shape.input_shape(1), device=self.device)

    def _laid_out(self, x: Any) -> Any:
        """A (K, C, H, W) batch in the run's memory format."""
        return x.contiguous(memory_format=self.memory_format) if x.dim() == 4 else x

    # -- one architecture ---------------------------------------------------------------------
    def build(self, arch: str) -> tuple[Any, float]:
        """The pristine network of ``arch`` on the device, and the seconds it took."""
        torch = self.torch
        t = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(arch_seed(self.settings.seed, arch))
            model = self.space.build(arch, self.shape)
        model = model.to(self.device)
        model = model.to(memory_format=self.memory_format)  # type: ignore[call-overload]
        return model, time.perf_counter() - t

    def score(self, arch: str, position: int = 0) -> ArchResult:
        """Every metric of ``arch`` (see module doc)."""
        built = self._safe_build(arch) if self.builds else None
        return self._score(position, arch, built)

    def map(self, items: Iterable[tuple[int, str]]) -> Iterator[ArchResult]:
        """Score (position, arch) pairs in order. On an accelerator the next network is
        built in a background thread while the current one is scored; on the CPU they
        are built in turn: a build thread there competes with torch's threads for the same
        cores (``bench/bench_scorer_paths.py``, 2 cores: ensemble_free at K = 16, 636
        ms/arch with the build thread against 464 without; NASWOT at K = 128, 774 against
        637)."""
        if not self.builds or not self.prefetch:
            for pos, arch in items:
                yield self.score(arch, pos)
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nasfilter-build")
        pending: tuple[int, str, Future[Any]] | None = None
        for pos, arch in items:
            fut = self._pool.submit(self._safe_build, arch)
            if pending is not None:
                yield self._score(pending[0], pending[1], pending[2].result())
            pending = (pos, arch, fut)
        if pending is not None:
            yield self._score(pending[0], pending[1], pending[2].result())

    def score_chunk(self, items: list[tuple[int, str]]) -> ChunkResult:
        """Many architectures of an analytic-only run at once (no network is built):
        metrics with a bulk form compute a whole column in one call (their seconds are
        the call's time divided evenly); the others, and any column whose bulk call
        fails, go architecture by architecture."""
        import numpy as np

        if self.builds:
            raise RuntimeError("score_chunk serves analytic-only runs")
        positions = [p for p, _ in items]
        archs = [a for _, a in items]
        n = len(archs)
        res = ChunkResult(positions, archs)
        ctx = self.ctx
        for m in self.analytic:
            col = None
            if m.from_arch_many is not None and n:
                t = time.perf_counter()
                try:
                    vals = np.asarray(m.from_arch_many(self.space, archs, ctx), dtype=np.float64)
                    col = (vals, _statuses(vals), (time.perf_counter() - t) / n)
                except Exception:  # noqa: BLE001 - redone one by one, errors as statuses
                    col = None
            if col is None:
                vals = np.empty(n, dtype=np.float64)
                sts: list[str] = []
                t = time.perf_counter()
                for i, a in enumerate(archs):
                    try:
                        sc = Score.of(m.from_arch(self.space, a, ctx))  # type: ignore[misc]
                    except Exception as e:  # noqa: BLE001 - stored as a status, counted
                        sc = _error(e)
                    vals[i] = sc.value
                    sts.append(sc.status)
                col = (vals, sts, (time.perf_counter() - t) / max(n, 1))
            res.columns[m.name] = col
        for m in self.formulas:
            from nasfilter.metrics.aggregate import formula_column

            assert m.aggregate is not None
            t = time.perf_counter()
            vals, sts = formula_column(m.aggregate, {c: res.columns[c][:2] for c in m.components})
            own = (time.perf_counter() - t) / max(n, 1)
            own += sum(res.columns[c][2] for c in m.components)
            res.columns[m.name] = (vals, sts, own)
        if self.ref_costs and n:
            try:
                ref = self.space.costs_many(archs)
                res.params, res.flops = ref["params"], ref["flops"]
            except Exception:  # noqa: BLE001 - the analytic columns say what went wrong
                pass
        if self.penalized:
            from nasfilter.penalties import penalized

            pen = self.settings.penalty
            assert pen is not None
            size_mb = res.columns["size_kb"][0] / 1000.0
            for base, name in self.penalized.items():
                t = time.perf_counter()
                vals, sts, _ = res.columns[base]
                p = np.asarray(penalized(vals, size_mb, pen.penalty, pen.mu, pen.sigma))
                res.columns[name] = (p, list(sts), (time.perf_counter() - t) / max(n, 1))
        return res

    def close(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None

    def __enter__(self) -> Scorer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _safe_build(self, arch: str) -> tuple[Any, float] | BaseException:
        try:
            return self.build(arch)
        except Exception as e:  # noqa: BLE001 - reported per architecture
            return e

    def _score(
        self, position: int, arch: str, built: tuple[Any, float] | BaseException | None
    ) -> ArchResult:
        res = ArchResult(position, arch, paths=self.row_paths, parts=self.parts)
        ctx = self.ctx
        for m in self.analytic:
            t = time.perf_counter()
            try:
                sc = Score.of(m.from_arch(self.space, arch, ctx))  # type: ignore[misc]
            except Exception as e:  # noqa: BLE001 - stored as a status, counted
                sc = _error(e)
            res.rows.append((m.name, sc.value, sc.status, time.perf_counter() - t))
        if self.ref_costs:
            try:
                c = self.space.costs(arch)
                res.params, res.flops = c.params, c.flops
            except Exception:  # noqa: BLE001 - the analytic rows say what went wrong
                pass
        if built is not None:
            if isinstance(built, BaseException):
                for m in self.probe_metrics + self.model_metrics:
                    sc = _error(built)
                    res.rows.append((m.name, sc.value, sc.status, 0.0))
            else:
                model, res.build_seconds = built
                self._score_model(res, arch, model)
                del model
        if self.formulas:
            self._aggregate(res)
        if self.penalized:
            self._penalize(res)
        if all(st == "ok" for _, _, st, _ in res.rows):
            self.succeeded += 1
        return res

    def _score_model(self, res: ArchResult, arch: str, model: Any) -> None:
        from nasfilter.metrics.inputs import ArchState, compute_score
        from nasfilter.metrics.probe import ModelProbe

        holder: dict[str, Any] = {}

        def probe() -> Any:
            if "p" not in holder:
                x = self.inputs if self.probe_reads_images or not self.probe_metrics else None
                if x is None:
                    x = getattr(self, "zeros", None)
                    if x is None:
                        x = self.torch.zeros(self.shape.input_shape(1), device=self.device)
                    mode = "eval"  # counting on zeros: values (and BN mode) do not matter
                else:
                    mode = self.settings.bn_mode
                # the state's network: the pristine one, taken back if it was lent
                net = state.pristine
                holder["p"] = ModelProbe(net, x, bn_mode=mode, **self.probe_options).run()
            return holder["p"]

        state = ArchState(
            model,
            shape=self.shape,
            batch_size=self.settings.batch_size,
            device=self.device,
            seed=arch_seed(self.settings.seed, arch),
            ctx=self.ctx,
            bn_mode=self.settings.bn_mode,
            memory_format=self.memory_format,
            inputs=self.inputs,
            targets=self.targets,
            probe=probe,
            space=self.space,
            arch=arch,
            lend=self.lend,  # a fresh_network metric may get the pristine network, lent
            rebuild=lambda: self.build(arch)[0],
        )
        if self.probe_metrics:
            t = time.perf_counter()
            try:
                probe()
            except RuntimeError as e:
                oom = self._out_of_memory(arch, e)
                if oom is None:
                    raise
                raise oom from None
            res.pass_seconds = time.perf_counter() - t
        for m in self.probe_metrics + self.model_metrics:
            t = time.perf_counter()
            try:
                sc = compute_score(m, state)
            except RuntimeError as e:
                oom = self._out_of_memory(arch, e)
                if oom is None:
                    sc = _error(e)
                elif self.succeeded == 0:
                    raise oom from None
                else:
                    sc = Score(math.nan, "oom")
                    self._free_device_memory()
            except Exception as e:  # noqa: BLE001 - stored as a status, counted
                sc = _error(e)
            res.rows.append((m.name, sc.value, sc.status, time.perf_counter() - t))
        state.memo.clear()

    def _aggregate(self, res: ArchResult) -> None:
        """Formula aggregates from the components' rows; an aggregate's seconds are its
        components' own seconds plus the (tiny) time of the formula."""
        from nasfilter.metrics.aggregate import formula_value

        rows = {name: (v, st, sec) for name, v, st, sec in res.rows}
        for m in self.formulas:
            assert m.aggregate is not None
            t = time.perf_counter()
            try:
                v, st = formula_value(m.aggregate, {c: rows[c][:2] for c in m.components})
            except Exception as e:  # noqa: BLE001 - stored as a status, counted
                v, st = _error(e).value, _error(e).status
            sec = time.perf_counter() - t + sum(rows[c][2] for c in m.components)
            res.rows.append((m.name, v, st, sec))

    def _penalize(self, res: ArchResult) -> None:
        """Penalized rows: value x p(size_kb / 1000); the base metric's status carries
        over; the time is the (tiny) time of the multiplication."""
        from nasfilter.penalties import penalized

        pen = self.settings.penalty
        assert pen is not None
        values = {name: (v, st) for name, v, st, _ in res.rows}
        size_mb = values["size_kb"][0] / 1000.0
        for base, name in self.penalized.items():
            t = time.perf_counter()
            v, st = values[base]
            p = float(penalized(v, size_mb, pen.penalty, pen.mu, pen.sigma))
            res.rows.append((name, p, st, time.perf_counter() - t))

    # -- memory ---------------------------------------------------------------------------------
    def _out_of_memory(self, arch: str, e: BaseException) -> DeviceError | None:
        """The one-line error for running out of device memory, or None if ``e`` is not
        that (CUDA raises OutOfMemoryError; the CPU and MPS allocators a RuntimeError)."""
        text = str(e).lower()
        if not isinstance(e, self.torch.OutOfMemoryError) and not (
            "out of memory" in text or "can't allocate memory" in text
        ):
            return None
        k = self.settings.batch_size
        return DeviceError(
            f"Out of {self.device.type} memory scoring {arch} with batch size {k}; "
            "the architectures scored so far are stored.",
            f"Start a new run with a smaller --batch-size (e.g. -K {max(2, k // 2)})"
            + (", or --device cpu." if self.device.type != "cpu" else "."),
        )

    def _free_device_memory(self) -> None:
        if self.device is not None and self.device.type == "cuda":
            self.torch.cuda.empty_cache()


_BATCH_CACHE: dict[tuple[Any, ...], tuple[Any, Any]] = {}


def _fingerprint(source: str) -> Any:
    """What changes when the files a batch was read from change: (name, mtime, size) of
    the file, or of every file under the folder."""
    import os

    if source == "synthetic" or not os.path.exists(source):
        return source
    if os.path.isfile(source):
        st = os.stat(source)
        return (source, st.st_mtime_ns, st.st_size)
    out = []
    for root, _, files in os.walk(source):
        for f in sorted(files):
            st = os.stat(os.path.join(root, f))
            out.append((os.path.join(root, f), st.st_mtime_ns, st.st_size))
    return tuple(out)


def load_inputs(settings: RunSettings, download: bool = False) -> Any:
    """The run's input batch (numpy, via ``nasfilter.data``), drawn with the run's seed.

    The last batch read is kept (one entry) while the files it came from are unchanged,
    so that starting a run and scoring it in the same process reads them once.
    """
    from nasfilter.data import load_batch

    assert settings.data is not None
    shape = settings.dataset_shape()
    key = (settings.data, settings.data_dir, settings.batch_size, settings.seed, shape)
    hit = _BATCH_CACHE.get(key)
    if hit is not None and _fingerprint(hit[0].source) == hit[1]:
        return hit[0]
    info = load_batch(
        settings.data,
        settings.batch_size,
        settings.seed,
        data_dir=settings.data_dir,
        download=download,
        shape=shape,
    )
    _BATCH_CACHE.clear()
    _BATCH_CACHE[key] = (info, _fingerprint(info.source))
    return info
