"""How well each metric of a run predicts accuracy and size: Kendall tau-b, Spearman rho
and top-k accuracy, computed in SQL by the macros of nasfilter/sql/analysis.sql
(docs/analyze.md).

Python only chooses the arguments, runs two queries (``analysis_summary`` and
``analysis_between``) and reshapes their rows; every number comes from SQL.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

from nasfilter.datasets import TRUTH_DATASETS
from nasfilter.errors import DataError, UsageError
from nasfilter.store import Store, sql_literal
from nasfilter.truth import DATASETS, canonical_dataset, canonical_split

TOP_K = (1, 10, 100)

# The run's input shape (settings.dataset_shape.name) -> the truth dataset to prefer.


@dataclass
class MetricAnalysis:
    """One metric of the run, over the architectures that have truth.

    ``kendall_tau_acc`` etc. are of the metric's value; the ``*_directed`` ones have the
    metric's direction applied (the sign flipped for a lower-is-better metric), so that
    a positive value means: the networks the metric prefers are more accurate (larger).

    Top-k (k = 1, 10, 100): ties at the cut are not broken by an arbitrary rule; the mean
    and best accuracy are expectations over a uniformly random choice among the tie group
    at the cut, which has ``top{k}_tie_n`` members (``top{k}_tie_take`` of them in the k)
    whose accuracy ranges over [``top{k}_tie_min_acc``, ``top{k}_tie_max_acc``].
    """

    metric: str
    higher_is_better: bool
    with_truth: int  # architectures with truth and a score row for the metric
    n: int  # of which the value is finite (used everywhere below)
    excluded: int  # NaN, +-inf or NULL values, left out (never replaced)
    distinct_values: int
    ties: int  # n - distinct_values: values equal to another one
    kendall_tau_acc: float | None
    spearman_acc: float | None
    kendall_tau_acc_directed: float | None
    spearman_acc_directed: float | None
    n_size: int
    kendall_tau_size: float | None
    spearman_size: float | None
    kendall_tau_size_directed: float | None
    spearman_size_directed: float | None
    top1_mean_acc: float | None
    top1_best_acc: float | None
    top1_gap: float | None
    top1_tie_n: int | None
    top1_tie_take: int | None
    top1_tie_min_acc: float | None
    top1_tie_max_acc: float | None
    top10_mean_acc: float | None
    top10_best_acc: float | None
    top10_gap: float | None
    top10_tie_n: int | None
    top10_tie_take: int | None
    top10_tie_min_acc: float | None
    top10_tie_max_acc: float | None
    top100_mean_acc: float | None
    top100_best_acc: float | None
    top100_gap: float | None
    top100_tie_n: int | None
    top100_tie_take: int | None
    top100_tie_min_acc: float | None
    top100_tie_max_acc: float | None
    #: what the metric's values were computed from (none, synthetic images, cifar10, ...)
    inputs: str = ""


def input_source(settings: dict[str, Any], record: dict[str, Any]) -> str:
    """What a run's values of one metric were computed from: ``identity`` (analytic, no
    network), ``data-free network`` (a built network on its own inputs: zeros, all-ones
    or seeded Gaussian), ``synthetic images`` (seeded Gaussian batch standing in for a
    dataset), ``<data> images`` (a real dataset's batch), ``base x size`` (penalized)."""
    path = record.get("path")
    if path == "analytic":
        return "identity"
    if path == "penalized":
        return "base x size"
    if record.get("needs_data"):
        data = settings.get("data") or "?"
        return "synthetic images" if data == "synthetic" else f"{data} images"
    return "data-free network"


@dataclass
class PairCorrelation:
    """Kendall tau-b and Spearman rho between two variables (metrics, accuracy, size);
    ``*_directed``: with each metric's direction applied (see ``MetricAnalysis``)."""

    a: str
    a_kind: str  # 'metric' | 'accuracy'
    b: str
    b_kind: str  # 'metric' | 'size'
    n: int
    kendall_tau: float | None
    spearman_rho: float | None
    kendall_tau_directed: float | None = None
    spearman_rho_directed: float | None = None


@dataclass
class AnalysisResult:
    run_id: int
    space: str
    dataset: str
    split: str
    archs_with_truth: int  # architectures of the run with truth for dataset/split
    best_accuracy: float | None  # the best of those (what the top-k gap is measured to)
    metrics: list[MetricAnalysis]
    pairs: list[PairCorrelation]  # metric/metric (a < b) and accuracy/size
    sql: list[str] = field(default_factory=list)

    @property
    def columns(self) -> list[str]:
        return [f for f in MetricAnalysis.__dataclass_fields__]

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        return [tuple(asdict(m).values()) for m in self.metrics]

    def tau_matrix(self, directed: bool = True) -> tuple[list[str], list[list[float | None]]]:
        """Names (metrics, 'accuracy', 'size') and the symmetric matrix of Kendall tau-b;
        ``directed``: with each metric's direction applied (as ``analyze`` prints)."""
        names = [m.metric for m in self.metrics] + ["accuracy", "size"]
        key = {m.metric: ("metric", m.metric) for m in self.metrics}
        key["accuracy"] = ("accuracy", "accuracy")
        key["size"] = ("size", "size")
        tau: dict[tuple[tuple[str, str], tuple[str, str]], float | None] = {}
        for m in self.metrics:
            acc, size = (
                (m.kendall_tau_acc_directed, m.kendall_tau_size_directed)
                if directed
                else (m.kendall_tau_acc, m.kendall_tau_size)
            )
            tau[(("metric", m.metric), ("accuracy", "accuracy"))] = acc
            tau[(("metric", m.metric), ("size", "size"))] = size
        for p in self.pairs:
            tau[((p.a_kind, p.a), (p.b_kind, p.b))] = (
                p.kendall_tau_directed if directed else p.kendall_tau
            )
        out: list[list[float | None]] = []
        for i, a in enumerate(names):
            row: list[float | None] = []
            for j, b in enumerate(names):
                if i == j:
                    row.append(1.0)
                    continue
                ka, kb = key[a], key[b]
                row.append(tau.get((ka, kb), tau.get((kb, ka))))
            out.append(row)
        return names, out

    def to_json(self) -> dict[str, Any]:
        """A JSON-safe dict (undefined correlations are None, never NaN)."""
        return _json_clean(
            {
                "run_id": self.run_id,
                "space": self.space,
                "dataset": self.dataset,
                "split": self.split,
                "archs_with_truth": self.archs_with_truth,
                "best_accuracy": self.best_accuracy,
                "metrics": [asdict(m) for m in self.metrics],
                "pairs": [asdict(p) for p in self.pairs],
                "sql": self.sql,
            }
        )


def _json_clean(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    if isinstance(v, dict):
        return {k: _json_clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_json_clean(x) for x in v]
    return v


def coverage(store: Store, run_id: int) -> list[tuple[str, str, int, float]]:
    """(dataset, split, architectures, best accuracy) of the run's truth."""
    return store.con.execute(f"SELECT * FROM truth_coverage({int(run_id)})").fetchall()


def default_dataset(store: Store, run_id: int, split: str = "valid") -> str:
    """The dataset ``analyze`` uses for ``split`` when none is given (see
    ``default_dataset_split``)."""
    return default_dataset_split(store, run_id, None, split)[0]


def default_dataset_split(
    store: Store, run_id: int, dataset: str | None = None, split: str | None = None
) -> tuple[str, str]:
    """The (dataset, split) ``analyze`` uses, from what truth the run has.

    Split: the given one; else ``valid`` if the run (and the dataset, if given) has
    validation truth, else ``test``. Dataset: the given one; else the only dataset with
    truth for the run and split; else, among several, the one that matches the run's
    input shape (cifar10 -> cifar10-valid, then cifar10; cifar100; imagenet16-120 ->
    ImageNet16-120); else an error listing them. No truth at all: an error that says
    what can be loaded for the run's space.
    """
    if dataset is not None:
        dataset = canonical_dataset(dataset)
    if split is not None:
        split = canonical_split(split)
    cov = coverage(store, run_id)
    mine = [c for c in cov if dataset is None or c[0] == dataset]
    if split is None:
        splits = {s for _, s, _, _ in mine}
        split = "valid" if "valid" in splits or not splits else "test"
    avail = [d for d, s, _, _ in mine if s == split]
    if not avail:
        raise _no_truth(store, run_id, split, cov, dataset)
    if dataset is not None or len(avail) == 1:
        return avail[0], split
    shape = (store.get_run(run_id)["settings"].get("dataset_shape") or {}).get("name")
    for d in TRUTH_DATASETS:  # the first, in the vocabulary's order, at the run's shape
        if TRUTH_DATASETS[d] == shape and d in avail:
            return d, split
    listing = ", ".join(f"{d} ({n:,})" for d, s, n, _ in cov if s == split)
    raise UsageError(
        f"Run {run_id} has truth for several datasets ({split} split): {listing}.",
        "Pass --dataset NAME.",
    )


def _load_hint(space: str) -> str:
    """What can be loaded as truth for ``space``, as commands."""
    from nasfilter.spaces import get_space

    sp = get_space(space)
    ways = []
    if sp.truth_format == "nats-bench":
        ways.append(f"`nasfilter truth load {space}` (the NATS-Bench files)")
    elif sp.truth_format is not None:
        ways.append(f"`nasfilter truth load {space} --file FILE` (the benchmark's file)")
    if sp.truth_sample:
        ways.append(f"`nasfilter truth sample {space}` (the sample shipped with nasfilter)")
    ways.append(f"`nasfilter truth import FILE --space {space} ...` (any table)")
    if len(ways) == 1:
        return f"Load truth for {space} with {ways[0]}."
    return f"Load truth for {space} with " + ", ".join(ways[:-1]) + f" or {ways[-1]}."


def _no_truth(
    store: Store, run_id: int, split: str, cov: list, dataset: str | None = None
) -> DataError:
    space = store.get_run(run_id)["space"]
    what = f"{dataset}, {split} split" if dataset else f"the {split} split"
    other = ", ".join(f"{d}/{s} ({n:,})" for d, s, n, _ in cov)
    have = f" It has truth for: {other}." if other else ""
    return DataError(
        f"No architecture of run {run_id} ({space}) has ground truth for {what}.{have}",
        _load_hint(space),
    )


def analyze_run(store: Store, run_id: int, dataset: str, split: str = "valid") -> AnalysisResult:
    """Per metric of ``run_id``: tau-b and rho against accuracy and size, top-k accuracy;
    and tau-b/rho between every pair of metrics and between accuracy and size."""
    dataset = canonical_dataset(dataset)
    split = canonical_split(split)
    run = store.get_run(run_id)
    cov = coverage(store, run_id)
    mine = [c for c in cov if c[0] == dataset and c[1] == split]
    if not mine:
        raise _no_truth(store, run_id, split, cov, dataset)
    _, _, n_truth, best = mine[0]
    args = f"{int(run_id)}, {sql_literal(dataset)}, {sql_literal(split)}"
    sql_summary = f"SELECT * FROM analysis_summary({args})"
    sql_between = f"SELECT * FROM analysis_between({args}) ORDER BY a_kind DESC, a, b"
    cols, rows = store.query(sql_summary)
    metrics = []
    fields = set(MetricAnalysis.__dataclass_fields__)
    recs = {m["metric"]: m for m in store.run_metrics(run_id)}
    for r in rows:
        d = {c: v for c, v in zip(cols, r, strict=True) if c in fields}
        d["inputs"] = input_source(run["settings"], recs.get(d["metric"], {}))
        metrics.append(MetricAnalysis(**d))
    cols, rows = store.query(sql_between)
    pairs = []
    for r in rows:
        d = dict(zip(cols, r, strict=True))
        pairs.append(
            PairCorrelation(
                a=d["a"],
                a_kind=d["a_kind"],
                b=d["b"],
                b_kind=d["b_kind"],
                n=int(d["n"]),
                kendall_tau=d["kendall_tau_b"],
                spearman_rho=d["spearman_rho"],
                kendall_tau_directed=d["kendall_tau_b_directed"],
                spearman_rho_directed=d["spearman_rho_directed"],
            )
        )
    return AnalysisResult(
        run_id=int(run_id),
        space=run["space"],
        dataset=dataset,
        split=split,
        archs_with_truth=int(n_truth),
        best_accuracy=best,
        metrics=metrics,
        pairs=pairs,
        sql=[sql_summary, sql_between],
    )


__all__ = [
    "DATASETS",
    "TOP_K",
    "AnalysisResult",
    "MetricAnalysis",
    "PairCorrelation",
    "analyze_run",
    "coverage",
    "default_dataset",
    "default_dataset_split",
]
