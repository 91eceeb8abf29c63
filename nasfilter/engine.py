"""Score runs: sample architectures, compute metrics, stream rows into the store.

One code path serves new runs and ``--resume``: the run's settings are read back from
the store, the same seeded sample is regenerated, and architectures that already have
every metric are skipped.

Metrics are computed through the registry's interface only: analytic metrics from the
identity; when a run needs networks, one network is built per architecture (the next
one is built in a background thread while the current one is scored) and one forward
pass, observed by a ``ModelProbe``, serves every model-capable metric.
"""

from __future__ import annotations

import hashlib
import math
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from nasfilter.errors import DeviceError, NasfilterError, UsageError
from nasfilter.interrupts import critical, interruptible
from nasfilter.metrics import Metric, ScoreContext, get_metric, parse_metric_list
from nasfilter.metrics.registry import Score
from nasfilter.spaces import get_dataset_shape, get_space
from nasfilter.store import BatchWriter, Store

ALWAYS = ("params", "size_kb")  # recorded by every run: `top` and `export` need them
DATA_CHOICES = ("cifar10", "cifar100", "imagenet16-120", "synthetic")


class RunInterrupted(NasfilterError):
    exit_code = 130


@dataclass
class ScoreRequest:
    space: str
    n: int | None = None
    all: bool = False
    metrics: str = "relu_count,params,flops,size_kb"
    seed: int = 0
    data: str | None = None
    data_dir: str | None = None
    download: bool = False
    batch_size: int = 128
    device: str = "auto"
    bn_mode: str = "batch"
    bytes_per_param: float = 1.0
    penalty: str | None = None
    explicit: bool = False  # candidates come from a caller (a search), not a seeded sample
    mu: float = 0.2
    sigma: float = 0.4
    batch_rows: int = 20000
    flush_seconds: float = 5.0


@dataclass
class RunSummary:
    run_id: int
    space: str
    archs_total: int
    archs_scored: int
    archs_skipped: int
    rows: int
    seconds: float
    status: str
    statuses: dict[str, dict[str, int]] = field(default_factory=dict)


def arch_seed(run_seed: int, arch: str) -> int:
    """The weight-initialization seed of one architecture in a run."""
    h = hashlib.blake2b(f"{run_seed}\x00{arch}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & 0x7FFF_FFFF_FFFF_FFFF


def plan(req: ScoreRequest) -> tuple[dict[str, Any], list[Metric]]:
    """Validate a request and turn it into the settings stored with the run."""
    space = get_space(req.space)
    metrics = parse_metric_list(req.metrics)
    for name in ALWAYS:
        m = get_metric(name)
        if m not in metrics:
            metrics.append(m)
    if req.all and req.n is not None:
        raise UsageError("Pass either --n N or --all, not both.")
    if not req.all and req.n is None:
        raise UsageError("Say how many architectures to score: --n N or --all.")
    n = space.size if req.all else int(req.n)  # type: ignore[arg-type]
    space.check_sample_size(n)
    if req.bytes_per_param <= 0:
        raise UsageError(f"--bytes-per-param must be positive (got {req.bytes_per_param}).")
    needs_model = any(m.needs_model for m in metrics)
    needs_data = any(m.needs_data for m in metrics)
    if req.data is not None and req.data not in DATA_CHOICES:
        raise UsageError(
            f"Unknown --data {req.data!r}.", f"Choose one of: {', '.join(DATA_CHOICES)}."
        )
    if needs_data and req.data is None:
        names = ", ".join(m.name for m in metrics if m.needs_data)
        raise UsageError(
            f"{names} needs input images.",
            "Pass --data cifar10 --data-dir DIR (or cifar100, imagenet16-120), "
            "or --data synthetic for seeded Gaussian inputs.",
        )
    if req.batch_size < 2:
        raise UsageError(f"--batch-size must be at least 2 (got {req.batch_size}).")
    if req.bn_mode not in ("batch", "eval"):
        raise UsageError(f"--bn-mode must be 'batch' or 'eval' (got {req.bn_mode!r}).")
    penalty = None
    if req.penalty is not None:
        from nasfilter.penalties import get_penalty, penalty_settings, validate_params

        validate_params(req.mu, req.sigma)
        penalty = penalty_settings(get_penalty(req.penalty).name, req.mu, req.sigma)
    shape_name = req.data if req.data not in (None, "synthetic") else "cifar10"
    shape = get_dataset_shape(shape_name)  # type: ignore[arg-type]
    settings: dict[str, Any] = {
        "space": space.name,
        "n": n,
        "all": req.all,
        "seed": req.seed,
        "metrics": [m.name for m in metrics],
        "dataset_shape": {
            "name": shape.name,
            "num_classes": shape.num_classes,
            "resolution": shape.resolution,
        },
        "bytes_per_param": req.bytes_per_param,
        "builds_networks": needs_model,
        "penalty": penalty,
    }
    if req.explicit:
        settings["explicit_archs"] = True
    if needs_model:
        settings.update(
            data=req.data or "synthetic",
            data_dir=req.data_dir,
            batch_size=req.batch_size,
            device=req.device,
            bn_mode=req.bn_mode,
            init="torch default init, seeded per architecture by blake2b(seed, arch)",
        )
    return settings, metrics


def penalized_name(metric: str, penalty: dict[str, Any]) -> str:
    """Name of the penalized form of a metric, e.g. ``relu_count_gdf``."""
    return f"{metric}_{penalty['penalty']}"


def metric_records(
    metrics: list[Metric], builds_networks: bool, penalty: dict[str, Any] | None = None
) -> list[dict[str, Any]]:
    """run_metrics rows: each metric with the path it takes, plus, with a size penalty,
    a derived ``<metric>_<penalty>`` row for each higher-is-better metric."""
    out = []
    for m in metrics:
        d = m.metadata()
        d["path"] = "model" if (builds_networks and m.model_capable) else "analytic"
        out.append(d)
    if penalty:
        for m in metrics:
            if not m.higher_is_better:
                continue
            d = m.metadata()
            d.update(
                name=penalized_name(m.name, penalty),
                version=f"{m.version}+{penalty['penalty']}",
                path="penalized",
                description=(
                    f"{m.name} x {penalty['penalty']}(size; mu={penalty['mu']:g} MB, "
                    f"sigma={penalty['sigma']:g} MB), size = size_kb / 1000"
                ),
            )
            out.append(d)
    return out


def load_inputs(settings: dict[str, Any], download: bool = False) -> Any:
    """The run's input batch (numpy, via ``nasfilter.data``), drawn with the run's seed."""
    from nasfilter.data import load_batch

    return load_batch(
        settings["data"],
        settings["batch_size"],
        settings["seed"],
        data_dir=settings.get("data_dir"),
        download=download,
    )


def start(store: Store, req: ScoreRequest, command: str | None = None) -> int:
    """Create a score run from a request. Data is loaded (and checked) before the run
    exists, and its description (source, indices, hash) is recorded with the run."""
    settings, metrics = plan(req)
    if settings["builds_networks"]:
        from nasfilter.data import describe

        settings["batch"] = describe(load_inputs(settings, download=req.download))
    return store.create_run(
        "score",
        settings["space"],
        settings,
        seed=req.seed,
        n_requested=settings["n"],
        command=command,
        metrics=metric_records(metrics, settings["builds_networks"], settings["penalty"]),
    )


def _iter_archs(settings: dict[str, Any]) -> Iterator[tuple[int, str]]:
    space = get_space(settings["space"])
    if settings["all"]:
        for i in range(space.size):
            yield i, space.unrank(i)
    else:
        for pos, idx in enumerate(space.sample_indices(settings["n"], settings["seed"])):
            yield pos, space.unrank(int(idx))


def _penalize(
    results: dict[str, tuple[Score, float]],
    penalized_of: dict[str, str],
    penalty: dict[str, Any],
) -> dict[str, tuple[Score, float]]:
    """Penalized rows: value x p(size_kb / 1000); the base metric's status carries over."""
    from nasfilter.penalties import penalized

    size_mb = results["size_kb"][0].value / 1000.0
    out = {}
    for base, name in penalized_of.items():
        sc, secs = results[base]
        v = float(penalized(sc.value, size_mb, penalty["penalty"], penalty["mu"], penalty["sigma"]))
        out[name] = (Score(v, sc.status), secs)
    return out


def execute(
    store: Store,
    run_id: int,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int, int], None] | None = None,
    batch_rows: int = 20000,
    flush_seconds: float = 5.0,
    archs: list[str] | None = None,
) -> RunSummary:
    """Score every architecture of run ``run_id`` not yet stored; mark the run completed.

    ``archs``: score these identities (in this order) instead of the run's own seeded
    sample; used by searches, whose candidates come from their own algorithm.
    """
    run = store.get_run(run_id)
    settings = run["settings"]
    if run["kind"] != "score":
        raise UsageError(f"Run {run_id} is a {run['kind']} run, not a score run.")
    space = get_space(settings["space"])
    all_recs = store.run_metrics(run_id)
    recs = [r for r in all_recs if r["path"] != "penalized"]
    metrics = [get_metric(r["metric"]) for r in recs]
    model_metrics = [m for m, r in zip(metrics, recs, strict=True) if r["path"] == "model"]
    arch_metrics = [m for m, r in zip(metrics, recs, strict=True) if r["path"] == "analytic"]
    penalty = settings.get("penalty")
    penalized_of = (
        {m.name: penalized_name(m.name, penalty) for m in metrics if m.higher_is_better}
        if penalty
        else {}
    )
    shape = get_dataset_shape(settings["dataset_shape"]["name"])
    ctx = ScoreContext(
        dataset=shape, bytes_per_param=settings["bytes_per_param"], settings=settings
    )
    done = store.done_archs(run_id, len(all_recs))
    if archs is None and settings.get("explicit_archs"):
        raise UsageError(
            f"Run {run_id} scores candidates chosen by a search, not a seeded sample: "
            "it cannot be resumed on its own.",
            "Run the search again; it reuses every score already stored.",
        )
    total = settings["n"] if archs is None else len(archs)
    if on_total:
        on_total(total, len(done))
    writer = BatchWriter(store, run_id, batch_rows=batch_rows)
    statuses: dict[str, Counter[str]] = {r["metric"]: Counter() for r in all_recs}
    t0 = time.perf_counter()
    last_flush = t0
    scored = reported = 0
    last_report = t0
    try:  # loads the batch and picks the device: may fail before anything is scored
        model_runner = _ModelRunner(space, settings, model_metrics, ctx) if model_metrics else None
    except BaseException:
        if run["status"] == "running":  # a new run that never started; a resumed one keeps
            store.set_run_status(run_id, "failed")  # its status ("interrupted")
        raise
    store.set_run_status(run_id, "running", finished=False)
    source = _iter_archs(settings) if archs is None else enumerate(archs)
    todo = ((pos, arch) for pos, arch in source if arch not in done)
    status = "interrupted"
    with interruptible():
        try:
            stream = model_runner.stream(todo) if model_runner else ((p, a, {}) for p, a in todo)
            for pos, arch, model_scores in stream:
                results = dict(model_scores)
                for m in arch_metrics:
                    t = time.perf_counter()
                    try:
                        sc = Score.of(m.from_arch(space, arch, ctx))  # type: ignore[misc]
                    except Exception as e:  # noqa: BLE001 - stored as a status, counted
                        sc = Score(math.nan, f"error: {type(e).__name__}: {e}"[:200])
                    results[m.name] = (sc, time.perf_counter() - t)
                if penalty:
                    results.update(_penalize(results, penalized_of, penalty))
                ref = space.costs(arch)
                with critical():  # an architecture's rows are buffered together
                    writer.add_architecture(space.name, arch, ref.params, ref.flops)
                    for name, (sc, secs) in results.items():
                        writer.add_score(arch, name, pos, sc.value, sc.status, secs)
                        statuses[name][sc.status] += 1
                    scored += 1
                now = time.perf_counter()
                if on_progress and (now - last_report > 0.1 or model_runner):
                    on_progress(scored - reported)
                    reported, last_report = scored, now
                if writer.pending >= batch_rows or now - last_flush > flush_seconds:
                    writer.flush()
                    last_flush = now
            writer.flush()
            if on_progress and scored > reported:
                on_progress(scored - reported)
            status = "completed"
        except KeyboardInterrupt:
            with critical():
                writer.flush()  # every pending row belongs to a fully scored architecture
                store.set_run_status(run_id, "interrupted")
            raise RunInterrupted(
                f"Interrupted: run {run_id} keeps {len(done) + scored:,} of {total:,} "
                "architectures.",
                f"Finish it with `nasfilter score --resume {run_id}`.",
            ) from None
        except BaseException:
            status = "failed"
            with critical():
                try:
                    writer.flush()
                except Exception:  # noqa: BLE001 - the original error matters more
                    pass
            raise
        finally:
            if model_runner:
                model_runner.close()
            if status != "interrupted":
                with critical():
                    store.set_run_status(run_id, status)
    return RunSummary(
        run_id=run_id,
        space=space.name,
        archs_total=total,
        archs_scored=scored,
        archs_skipped=len(done),
        rows=writer.rows_written,
        seconds=time.perf_counter() - t0,
        status=status,
        statuses={k: dict(v) for k, v in statuses.items()},
    )


class _ModelRunner:
    """Builds networks (one ahead, in a thread) and scores them with one shared pass."""

    def __init__(
        self, space: Any, settings: dict[str, Any], metrics: list[Metric], ctx: ScoreContext
    ) -> None:
        import torch

        from nasfilter.devices import resolve_device

        self.torch = torch
        self.space = space
        self.settings = settings
        self.metrics = metrics
        self.ctx = ctx
        self.device = resolve_device(settings.get("device", "auto"))
        if self.device.type == "cpu":
            from nasfilter.metrics.probe import retain_freed_memory

            retain_freed_memory()  # no page-fault churn between forward passes
        self.inputs = self._inputs()
        opts: dict[str, Any] = {}
        for m in metrics:
            opts.update(dict(m.probe_options))
        self.probe_options = opts
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="nasfilter-build")

    def _inputs(self) -> Any:
        from nasfilter.data import describe
        from nasfilter.errors import DataError

        info = load_inputs(self.settings)
        recorded = self.settings.get("batch", {}).get("images_sha256")
        if recorded is not None and describe(info)["images_sha256"] != recorded:
            raise DataError(
                f"The {self.settings['data']} batch read now differs from the one this run "
                "started with (the data files changed?).",
                "Restore the original files, or start a new run.",
            )
        return self.torch.from_numpy(info.images).to(self.device)

    def _build(self, arch: str) -> tuple[Any, float]:
        t = time.perf_counter()
        with self.torch.random.fork_rng(devices=[]):
            self.torch.manual_seed(arch_seed(self.settings["seed"], arch))
            model = self.space.build(arch, self.ctx.dataset.num_classes)
        model = model.to(self.device)
        return model, time.perf_counter() - t

    def score(self, arch: str, model: Any, build_s: float) -> dict[str, tuple[Score, float]]:
        from nasfilter.metrics.probe import ModelProbe

        t = time.perf_counter()
        probe = ModelProbe(
            model, self.inputs, bn_mode=self.settings.get("bn_mode", "batch"), **self.probe_options
        )
        try:
            probe.run()
        except RuntimeError as e:
            oom = self._out_of_memory(arch, e)
            if oom is None:
                raise
            raise oom from None
        shared = build_s + (time.perf_counter() - t)
        out = {}
        for m in self.metrics:
            t1 = time.perf_counter()
            try:
                if m.from_probe is not None:
                    sc = Score.of(m.from_probe(probe, self.ctx))
                else:
                    from nasfilter.metrics.inputs import ArchState

                    state = ArchState(
                        model,
                        shape=self.ctx.dataset,
                        batch_size=1,
                        device=self.device,
                        seed=0,
                        ctx=self.ctx,
                    )
                    sc = Score.of(m.from_model(state.input_for(m)))  # type: ignore[misc]
            except RuntimeError as e:  # out of memory ends the run; others are a status
                oom = self._out_of_memory(arch, e)
                if oom is not None:
                    raise oom from None
                sc = Score(math.nan, f"error: {type(e).__name__}: {e}"[:200])
            except Exception as e:  # noqa: BLE001 - stored as a status, counted
                sc = Score(math.nan, f"error: {type(e).__name__}: {e}"[:200])
            out[m.name] = (sc, shared + time.perf_counter() - t1)
        return out

    def _out_of_memory(self, arch: str, e: BaseException) -> DeviceError | None:
        """The one-line error for running out of device memory, or None if ``e`` is not
        that (CUDA raises OutOfMemoryError; the CPU and MPS allocators a RuntimeError)."""
        text = str(e).lower()
        if not isinstance(e, self.torch.OutOfMemoryError) and not (
            "out of memory" in text or "can't allocate memory" in text
        ):
            return None
        k = self.settings["batch_size"]
        return DeviceError(
            f"Out of {self.device.type} memory scoring {arch} with batch size {k}; "
            "the architectures scored so far are stored.",
            f"Start a new run with a smaller --batch-size (e.g. -K {max(2, k // 2)})"
            + (", or --device cpu." if self.device.type != "cpu" else "."),
        )

    def stream(
        self, todo: Iterator[tuple[int, str]]
    ) -> Iterator[tuple[int, str, dict[str, tuple[Score, float]]]]:
        pending: tuple[int, str, Future[tuple[Any, float]]] | None = None
        for pos, arch in todo:
            fut = self.pool.submit(self._build, arch)
            if pending is not None:
                ppos, parch, pfut = pending
                model, bs = pfut.result()
                yield ppos, parch, self.score(parch, model, bs)
            pending = (pos, arch, fut)
        if pending is not None:
            ppos, parch, pfut = pending
            model, bs = pfut.result()
            yield ppos, parch, self.score(parch, model, bs)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)
