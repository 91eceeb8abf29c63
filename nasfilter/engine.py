"""Score runs: plan the architectures, map a ``Scorer`` over them, write batches.

One code path serves new runs and ``--resume``: the run's typed settings are read back
from the store (``RunSettings.from_json``), the same architectures are planned again (the
seeded sample, the whole space, or the recorded list), and architectures that already
have every metric are skipped.

The store is touched only to create the run, to commit a batch (every ``batch_rows``
rows or ``flush_seconds`` seconds, between architectures) and to mark the end; between
batches the connection is released, so other processes can read the database while a
run goes on.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from nasfilter.errors import RunInterrupted, UsageError
from nasfilter.interrupts import critical, interruptible
from nasfilter.scoring.backends import Backend, BackendSpec
from nasfilter.scoring.settings import (
    ALWAYS,
    DEFAULT_MEMORY_FORMAT,
    ArchPlan,
    RunSettings,
    arch_seed,
    penalized_name,
)
from nasfilter.store import BatchWriter, Store

__all__ = [
    "ALWAYS",
    "ArchPlan",
    "RunInterrupted",
    "RunSettings",
    "RunSummary",
    "ScoreRequest",
    "arch_seed",
    "execute",
    "penalized_name",
    "plan",
    "read_arch_list",
    "start",
]


#: Commit a batch every so many rows or seconds (``execute``'s defaults) ...
BATCH_ROWS = 1_000_000
FLUSH_SECONDS = 5.0
#: ... and for analytic-only runs scored in this process: the whole of NAS-Bench-101
#: (423,624 cells x 4 metrics) in one commit.
ANALYTIC_BATCH_ROWS = 2_000_000
ANALYTIC_FLUSH_SECONDS = 30.0
#: ``on_status`` is told about a final commit of at least so many rows (seconds of work
#: after the last architecture: 1.7 M rows take ~9 s)
STATUS_ROWS = 200_000


@dataclass
class ScoreRequest:
    """The options of ``nasfilter score`` (user level; ``plan`` validates them)."""

    space: str
    n: int | None = None
    all: bool = False
    archs: Sequence[str] | None = None  # an explicit list (``--archs FILE``)
    metrics: str = "relu_count,params,flops,size_kb"
    seed: int = 0
    data: str | None = None
    shape: str | None = None
    data_dir: str | None = None
    download: bool = False
    batch_size: int = 128
    device: str = "auto"
    bn_mode: str = "batch"
    memory_format: str = DEFAULT_MEMORY_FORMAT
    bytes_per_param: float = 1.0
    penalty: str | None = None
    mu: float = 0.2
    sigma: float = 0.4
    params: dict[str, float] | None = None  # metrics' own settings (--param)
    explicit: bool = False  # candidates come from a caller, given to execute(archs=...)


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

    def as_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "space": self.space,
            "status": self.status,
            "archs_total": self.archs_total,
            "archs_scored": self.archs_scored,
            "archs_skipped": self.archs_skipped,
            "rows": self.rows,
            "seconds": self.seconds,
            "statuses": self.statuses,
        }


def plan(req: ScoreRequest) -> tuple[RunSettings, ArchPlan]:
    """Validate a request (no data read, no device touched, no database) and turn it
    into typed settings and the architecture plan."""
    settings = RunSettings.make(
        req.space,
        req.metrics,
        seed=req.seed,
        data=req.data,
        shape=req.shape,
        data_dir=req.data_dir,
        batch_size=req.batch_size,
        device=req.device,
        bn_mode=req.bn_mode,
        memory_format=req.memory_format,
        bytes_per_param=req.bytes_per_param,
        penalty=req.penalty,
        mu=req.mu,
        sigma=req.sigma,
        params=req.params,
    )
    space = settings.space_obj()
    chosen = sum([req.all, req.n is not None, req.archs is not None])
    if req.explicit:
        return settings, ArchPlan("list", int(req.n or 0))
    if chosen > 1:
        raise UsageError("Pass one of --n N, --all or --archs FILE, not several.")
    if chosen == 0:
        raise UsageError("Say which architectures to score: --n N, --all or --archs FILE.")
    if req.archs is not None:
        if not req.archs:
            raise UsageError("The --archs list is empty.")
        return settings, ArchPlan("list", len(req.archs))
    if req.all:
        if not space.enumerable or space.size is None:
            raise UsageError(
                f"The {space.name} space cannot be enumerated (it is sampled only).",
                "Pass --n N.",
            )
        return settings, ArchPlan("all", space.size)
    space.check_sample_size(req.n)  # type: ignore[arg-type]
    return settings, ArchPlan("sample", int(req.n))  # type: ignore[arg-type]


def read_arch_list(space_name: str, lines: Sequence[str], source: str = "--archs") -> list[str]:
    """Canonical identities from lines of text (one per line; blank lines and lines
    starting with '#' skipped). Every bad or duplicate line is refused, whole, naming
    the first few with their line numbers."""
    from nasfilter.errors import InvalidArchitectureError
    from nasfilter.spaces import get_space

    space = get_space(space_name)
    out: list[str] = []
    first: dict[str, int] = {}
    bad: list[str] = []
    for lineno, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("#"):
            continue
        try:
            arch = space.canonical(text)
        except InvalidArchitectureError as e:
            bad.append(f"line {lineno}: {e.message}")
            continue
        if arch in first:
            bad.append(f"line {lineno}: duplicate of line {first[arch]} ({arch})")
            continue
        first[arch] = lineno
        out.append(arch)
    if bad:
        more = f" (and {len(bad) - 3} more)" if len(bad) > 3 else ""
        raise UsageError(
            f"{source} has {len(bad)} bad line(s), nothing was scored: "
            + "; ".join(bad[:3])
            + more
            + ".",
            "Fix or remove them and run again.",
        )
    if not out:
        raise UsageError(f"{source} names no architecture.")
    return out


def start(
    store: Store,
    req: ScoreRequest,
    command: str | None = None,
    origin: str = "score",
    parent_run: int | None = None,
) -> int:
    """Create a score run from a request. Everything that can fail for a usage reason
    fails before the run row exists: the options, the device, the input data (read and
    described; the description, with its hashes, is recorded with the run)."""
    settings, arch_plan = plan(req)
    return start_run(
        store,
        settings,
        arch_plan,
        archs=req.archs,
        command=command,
        origin=origin,
        parent_run=parent_run,
        download=req.download,
    )


def start_run(
    store: Store,
    settings: RunSettings,
    arch_plan: ArchPlan,
    archs: Sequence[str] | None = None,
    command: str | None = None,
    origin: str = "score",
    parent_run: int | None = None,
    download: bool = False,
) -> int:
    """Create a run from typed settings (see ``start``); returns its id."""
    settings = prepare(settings, download=download)
    run_id = store.create_run(
        "score",
        settings.space,
        {**settings.to_json(), **arch_plan.to_json()},
        seed=settings.seed,
        n_requested=arch_plan.n,
        command=command,
        metrics=settings.metric_records(),
        origin=origin,
        parent_run=parent_run,
    )
    if archs:
        store.add_run_archs(run_id, list(archs))
    return run_id


def prepare(settings: RunSettings, download: bool = False) -> RunSettings:
    """Check the device and read the input batch (once; a scorer made in this process
    reuses it), returning the settings with the batch's description recorded."""
    if not settings.builds_networks:
        return settings
    from dataclasses import replace

    from nasfilter.devices import resolve_device

    resolve_device(settings.device)
    if settings.data is None:
        return settings
    from nasfilter.data import describe
    from nasfilter.scoring.scorer import load_inputs

    return replace(settings, batch=describe(load_inputs(settings, download=download)))


def _check_backend_settings(pool: Backend, settings: RunSettings) -> None:
    mine, theirs = settings.to_json(), pool.settings.to_json()
    mine.pop("batch", None)
    theirs.pop("batch", None)
    if mine != theirs:
        raise UsageError(
            "The backend given was opened for other settings than this run's.",
            "Open one with this run's settings (RunSettings.from_json of the run).",
        )


def planned_archs(
    store: Store, run_id: int, settings: RunSettings, arch_plan: ArchPlan
) -> Iterator[tuple[int, str]]:
    """(position, arch) of every architecture the run scores, in order."""
    space = settings.space_obj()
    if arch_plan.kind == "all":
        yield from enumerate(space.enumerate())
    elif arch_plan.kind == "sample":
        yield from enumerate(space.sample(arch_plan.n, settings.seed))
    elif arch_plan.kind == "list":
        yield from enumerate(store.run_archs(run_id))
    else:
        raise UsageError(
            f"Run {run_id} scores candidates chosen by a search, not a seeded sample: "
            "it cannot be resumed on its own.",
            "Run the search again; it reuses every score already stored.",
        )


def record_backend(store: Store, run_id: int, spec: BackendSpec, builds: bool = False) -> None:
    """Append ``spec`` to the run's recorded ``backends`` (one entry per change: a run
    started on Ray and resumed locally records both). Never part of the reuse key.
    ``builds``: the run builds networks; in this process its torch thread count is
    recorded too (workers record theirs): float rounding depends on it."""
    import json
    import sys

    settings = store.get_run(run_id)["settings"]
    seen = list(settings.get("backends") or [])
    entry = spec.to_json()
    torch = sys.modules.get("torch")
    if builds and spec.in_process and torch is not None:
        entry["torch_threads"] = torch.get_num_threads()
    if seen and seen[-1] == entry:
        return
    settings["backends"] = seen + [entry]
    with store.transaction() as con:
        con.execute(
            "UPDATE runs SET settings = ? WHERE run_id = ?",
            [json.dumps(settings, sort_keys=True), run_id],
        )


def execute(
    store: Store,
    run_id: int,
    on_progress: Callable[[int], None] | None = None,
    on_total: Callable[[int, int], None] | None = None,
    batch_rows: int | None = None,
    flush_seconds: float | None = None,
    archs: Sequence[str] | None = None,
    scorer: Any = None,
    chunk_size: int = 4096,
    release_seconds: float = 5.0,
    backend: BackendSpec | Backend | None = None,
    on_status: Callable[[str], None] | None = None,
) -> RunSummary:
    """Score every architecture of run ``run_id`` not yet stored; mark the run completed.

    ``archs``: for a list run, identities to append to its list (in order; those
    already listed are kept once) before scoring what is missing. ``scorer``: a scorer
    made for the same settings to reuse (searches keep one per metric). ``backend``:
    where to score (``BackendSpec``; default: in this process), or an opened
    ``Backend`` for the same settings, which the caller closes (it is closed here only
    when the run is interrupted or fails: its workers are then stopped). Results come
    back whole architectures at a time, in any order, and are written by this process
    alone.

    ``on_status``: told, as a short text, of work after the last architecture that takes
    seconds (the final commit of a large batch: ``writing 1,694,496 rows``), then told
    ``""`` when it is done.

    ``batch_rows`` / ``flush_seconds``: commit a batch every so many rows or seconds;
    default ``BATCH_ROWS`` / ``FLUSH_SECONDS``, or ``ANALYTIC_BATCH_ROWS`` /
    ``ANALYTIC_FLUSH_SECONDS`` for an analytic-only run scored in this process (its rows
    come by the hundred thousand a second, and a few large commits into the keyed
    ``scores`` table cost much less than many: see docs/spaces.md).
    """
    from nasfilter.scoring.scorer import Scorer

    run = store.get_run(run_id)
    if run["kind"] != "score":
        raise UsageError(f"Run {run_id} is a {run['kind']} run, not a score run.")
    settings = RunSettings.from_json(run["settings"])
    arch_plan = ArchPlan.from_json(run["settings"])
    if archs is not None:
        if arch_plan.kind != "list":
            raise UsageError(f"Run {run_id} scores a seeded sample; it takes no list.")
        listed = store.run_archs(run_id)
        known = set(listed)
        new = [a for a in dict.fromkeys(archs) if a not in known]
        if new:
            store.add_run_archs(run_id, new, start=len(listed))
    all_recs = store.run_metrics(run_id)
    done = store.done_archs(run_id, len(all_recs))
    items = list(planned_archs(store, run_id, settings, arch_plan))
    total = len(items)
    todo = [(pos, a) for pos, a in items if a not in done]
    skipped = total - len(todo)
    statuses: dict[str, Counter[str]] = {r["metric"]: Counter() for r in all_recs}
    t0 = time.perf_counter()
    scored = reported = 0
    status = "interrupted"
    own_scorer = scorer is None
    pool: Backend | None = None
    spec = BackendSpec() if backend is None else backend
    if isinstance(spec, Backend):
        pool, spec = spec, spec.spec
        _check_backend_settings(pool, settings)
    own_pool = pool is None
    analytic = spec.in_process and not settings.builds_networks
    rows_cap = batch_rows or (ANALYTIC_BATCH_ROWS if analytic else BATCH_ROWS)
    if flush_seconds is None:
        flush_seconds = ANALYTIC_FLUSH_SECONDS if analytic else FLUSH_SECONDS
    writer = BatchWriter(
        store,
        run_id,
        batch_rows=rows_cap,
        new_scores=bool(todo) and not store.has_scores(run_id),
        new_archs=bool(todo) and not store.has_architectures(settings.space),
    )
    if scorer is not None and not spec.in_process:
        raise UsageError("A scorer to reuse scores in this process; pass no backend with it.")
    if on_total and (spec.in_process or not todo):
        on_total(total, skipped)
    try:  # loads the batch and picks the device: may fail before anything is scored
        if scorer is None and todo:
            if spec.in_process:
                scorer = Scorer(settings)
            elif pool is None:
                from nasfilter.scoring.backends import open_backend

                pool = open_backend(spec, settings)
    except BaseException:
        if run["status"] == "running":  # a new run that never started; a resumed one keeps
            store.set_run_status(run_id, "failed")  # its status ("interrupted")
        raise
    if on_total and not (spec.in_process or not todo):  # once the workers are up: the
        on_total(total, skipped)  # rate shown does not count their start
    record_backend(store, run_id, spec, builds=settings.builds_networks)
    store.set_run_status(run_id, "running", finished=False)
    store.release()
    last_flush = last_report = last_release = time.perf_counter()
    space = settings.space
    builds = settings.builds_networks

    def take(out: Any) -> None:
        """Buffer one architecture's rows (an ArchResult) or a chunk's (ChunkResult)."""
        nonlocal scored
        with critical():  # whole architectures only: a resume never sees half of one
            if hasattr(out, "columns"):
                writer.add_chunk(space, out)
                for name, (_, sts, _) in out.columns.items():
                    statuses[name].update(sts)
                scored += len(out)
            else:
                writer.add_result(space, out)
                for name, _, st, _ in out.rows:
                    statuses[name][st] += 1
                scored += 1

    def after(every: bool) -> None:
        nonlocal reported, last_report, last_flush, last_release
        now = time.perf_counter()
        if on_progress and (every or now - last_report > 0.1):
            on_progress(scored - reported)
            reported, last_report = scored, now
        if writer.pending >= rows_cap or now - last_flush > flush_seconds:
            writer.flush()
            last_flush = now
            if now - last_release > release_seconds:
                store.release()
                last_release = now

    with interruptible():
        try:
            if pool is not None and todo:  # workers: results in any order
                for out in pool.map(todo):
                    take(out)
                    after(builds)
            elif scorer is not None and not scorer.builds:  # analytic only: by columns
                for start in range(0, len(todo), chunk_size):
                    take(scorer.score_chunk(todo[start : start + chunk_size]))
                    after(True)
            for res in scorer.map(todo) if todo and pool is None and scorer.builds else ():
                take(res)
                after(True)
            if on_progress and scored > reported:
                on_progress(scored - reported)
            told = bool(on_status) and writer.pending >= STATUS_ROWS  # a commit of seconds
            if told and on_status:
                on_status(f"writing {writer.pending:,} rows")
            writer.flush()
            if told and on_status:
                on_status("")
            # rank aggregates rank within the whole run: computed once it is complete
            for name, counts in store.write_rank_aggregates(run_id).items():
                statuses[name] = Counter(counts)
            status = "completed"
        except KeyboardInterrupt:
            with critical():
                writer.flush()  # every pending row belongs to a fully scored architecture
                store.set_run_status(run_id, "interrupted")
                store.release()
            raise RunInterrupted(
                f"Interrupted: run {run_id} keeps {skipped + scored:,} of {total:,} architectures.",
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
            if own_scorer and scorer is not None:
                scorer.close()
            if pool is not None and (own_pool or status != "completed"):
                pool.close()  # stops the workers (Ray actors, local processes)
            if status != "interrupted":
                with critical():
                    store.set_run_status(run_id, status)
    return RunSummary(
        run_id=run_id,
        space=space,
        archs_total=total,
        archs_scored=scored,
        archs_skipped=skipped,
        rows=writer.rows_written,
        seconds=time.perf_counter() - t0,
        status=status,
        statuses={k: dict(v) for k, v in statuses.items()},
    )
