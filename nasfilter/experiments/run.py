"""Running the dissertation's Experiments 1-4 on what is available (no report writing).

- Exp. 1: Kendall tau-b (and Spearman rho) of relu_count and NASWOT against accuracy, over
  a score run of the population (``nasfilter.analysis.correlation.analyze_run``).
- Exp. 2: random search (Algorithm 1) with each metric, N in ``ns`` x ``repeats``: accuracy,
  size, time and NASWOT's time saved by relu_count (in the layout of the dissertation's
  Table 6).
- Exp. 3: the penalty factors and each metric x penalty against size.
- Exp. 4: penalized random search at the largest N: accuracy and size (Table 7's layout).
- Exp. 5 (not the dissertation's; nasfilter issue 11): random search with relu_count,
  NASWOT, the best single metric and the two ensembles, at the same N (``FILTERS``).

Ground truth: the loaded ground truth for the dataset when there is some; otherwise the
sample shipped for the space (NAS-Bench-201: its CIFAR-10 is ``cifar10-valid`` with
validation accuracy), loaded if needed; the population is then the architectures with
truth. Split: validation by default, as the dissertation's Exp. 1. Inputs for NASWOT:
``data`` or synthetic.

Everything is stored (score runs, search runs); searches reuse stored scores, so Exp. 2's
NASWOT times are the summed per-architecture seconds of Exp. 1 where it scored the same
architectures, and Exp. 4 reuses Exp. 2's. ``nasfilter.experiments.report`` writes the
report from the ``Results`` this returns.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasfilter.errors import DataError, UsageError
from nasfilter.store import Store

METRICS = ("relu_count", "naswot")  # the proposed metric, the baseline
#: the best single metric on the shipped NAS-Bench-201 sample (CIFAR-10 Kendall τ,
#: bench/bench_ranking.py; docs/metrics.md "Aggregates")
BEST_SINGLE = "meco"
#: Exp. 5: the filters compared in random search
FILTERS = (*METRICS, BEST_SINGLE, "ensemble_free", "ensemble")
PENALTIES = ("gdf", "hsdf", "rdf")
EXP1_DEFAULT_MAX = 1000
DEFAULT_SPLIT = "valid"  # the dissertation's Exp. 1 ranks by validation accuracy


def parse_ns(text: str) -> tuple[int, ...]:
    try:
        ns = tuple(int(t) for t in str(text).split(",") if t.strip())
    except ValueError:
        raise UsageError(
            f"--ns must be comma-separated integers (got {text!r}).", "Pass e.g. --ns 10,100,1000."
        ) from None
    if not ns or any(n < 1 for n in ns):
        raise UsageError(f"--ns needs at least one N >= 1 (got {text!r}).")
    return tuple(sorted(set(ns)))


@dataclass
class ReproduceRequest:
    space: str = "nats-tss"
    dataset: str = "cifar10"
    out: Path = Path("reproduce")
    data: str | None = None  # None: synthetic inputs
    data_dir: str | None = None
    batch_size: int = 128
    device: str = "auto"
    repeats: int = 10
    ns: tuple[int, ...] = (10, 100, 1000)
    exp1_n: int | None = None
    split: str = DEFAULT_SPLIT
    mu: float = 0.2
    sigma: float = 0.4
    seed: int = 0
    score_seed: int = 0

    def validate(self) -> None:
        from nasfilter.datasets import canonical_split, canonical_truth_dataset
        from nasfilter.penalties import validate_params
        from nasfilter.spaces import get_space

        get_space(self.space)
        canonical_truth_dataset(self.dataset)
        canonical_split(self.split)
        if self.repeats < 1:
            raise UsageError(f"--repeats must be at least 1 (got {self.repeats}).")
        if not self.ns or any(n < 1 for n in self.ns):
            raise UsageError("--ns needs at least one N >= 1.")
        if self.exp1_n is not None and self.exp1_n < 2:
            raise UsageError(f"--exp1-n must be at least 2 (got {self.exp1_n}).")
        if self.seed < 0 or self.score_seed < 0:
            raise UsageError("Seeds must be at least 0.")
        validate_params(self.mu, self.sigma)
        self.score_settings()

    def score_settings(self) -> Any:
        """The settings of Exp. 1's score run (relu_count and NASWOT on networks)."""
        from nasfilter.scoring.settings import RunSettings

        return RunSettings.make(
            self.space,
            ",".join(METRICS),
            seed=self.score_seed,
            data=self.data or "synthetic",
            data_dir=self.data_dir,
            batch_size=self.batch_size,
            device=self.device,
        )


@dataclass
class Truth:
    dataset: str | None  # what accuracy is looked up as (None: no truth)
    split: str | None
    accuracy: dict[str, float]
    source: str  # words for the report
    sample: bool


@dataclass
class Results:
    """Everything the report shows (every number is also stored in the database)."""

    req: ReproduceRequest
    db_path: Path
    space: str
    space_size: int | None
    truth: Truth
    population: str  # 'truth' or 'space'
    pop_size: int | None
    data: str
    exp1_run: int
    exp1_reused: bool
    exp1_what: str
    exp1_archs: int
    exp1: Any = None  # AnalysisResult or None
    exp1_note: str = ""
    ns: list[int] = field(default_factory=list)
    skipped: list[int] = field(default_factory=list)
    exp2: dict[tuple[int, str], Any] = field(default_factory=dict)
    exp3_points: dict[str, list[tuple[float, float]]] = field(default_factory=dict)
    n4: int | None = None
    exp4: dict[tuple[str, str], Any] = field(default_factory=dict)
    exp5: dict[tuple[int, str], Any] = field(default_factory=dict)
    seconds: float = 0.0


# --- truth ---------------------------------------------------------------------------------


def resolve_truth(
    store: Store, space: str, dataset: str, split: str, log: Callable[[str], None]
) -> Truth:
    """The loaded truth for (space, dataset, split); else the sample shipped for the
    space (loaded if needed), for that dataset or, failing that, one recorded at the same
    shape (NAS-Bench-201's CIFAR-10 sample is ``cifar10-valid``)."""
    import importlib

    from nasfilter.datasets import TRUTH_DATASETS, canonical_truth_dataset
    from nasfilter.search.context import truth_accuracy, truth_available
    from nasfilter.spaces import get_space

    sp = get_space(space)
    ds = canonical_truth_dataset(dataset)
    acc = truth_accuracy(store, space, ds, split)
    if acc and not _only_sample(store, space, ds, split):
        return Truth(
            ds,
            split,
            acc,
            f"loaded ground truth for {ds} ({split} split), {len(acc):,} architectures",
            sample=False,
        )
    if not sp.truth_sample:
        return Truth(
            None,
            None,
            {},
            f"none: no ground truth for {space} on {ds} ({split}) is loaded "
            "and no sample is shipped for it",
            sample=False,
        )
    if not any(d for d, s, _ in truth_available(store, space)):
        log(f"No ground truth loaded: loading the sample shipped for {space}.")
        module, func = sp.truth_sample.split(":")
        getattr(importlib.import_module(module), func)(store)
    held = [(d, s) for d, s, _ in truth_available(store, space) if s == split]
    same_shape = [d for d, _ in held if TRUTH_DATASETS.get(d) == TRUTH_DATASETS.get(ds)]
    use = ds if (ds, split) in held else (same_shape[0] if same_shape else None)
    if use is None:
        have = ", ".join(f"{d} ({s})" for d, s, _ in truth_available(store, space))
        return Truth(
            None,
            None,
            {},
            f"none: the sample shipped for {space} has no {ds} {split} accuracy "
            f"(it holds: {have or 'nothing'})",
            sample=False,
        )
    acc = truth_accuracy(store, space, use, split)
    note = (
        f"the sample shipped for {space} (NAS-Bench-Suite-Zero), {len(acc):,} "
        f"architectures with {use} {split} accuracy"
    )
    if use != ds:
        note += f" (the sample's entry at the {TRUTH_DATASETS[ds]} shape, used for --dataset {ds})"
    return Truth(use, split, acc, note, sample=True)


def _only_sample(store: Store, space: str, dataset: str, split: str) -> bool:
    row = store.con.execute(
        "SELECT bool_and(l.kind = 'sample') FROM truth t JOIN truth_loads l USING (load_id) "
        "WHERE t.space = ? AND t.dataset = ? AND t.split = ?",
        [space, dataset, split],
    ).fetchone()
    return bool(row and row[0])


# --- Exp. 1 --------------------------------------------------------------------------------


def _score_run(
    store: Store,
    req: ReproduceRequest,
    archs: list[str],
    log: Callable[[str], None],
    on_progress: Callable[[int], None] | None = None,
) -> tuple[int, bool]:
    """A score run of ``archs`` with relu_count and NASWOT: an earlier one with the same
    settings that holds exactly these architectures, else a new one (its list recorded,
    so it resumes without adding anything). (run id, reused?)"""
    from nasfilter import engine
    from nasfilter.scoring.settings import ArchPlan, RunSettings

    settings = engine.prepare(req.score_settings())
    keys = {m: settings.reuse_key(m) for m in METRICS}
    rows = store.con.execute(
        "SELECT run_id, settings FROM runs WHERE kind = 'score' AND space = ? ORDER BY run_id",
        [req.space],
    ).fetchall()
    for run_id, js in rows:
        recs = {r["metric"]: r for r in store.run_metrics(run_id)}
        try:
            rs = RunSettings.from_json(json.loads(js))
            same = all(
                m in recs
                and rs.reuse_key(m, version=recs[m]["version"], path=recs[m]["path"]) == keys[m]
                for m in METRICS
            )
        except Exception:  # noqa: BLE001 - a run this version cannot read is not reused
            same = False
        if same:
            have = {
                a
                for (a,) in store.con.execute(
                    "SELECT DISTINCT arch FROM scores WHERE run_id = ? AND metric = 'naswot'",
                    [run_id],
                ).fetchall()
            }
            if have.issuperset(archs) and len(have) == len(archs):
                log(f"Exp. 1: reusing score run {run_id}.")
                return int(run_id), True
    run_id = engine.start_run(
        store,
        settings,
        ArchPlan("list", len(archs)),
        archs=archs,
        command="nasfilter reproduce (Exp. 1)",
        origin="reproduce",
    )
    log(
        f"Exp. 1: scoring {len(archs):,} architectures with relu_count and NASWOT (run {run_id})..."
    )
    engine.execute(store, run_id, on_progress=on_progress)
    return run_id, False


def _exp1_archs(store: Store, req: ReproduceRequest, truth: Truth) -> tuple[list[str], str]:
    from nasfilter.search.population import Population
    from nasfilter.spaces import get_space

    space = get_space(req.space)
    use_truth = bool(truth.accuracy) and (space.size is None or len(truth.accuracy) < space.size)
    pop = Population(space, list(truth.accuracy)) if use_truth else Population(space)
    size = pop.size if pop.size is not None else EXP1_DEFAULT_MAX
    n = req.exp1_n if req.exp1_n is not None else min(size, EXP1_DEFAULT_MAX)
    n = min(n, size)
    if n == pop.size and pop.members is not None:
        return list(pop.members), f"all {n:,} architectures of the population"
    return pop.sample(n, req.seed), (
        f"{n:,} architectures drawn from the population (seed {req.seed})"
    )


# --- the experiments -------------------------------------------------------------------------


def run_experiments(
    store: Store,
    req: ReproduceRequest,
    log: Callable[[str], None] = lambda m: None,
    on_total: Callable[[int, int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Results:
    """Run Experiments 1-4 (storing every run) and return what the report needs.

    ``on_total(total, done)`` / ``on_progress(k)``: progress in architectures evaluated
    (Exp. 1's scoring and every search's evaluations).
    """
    from nasfilter.search import SearchRequest, run_search
    from nasfilter.spaces import get_space

    req.validate()
    t_start = time.perf_counter()
    space = get_space(req.space)
    truth = resolve_truth(store, space.name, req.dataset, req.split, log)
    use_truth = bool(truth.accuracy) and (space.size is None or len(truth.accuracy) < space.size)
    population = "truth" if use_truth else "space"
    pop_size = len(truth.accuracy) if use_truth else space.size
    data = req.data or "synthetic"
    archs, what = _exp1_archs(store, req, truth)
    ns = [n for n in req.ns if pop_size is None or n <= pop_size]
    skipped = [n for n in req.ns if pop_size is not None and n > pop_size]
    n4 = max(ns) if ns else None
    total = len(archs) + sum(ns) * len(METRICS) * req.repeats
    if n4 is not None:
        total += n4 * len(METRICS) * len(PENALTIES) * req.repeats
    total += sum(ns) * (len(FILTERS) - len(METRICS)) * req.repeats
    if on_total:
        on_total(total, 0)

    exp1_run, exp1_reused = _score_run(store, req, archs, log, on_progress)
    if exp1_reused and on_progress:
        on_progress(len(archs))
    res = Results(
        req=req,
        db_path=store.path,
        space=space.name,
        space_size=space.size,
        truth=truth,
        population=population,
        pop_size=pop_size,
        data=data,
        exp1_run=exp1_run,
        exp1_reused=exp1_reused,
        exp1_what=what,
        exp1_archs=len(archs),
        ns=ns,
        skipped=skipped,
        n4=n4,
    )
    if truth.dataset is not None:
        from nasfilter.analysis.correlation import analyze_run

        try:
            res.exp1 = analyze_run(store, exp1_run, truth.dataset, truth.split or DEFAULT_SPLIT)
        except DataError as e:
            res.exp1_note = f"Not available: {e}"
    else:
        res.exp1_note = f"Not available: no ground truth ({truth.source})."

    def search(n: int, metric: str, penalty: str | None = None) -> Any:
        log(
            f"Search: random, N={n}, {req.repeats} repeats, {metric}"
            + (f" x {penalty}" if penalty else "")
            + "..."
        )
        return run_search(
            store,
            SearchRequest(
                space=space.name,
                algo="random",
                n=n,
                repeats=req.repeats,
                metric=metric,
                penalty=penalty,
                mu=req.mu,
                sigma=req.sigma,
                dataset=truth.dataset,
                split=truth.split,
                population=population,
                seed=req.seed,
                score_seed=req.score_seed,
                data=data,
                data_dir=req.data_dir,
                batch_size=req.batch_size,
                device=req.device,
            ),
            command="nasfilter reproduce",
            on_evaluated=on_progress,
        )

    for n in ns:  # Exp. 2
        for m in METRICS:
            res.exp2[(n, m)] = search(n, m)
    for m in METRICS:  # Exp. 3
        rows = store.con.execute(
            "SELECT z.value / 1000.0, s.value FROM scores s JOIN scores z ON z.run_id = s.run_id "
            "AND z.arch = s.arch AND z.metric = 'size_kb' WHERE s.run_id = ? AND s.metric = ?",
            [exp1_run, m],
        ).fetchall()
        res.exp3_points[m] = [(float(a), float(b)) for a, b in rows if b is not None]
    if n4 is not None:  # Exp. 4
        for m in METRICS:
            res.exp4[(m, "none")] = res.exp2[(n4, m)]
            for pen in PENALTIES:
                res.exp4[(m, pen)] = search(n4, m, pen)
    for n in ns:  # Exp. 5: the filters of issue 11 (relu_count and NASWOT: Exp. 2's)
        for m in FILTERS:
            res.exp5[(n, m)] = res.exp2[(n, m)] if m in METRICS else search(n, m)
    store.release()
    res.seconds = time.perf_counter() - t_start
    return res


def reproduce(
    store: Store,
    req: ReproduceRequest,
    log: Callable[[str], None] = lambda m: None,
    on_total: Callable[[int, int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> Path:
    """Run Experiments 1-4 and write ``req.out/report.md`` with its figures; return it."""
    from nasfilter.experiments.report import prepare_out, write_report

    out = prepare_out(req.out)
    res = run_experiments(store, req, log, on_total, on_progress)
    path = write_report(store, res, out)
    log(f"Report: {path} ({res.seconds:.1f} s)")
    return path
