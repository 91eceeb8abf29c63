"""How well every metric and aggregate ranks the shipped NAS-Bench-201 sample (issue 11),
and the procedure that chose the two ensembles. Prints each figure beside its baseline.

    python bench/bench_ranking.py [--scores bench/data/nb201_sample_scores.parquet]
        [--time 20] [--time-k 64,8] [--threads 1] [--select] [--cli 100] [--only-cli]

Data. Accuracy: the validation accuracy of ``nasfilter/sample_data/nb201_sample.csv``
(NAS-Bench-Suite-Zero: 724 CIFAR-10 cells (``cifar10-valid``), 725 CIFAR-100, 724
ImageNet16-120). Metric values: ``bench/data/nb201_sample_scores.parquet``, made by
``bench/score_sample.py`` through nasfilter's Scorer (run seed 0, each network seeded by
``arch_seed``; how, and on which CPU: bench/data/README.md). Inputs: data-free metrics
make their own (seeded Gaussian or all-ones inputs); metrics that read images were given
``--data synthetic`` (seeded Gaussian images, seeded random labels): there are no real
images on the machine these were computed on, so no figure here uses real images, except
the last table, which reads NASLib's published values (computed by NASLib's authors on
real CIFAR/ImageNet16 images) from the sample file, for comparison.

Figures:

1. per metric and aggregate, per dataset: Kendall τ-b and Spearman ρ against validation
   accuracy over the cells whose value is finite (``nasfilter analyze``'s rule), n the
   number of such cells; rank aggregates (``az_nas``, and the ensembles when they are
   rank aggregates) are ranked within each dataset's sample (the population);
2. ms/arch: the median over cells of the cached standalone seconds (the metric's own
   time plus building the network and the shared pass it used; for an aggregate the sum
   of its components' own seconds plus one build); ``--time N`` also measures the wall
   time of a Scorer scoring each aggregate (components included) on the first N CIFAR-10
   cells, here, now (``--threads``: torch threads);
3. ``--cli N``: the command line end to end on N sampled TSS cells, one process against
   ``--workers auto`` (``--only-cli``: this part alone);
4. ``--select``: the selection procedure of the ensembles (``select``), on the CIFAR-10
   cells split in two halves by a seeded permutation (train: choose, validation: check),
   its trace and its choice, beside the registered definitions; CIFAR-100 and
   ImageNet16-120 are never looked at by the selection (unseen datasets).

Published figures (full 15,625-cell NAS-Bench-201 table, CIFAR-10 test accuracy, not
this sample: the sample's figures differ by sampling): AZ-NAS τ 0.741, VKDNW_agg 0.750,
synflow + AZ-NAS' proxies 0.776; relu_count 0.580, params 0.577.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "nasfilter" / "sample_data" / "nb201_sample.csv"
SCORES = ROOT / "bench" / "data" / "nb201_sample_scores.parquet"
DATASETS = ("cifar10", "cifar100", "ImageNet16-120")
SHAPES = {"cifar10": "cifar10", "cifar100": "cifar100", "ImageNet16-120": "imagenet16-120"}
#: metrics whose value does not depend on the batch size K (no K-row input)
K_FREE = {"synflow", "meco", "l2_norm", "relu_count", "relu_count_live", "params", "flops"}
#: the batch size the ensembles' K-dependent components were chosen at
DEFAULT_K = 64
PUBLISHED = [
    ("AZ-NAS (Gaussian inputs)", 0.741),
    ("VKDNW_agg", 0.750),
    ("synflow + AZ-NAS proxies", 0.776),
    ("relu_count", 0.580),
    ("params", 0.577),
]
GOAL_TAU, GOAL_SECONDS = 0.78, 0.5
NASLIB = ("synflow", "snip", "grasp", "fisher", "grad_norm", "jacov", "nwot", "epe_nas", "plain")

# -- the selection procedure ----------------------------------------------------------------
SPLIT_SEED = 2024
#: candidate components of ensemble_free: metrics that read no images and no labels (all
#: at K = DEFAULT_K: an aggregate names metrics; the batch size is the run's)
FREE_POOL = (
    "synflow",
    "meco",
    "l2_norm",
    "relu_count",
    "relu_count_live",
    "flops",
    "params",
    "zen",
    "az_expressivity",
    "az_progressivity",
    "az_trainability",
)
#: ensemble may use anything: FREE_POOL and the metrics that read (here synthetic) images
ALL_POOL = FREE_POOL + (
    "naswot",
    "jacob_cov",
    "swap",
    "epe_nas",
    "grad_norm",
    "snip",
    "fisher",
    "plain",
)
WEIGHTS = (0.5, 1.0, 1.5, 2.0, 3.0)
MAX_COMPONENTS = 6
MIN_GAIN = 0.002


# -- data -----------------------------------------------------------------------------------
def sample_rows(dataset: str) -> list[dict[str, str]]:
    with SAMPLE.open(newline="") as f:
        return [r for r in csv.DictReader(f) if r["dataset"] == dataset]


def load_scores(path: Path) -> dict[str, dict[str, dict[str, tuple[float, float]]]]:
    """dataset -> variant -> arch -> (value, seconds). A K-dependent metric scored at
    batch size K is the variant 'name' when K = DEFAULT_K, else 'name@K'."""
    out: dict[str, dict[str, dict[str, tuple[float, float]]]] = {}
    if not path.exists():
        return out
    import pyarrow.parquet as pq

    t = pq.read_table(path).to_pydict()
    for ds, arch, name, k, value, seconds in zip(
        t["dataset"], t["arch"], t["metric"], t["batch_size"], t["value"], t["seconds"], strict=True
    ):
        if name not in K_FREE and k != DEFAULT_K:
            name = f"{name}@{k}"
        out.setdefault(ds, {}).setdefault(name, {})[arch] = (float(value), float(seconds))
    return out


def columns(
    scores: dict[str, dict[str, tuple[float, float]]], archs: Sequence[str]
) -> dict[str, np.ndarray]:
    """variant -> values over ``archs`` (NaN where missing), for variants that cover them all."""
    return {
        name: np.array([by[a][0] for a in archs], dtype=np.float64)
        for name, by in scores.items()
        if all(a in by for a in archs)
    }


def live_counts(archs: Sequence[str], dataset: str) -> np.ndarray:
    """relu_count_live from the space's analytic figure (exact; no network built)."""
    from nasfilter.datasets import get_shape
    from nasfilter.spaces import get_space

    sp, shape = get_space("nats-tss"), get_shape(SHAPES[dataset])
    return np.array([sp.costs(a, shape).figure("relu_count_live") for a in archs], dtype=float)


# -- statistics -----------------------------------------------------------------------------
def tau_rho(x: np.ndarray, acc: np.ndarray) -> tuple[float, float, int]:
    """Kendall τ-b and Spearman ρ over the finite values (as nasfilter analyze)."""
    from scipy.stats import kendalltau, spearmanr

    ok = np.isfinite(x)
    if ok.sum() < 3:
        return math.nan, math.nan, int(ok.sum())
    return float(kendalltau(x[ok], acc[ok])[0]), float(spearmanr(x[ok], acc[ok])[0]), int(ok.sum())


def log_rank(x: np.ndarray, sign: int = 1) -> np.ndarray:
    """ln(r / n) with nasfilter's rank rule (NaN lowest, ties averaged)."""
    from nasfilter.metrics.aggregate import ascending_ranks

    r = np.array(ascending_ranks(list(x), sign))
    return np.log(r / len(r))


def combo_value(cols: dict[str, np.ndarray], comps: Sequence[tuple[str, float, int]]) -> np.ndarray:
    return sum(w * log_rank(cols[n], s) for n, w, s in comps)  # type: ignore[return-value]


def aggregate_values(name: str, cols: dict[str, np.ndarray]) -> np.ndarray | None:
    """A registered aggregate over the population ``cols`` (None if a component is
    missing): through the library's definition."""
    from nasfilter.metrics import get_metric
    from nasfilter.metrics.aggregate import formula_column, rank_values

    agg = get_metric(name).aggregate
    assert agg is not None
    if not all(c in cols for c in agg.names):
        return None
    if agg.kind == "rank":
        vals, _ = rank_values(agg, {c: list(cols[c]) for c in agg.names})
        return np.array(vals)
    sts = {c: ["ok" if np.isfinite(v) else "nan" for v in cols[c]] for c in agg.names}
    vals2, _ = formula_column(agg, {c: (cols[c], sts[c]) for c in agg.names})
    return np.asarray(vals2)


# -- the selection procedure ----------------------------------------------------------------
def split(n: int, seed: int = SPLIT_SEED) -> tuple[np.ndarray, np.ndarray]:
    """Train and validation indices: a seeded permutation of range(n), first half train."""
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[: n // 2]), np.sort(perm[n // 2 :])


def select(
    cols: dict[str, np.ndarray],
    acc: np.ndarray,
    pool: Sequence[str],
    idx: np.ndarray,
    log: list[str] | None = None,
) -> list[tuple[str, float, int]]:
    """The procedure that chose the ensembles, on the cells ``idx`` only.

    1. Each candidate's sign inside the aggregate is the sign of its own τ with accuracy
       on ``idx`` (so FLOPs and parameters count as better when larger, as in AZ-NAS).
    2. Greedy forward selection of an equally weighted sum of log ranks (ranked within
       ``idx``): add the candidate that raises τ the most; stop when no candidate adds at
       least MIN_GAIN or at MAX_COMPONENTS. Variants of one metric (K) exclude each other.
    3. Weights: coordinate ascent over WEIGHTS, one component at a time, until a full pass
       changes nothing (a change must raise τ by at least MIN_GAIN / 2).
    """
    log = log if log is not None else []
    a = acc[idx]
    sub = {n: cols[n][idx] for n in pool if n in cols}
    signs = {}
    for n, x in sub.items():
        t = tau_rho(x, a)[0]
        signs[n] = 1 if (math.isnan(t) or t >= 0) else -1
    chosen: list[tuple[str, float, int]] = []
    best = -1.0
    while len(chosen) < MAX_COMPONENTS:
        taken = {c[0].split("@")[0] for c in chosen}
        trials = []
        for n in sub:
            if n.split("@")[0] in taken:
                continue
            comps = [*chosen, (n, 1.0, signs[n])]
            trials.append((tau_rho(combo_value(sub, comps), a)[0], n))
        if not trials:
            break
        t, n = max(trials)
        if t < best + MIN_GAIN:
            log.append(
                f"  stop: the best addition ({n}) gives τ {t:.4f} (< {best:.4f} + {MIN_GAIN})"
            )
            break
        chosen.append((n, 1.0, signs[n]))
        best = t
        log.append(f"  + {n} (sign {signs[n]:+d}): τ {t:.4f}")
    changed = True
    while changed and len(chosen) > 1:
        changed = False
        for i in range(len(chosen)):
            n, w0, s = chosen[i]
            for w in WEIGHTS:
                if w == w0:
                    continue
                trial = [*chosen[:i], (n, w, s), *chosen[i + 1 :]]
                t = tau_rho(combo_value(sub, trial), a)[0]
                if t >= best + MIN_GAIN / 2:
                    chosen, best, changed = trial, t, True
                    log.append(f"  weight {n} = {w:g}: τ {t:.4f}")
                    w0 = w
    return chosen


def formula_variant(
    fit: dict[str, np.ndarray], cols: dict[str, np.ndarray], comps: Sequence[tuple[str, float, int]]
) -> np.ndarray:
    """The population-independent alternative to a rank aggregate that was measured and
    not shipped: Σ w ln F(s·x), F a logistic CDF with location the median and scale
    IQR / (2 ln 3) of s·x over the cells ``fit`` (fixed constants; ln F ≈ ln(r/n) on
    them); NaN counts as -inf."""
    total = np.zeros(len(next(iter(cols.values()))))
    for n, w, sgn in comps:
        f = sgn * fit[n]
        f = f[np.isfinite(f)]
        q1, q2, q3 = np.percentile(f, [25, 50, 75])
        scale = (q3 - q1) / (2 * math.log(3)) or 1.0
        z = (sgn * cols[n] - q2) / scale
        z = np.where(np.isnan(z), -np.inf, z)
        total = total + w * -np.logaddexp(0.0, -z)
    return total


# -- timing ---------------------------------------------------------------------------------
def time_scorer(metric: str, archs: Sequence[str], k: int) -> float:
    """Median wall seconds per architecture of a Scorer scoring ``metric`` (and every
    component) on CIFAR-10 networks, K = ``k``, CPU; synthetic images if it reads any."""
    from nasfilter.metrics import get_metric
    from nasfilter.scoring.scorer import Scorer
    from nasfilter.scoring.settings import RunSettings

    m = get_metric(metric)
    reads = m.needs_data or m.needs_labels
    s = RunSettings.make(
        "nats-tss", metric, data="synthetic" if reads else None, batch_size=k, device="cpu"
    )
    times = []
    with Scorer(s) as sc:
        sc.score(archs[0])  # warm-up (imports, allocator)
        for a in archs:
            t = time.perf_counter()
            sc.score(a)
            times.append(time.perf_counter() - t)
    return statistics.median(times)


def time_cli(n: int) -> None:
    """``nasfilter score nats-tss --n N --metrics ensemble_free --batch-size 16`` into a
    fresh database, process start included: in one process (the default) and with one
    worker process per CPU (``--workers auto``), one after the other; values compared."""
    import subprocess
    import sys
    import tempfile

    import duckdb

    from nasfilter.scoring.backends import usable_cpus

    cmd = [sys.executable, "-m", "nasfilter", "score", "nats-tss", "--n", str(n),
           "--metrics", "ensemble_free", "--batch-size", "16"]  # fmt: skip
    print()
    print(
        f"`nasfilter score nats-tss --n {n} --metrics ensemble_free --batch-size 16`, fresh "
        f"database, process start included ({usable_cpus()} CPUs; goal <= {GOAL_SECONDS} "
        "s/arch):"
    )
    with tempfile.TemporaryDirectory() as tmp:
        dbs, walls = [], []
        for extra in ([], ["--workers", "auto"]):
            db = Path(tmp) / f"cli{len(dbs)}.duckdb"
            t = time.perf_counter()
            subprocess.run([*cmd, *extra, "--db", str(db)], check=True, capture_output=True)
            walls.append(time.perf_counter() - t)
            dbs.append(db)
        ranks = []
        for db in dbs:
            with duckdb.connect(str(db), read_only=True) as con:
                q = "SELECT arch FROM scores WHERE metric = 'ensemble_free' ORDER BY value, arch"
                ranks.append([a for (a,) in con.execute(q).fetchall()])
    for label, w in (("one process", walls[0]), ("--workers auto", walls[1])):
        print(f"  {label:<15} {w:6.1f} s   {w / n:.3f} s/arch")
    print(
        f"  ratio {walls[0] / walls[1]:.2f}x; ensemble_free order equal: {ranks[0] == ranks[1]} "
        "(values may differ in the last digits: torch threads per process)"
    )


# -- main -----------------------------------------------------------------------------------
def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scores", type=Path, default=SCORES)
    ap.add_argument("--time", type=int, default=0, help="measure aggregates on N cells")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--time-k", default=str(DEFAULT_K), help="batch sizes K to time at, e.g. 64,8")
    ap.add_argument("--select", action="store_true", help="run the selection procedure")
    ap.add_argument(
        "--cli", type=int, default=0, help="time `nasfilter score` of N cells end to end"
    )
    ap.add_argument("--only-cli", action="store_true", help="--cli alone (no τ tables)")
    args = ap.parse_args()
    if args.only_cli:
        time_cli(args.cli or 100)
        return

    from nasfilter.metrics import get_metric, list_metrics

    cache = load_scores(args.scores)
    aggregates = [m.name for m in list_metrics() if m.aggregate is not None]
    print(
        "bench_ranking: Kendall τ-b / Spearman ρ against validation accuracy on the shipped "
        "NAS-Bench-201 sample; finite values only (n cells)"
    )
    print(
        "inputs: 'free' = the metric makes its own (Gaussian / all-ones) inputs; 'synthetic' "
        "= it read seeded Gaussian images (and random labels): no real images were used"
    )
    per_ds: dict[str, tuple[dict[str, np.ndarray], np.ndarray, list[str]]] = {}
    for ds in DATASETS:
        rows = sample_rows(ds)
        archs = [r["arch_str"] for r in rows]
        cols = columns(cache.get(ds, {}), archs)
        cols["relu_count_live"] = live_counts(archs, ds)
        acc = np.array([float(r["val_accuracy"]) for r in rows])
        for name in aggregates:
            v = aggregate_values(name, cols)
            if v is not None:
                cols[name] = v
        per_ds[ds] = (cols, acc, archs)

    names = sorted(
        {n for c, _, _ in per_ds.values() for n in c}, key=lambda n: (n in aggregates, n)
    )
    head = f"{'metric':<20} {'inputs':<9}" + "".join(
        f" {ds[:8] + ' τ':>11} {'ρ':>6} {'n':>4}" for ds in DATASETS
    )
    print()
    print(head + f" {'ms/arch':>9}")
    for n in names:
        base = n.split("@")[0]
        m = get_metric(base)
        inputs = "synthetic" if (m.needs_data or m.needs_labels) else "free"
        line = f"{n:<20} {inputs:<9}"
        for ds in DATASETS:
            cols, acc, _ = per_ds[ds]
            if n in cols:
                t, r, c = tau_rho(cols[n], acc)
                line += f" {t:11.3f} {r:6.3f} {c:4d}"
            else:
                line += f" {'-':>11} {'-':>6} {'-':>4}"
        ms = _cached_ms(cache.get("cifar10", {}), n, m)
        line += f" {ms:9.0f}" if ms is not None else f" {'-':>9}"
        print(line)
    ks = sorted({int(n.split("@")[1]) for c, _, _ in per_ds.values() for n in c if "@" in n})
    for k in ks:  # the same aggregates with their K-dependent components at another K
        line = f"at K = {k}:"
        for name in aggregates:
            for ds in DATASETS:
                cols, acc, _ = per_ds[ds]
                sub = {n.split("@")[0]: v for n, v in cols.items() if n.endswith(f"@{k}")}
                comps = get_metric(name).components
                v = aggregate_values(name, {**cols, **sub})
                if v is not None and set(comps) & set(sub):
                    line += f" {name} {ds} τ {tau_rho(v, acc)[0]:.3f};"
        print(line)
    print()
    print(f"published (full table, CIFAR-10 test accuracy; goal τ >= {GOAL_TAU} data-free):")
    for label, t in PUBLISHED:
        print(f"  {label:<28} τ {t:.3f}")

    rows10 = sample_rows("cifar10")
    print()
    print(
        "for comparison, NASLib's own values on the same cells "
        "(real images where a proxy reads them):"
    )
    for ds in DATASETS:
        rows = sample_rows(ds)
        acc = np.array([float(r["val_accuracy"]) for r in rows])
        line = f"  {ds:<15}"
        for col in NASLIB:
            t, _, _ = tau_rho(np.array([float(r[col]) for r in rows]), acc)
            line += f" {col} {t:.3f}"
        print(line)

    if args.time:
        import torch

        torch.set_num_threads(args.threads)
        archs = [r["arch_str"] for r in rows10[: args.time]]
        print()
        ks = [int(k) for k in args.time_k.split(",") if k.strip()]
        print(
            f"wall time per architecture (Scorer, components included), {len(archs)} CIFAR-10 "
            f"cells, CPU, {args.threads} thread(s); goal <= {GOAL_SECONDS} s for ensemble_free:"
        )
        print(f"  {'metric':<18}" + "".join(f" {'K = ' + str(k):>10}" for k in ks))
        for n in ["relu_count_live", *aggregates]:
            line = f"  {n:<18}"
            for k in ks:
                line += f" {1000 * time_scorer(n, archs, k):7.0f} ms"
            print(line)

    if args.cli:
        time_cli(args.cli)

    if args.select:
        cols, acc, _ = per_ds["cifar10"]
        train, val = split(len(acc))
        print()
        print(
            f"selection on CIFAR-10: {len(train)} train cells, {len(val)} validation cells "
            f"(seeded permutation, seed {SPLIT_SEED}); CIFAR-100 and ImageNet16-120 unseen"
        )
        for label, pool, registered in (
            ("ensemble_free", FREE_POOL, "ensemble_free"),
            ("ensemble", ALL_POOL, "ensemble"),
        ):
            trace: list[str] = []
            comps = select(cols, acc, pool, train, trace)
            print(f"{label}: pool {', '.join(p for p in pool if p in cols)}")
            for t in trace:
                print(t)
            for ds in DATASETS:
                c2, a2, _ = per_ds[ds]
                if all(n in c2 for n, _, _ in comps):
                    if ds == "cifar10":
                        for part, idx in (("train", train), ("validation", val)):
                            sub = {n: c2[n][idx] for n, _, _ in comps}
                            t, r, _ = tau_rho(combo_value(sub, comps), a2[idx])
                            print(f"  {ds} {part}: τ {t:.3f} ρ {r:.3f}")
                    t, r, _ = tau_rho(combo_value(c2, comps), a2)
                    print(f"  {ds} all cells: τ {t:.3f} ρ {r:.3f}")
            fit = {n: cols[n][train] for n, _, _ in comps}
            line = "  kind: the formula alternative (logistic CDF, constants from the train cells):"
            for ds in DATASETS:
                c2, a2, _ = per_ds[ds]
                if all(n in c2 for n, _, _ in comps):
                    idx = val if ds == "cifar10" else np.arange(len(a2))
                    f = formula_variant(fit, {n: c2[n][idx] for n, _, _ in comps}, comps)
                    r = combo_value({n: c2[n][idx] for n, _, _ in comps}, comps)
                    what = "validation" if ds == "cifar10" else "all"
                    line += (
                        f" {ds} {what} τ {tau_rho(f, a2[idx])[0]:.3f} "
                        f"(rank: {tau_rho(r, a2[idx])[0]:.3f});"
                    )
            print(line)
            chosen = ", ".join(f"{n} (w {w:g}, sign {s:+d})" for n, w, s in comps)
            print(f"  chosen: {chosen}")
            try:
                agg = get_metric(registered).aggregate
                assert agg is not None
                reg = ", ".join(
                    f"{c.metric} (w {c.weight:g}, sign {c.sign:+d})" for c in agg.components
                )
                print(f"  registered {registered}: {reg}")
            except Exception:  # noqa: BLE001 - not registered yet
                print(f"  registered {registered}: none")


def _cached_ms(
    scores: dict[str, dict[str, tuple[float, float]]], name: str, m: Any
) -> float | None:
    """Median cached standalone milliseconds per cell; an aggregate: the sum over its
    components of their medians (each includes a build: an upper bound)."""
    if m is not None and m.aggregate is not None:
        parts = [_cached_ms(scores, c, None) for c in m.aggregate.names]
        if any(p is None for p in parts):
            return None
        return float(sum(parts))  # type: ignore[arg-type]
    by = scores.get(name)
    if not by and _analytic_on_nats(name):
        return 0.0  # an analytic figure of the NATS spaces: no network built (microseconds)
    if not by:
        return None
    return 1000.0 * statistics.median(s for _, s in by.values())


def _analytic_on_nats(name: str) -> bool:
    """Whether the metric is one of nats-tss' analytic figures (the registry's rule)."""
    from nasfilter.metrics import get_metric
    from nasfilter.spaces import get_space

    figure = get_metric(name).figure
    return figure is not None and figure in get_space("nats-tss").figures


if __name__ == "__main__":
    main()
