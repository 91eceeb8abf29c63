"""``nasfilter reproduce``: the dissertation's Experiments 1-4 on what is available.

- Exp. 1: Kendall tau-b (and Spearman rho) of relu_count and NASWOT against accuracy, over
  a score run of the population (``nasfilter.analysis.correlation.analyze_run``).
- Exp. 2: random search (Algorithm 1) with each metric, N in ``ns`` x ``repeats``: accuracy,
  size, time and NASWOT's time saved by relu_count (Table 6 style).
- Exp. 3: the penalty factors (``plot_penalties``) and each metric x penalty against size.
- Exp. 4: penalized random search at the largest N: accuracy and size (Table 7 style).

Ground truth: the loaded NATS-Bench truth for the dataset when there is some; otherwise
(space nats-tss) the shipped NAS-Bench-201 sample, loaded if needed, whose CIFAR-10 is
``cifar10-valid`` with validation accuracy; the population is then the architectures with
truth. Inputs for NASWOT: ``data`` or synthetic. The report says which.

Everything is stored (score runs, search runs); searches reuse stored scores, so Exp. 2's
NASWOT times are the summed per-architecture seconds of Exp. 1 where it scored the same
architectures, and Exp. 4 reuses Exp. 2's.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from nasfilter.errors import DataError, UsageError
from nasfilter.store import Store

METRICS = ("relu_count", "naswot")  # the proposed metric, the baseline
PENALTIES = ("gdf", "hsdf", "rdf")
EXP1_DEFAULT_MAX = 1000


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
    split: str | None = None
    mu: float = 0.2
    sigma: float = 0.4
    seed: int = 0
    score_seed: int = 0

    def validate(self) -> None:
        from nasfilter import engine
        from nasfilter.penalties import validate_params
        from nasfilter.search.common import canonical_dataset
        from nasfilter.spaces import get_space

        get_space(self.space)
        canonical_dataset(self.dataset)
        if self.split is not None and self.split not in ("valid", "test"):
            raise UsageError(f"Unknown --split {self.split!r}.", "Choose 'valid' or 'test'.")
        if self.repeats < 1:
            raise UsageError(f"--repeats must be at least 1 (got {self.repeats}).")
        if not self.ns or any(n < 1 for n in self.ns):
            raise UsageError("--ns needs at least one N >= 1.")
        if self.exp1_n is not None and self.exp1_n < 2:
            raise UsageError(f"--exp1-n must be at least 2 (got {self.exp1_n}).")
        validate_params(self.mu, self.sigma)
        engine.plan(self._score_request(1))

    def _score_request(self, n: int) -> Any:
        from nasfilter.engine import ScoreRequest

        return ScoreRequest(
            space=self.space,
            n=n,
            metrics=",".join(METRICS),
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
class _Report:
    lines: list[str] = field(default_factory=list)

    def add(self, *lines: str) -> None:
        self.lines.extend(lines)

    def table(self, cols: Sequence[str], rows: Sequence[Sequence[Any]]) -> None:
        self.lines.append("| " + " | ".join(cols) + " |")
        self.lines.append("|" + "---|" * len(cols))
        for r in rows:
            self.lines.append("| " + " | ".join(_cell(v) for v in r) + " |")
        self.lines.append("")


def _cell(v: Any) -> str:
    if v is None:
        return "n/a"
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:,.0f}"
    return str(v)


def _pm(st: dict[str, Any], digits: int = 2) -> str:
    if st["mean"] is None:
        return "n/a"
    if st["std"] is None:
        return f"{st['mean']:.{digits}f}"
    return f"{st['mean']:.{digits}f} ± {st['std']:.{digits}f}"


def _pm_g(st: dict[str, Any]) -> str:
    if st["mean"] is None:
        return "n/a"
    if st["std"] is None:
        return f"{st['mean']:.3g}"
    return f"{st['mean']:.3g} ± {st['std']:.2g}"


# --- truth ---------------------------------------------------------------------------------


def resolve_truth(
    store: Store, space: str, dataset: str, split: str | None, log: Callable[[str], None]
) -> Truth:
    """The loaded truth for (space, dataset, split); else the shipped sample (nats-tss)."""
    from nasfilter.search.common import canonical_dataset, resolve_split, truth_accuracy
    from nasfilter.truth import table as truth_table

    ds = canonical_dataset(dataset)
    sp = resolve_split(store, space, ds, split)
    acc = truth_accuracy(store, space, ds, sp)
    if acc and not _only_sample(store, space, ds, sp):
        return Truth(
            ds,
            sp,
            acc,
            f"loaded ground truth for {ds} ({sp} split), {len(acc):,} architectures",
            sample=False,
        )
    if space != truth_table.SAMPLE_SPACE:
        return Truth(
            None,
            None,
            {},
            f"none: no ground truth for {space} on {ds} is loaded "
            "and the shipped sample covers nats-tss only",
            sample=False,
        )
    sample_ds = {"cifar10": "cifar10-valid"}.get(ds, ds)
    if sample_ds not in truth_table.SAMPLE_DATASETS.values():
        return Truth(None, None, {}, f"none: the shipped sample has no {ds}", sample=False)
    acc = truth_accuracy(store, space, sample_ds, "valid")
    if not acc:
        log("No ground truth loaded: loading the shipped NAS-Bench-201 sample.")
        truth_table.load_sample(store)
        acc = truth_accuracy(store, space, sample_ds, "valid")
    note = (
        f"the shipped NAS-Bench-201 sample (NAS-Bench-Suite-Zero), {len(acc):,} "
        f"architectures with {sample_ds} validation accuracy"
    )
    if sample_ds != ds:
        note += f" (the sample's CIFAR-10 entry, used for --dataset {ds})"
    return Truth(sample_ds, "valid", acc, note, sample=True)


def _only_sample(store: Store, space: str, dataset: str, split: str) -> bool:
    row = store.con.execute(
        "SELECT bool_and(l.kind = 'sample') FROM truth t JOIN truth_loads l USING (load_id) "
        "WHERE t.space = ? AND t.dataset = ? AND t.split = ?",
        [space, dataset, split],
    ).fetchone()
    return bool(row and row[0])


# --- Exp. 1 --------------------------------------------------------------------------------


def _score_run(
    store: Store, req: ReproduceRequest, archs: list[str], log: Callable[[str], None]
) -> tuple[int, bool]:
    """A score run of ``archs`` with relu_count and NASWOT: an earlier one with the same
    settings that holds every architecture, else a new one. (run id, reused?)"""
    from nasfilter import engine
    from nasfilter.search.common import plan_score, reuse_key

    sreq = req._score_request(len(archs))
    planned = {m: plan_score(asdict(sreq), m) for m in METRICS}
    rows = store.con.execute(
        "SELECT run_id, settings FROM runs WHERE kind = 'score' AND space = ? ORDER BY run_id",
        [req.space],
    ).fetchall()
    for run_id, settings in rows:
        recs = {r["metric"]: r for r in store.run_metrics(run_id)}
        s = json.loads(settings)
        if all(m in recs and reuse_key(s, recs[m]) == planned[m].key for m in METRICS):
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
    run_id = engine.start(store, sreq, command="nasfilter reproduce (Exp. 1)")
    log(
        f"Exp. 1: scoring {len(archs):,} architectures with relu_count and NASWOT (run {run_id})..."
    )
    engine.execute(store, run_id, archs=archs)
    return run_id, False


def _exp1_archs(store: Store, req: ReproduceRequest, truth: Truth) -> tuple[list[str], str]:
    from nasfilter.search.common import Population
    from nasfilter.spaces import get_space

    space = get_space(req.space)
    pop = (
        Population(space, list(truth.accuracy))
        if truth.accuracy and len(truth.accuracy) < space.size
        else Population(space)
    )
    n = req.exp1_n if req.exp1_n is not None else min(pop.size, EXP1_DEFAULT_MAX)
    n = min(n, pop.size)
    if n == pop.size and pop.members is not None:
        return list(pop.members), f"all {n:,} architectures of the population"
    return pop.sample(n, req.seed), (
        f"{n:,} architectures drawn from the population (seed {req.seed})"
    )


# --- figures -------------------------------------------------------------------------------


def _figure(w: float = 6.4, h: float = 4.2) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def _plot_exp2(path: Path, exp2: dict[tuple[int, str], Any]) -> Any:
    """Random search: accuracy and time of the choice against N, one series per metric,
    side by side (equal values stay visible), accuracy axis fitted to the data."""
    from nasfilter.analysis.plots import dodge, plain_ticks

    fig = _figure(9.6, 4.0)
    ax1 = fig.add_subplot(1, 2, 1)
    ax2 = fig.add_subplot(1, 2, 2)
    styles = (("o", "-", "full"), ("s", "--", "none"))
    for i, (m, (marker, line, fill)) in enumerate(zip(METRICS, styles, strict=True)):
        pts = sorted((n, r) for (n, mm), r in exp2.items() if mm == m)
        if not pts:
            continue
        ns = [float(n) for n, _ in pts]
        xs = dodge(ns, i, len(METRICS), log=True)
        style = dict(
            marker=marker, linestyle=line, fillstyle=fill, markersize=7, capsize=3, label=m
        )
        acc = [r.summary["accuracy"] for _, r in pts]
        if any(a["mean"] is not None for a in acc):
            ax1.errorbar(
                xs,
                [a["mean"] if a["mean"] is not None else np.nan for a in acc],
                yerr=[a["std"] or 0.0 for a in acc],
                **style,
            )
        sec = [r.summary["seconds"] for _, r in pts]
        ax2.errorbar(xs, [s["mean"] for s in sec], yerr=[s["std"] or 0.0 for s in sec], **style)
    ax2.set_yscale("log")
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("N (architectures sampled)")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
        plain_ticks(ax)
    ns_all = sorted({n for n, _ in exp2})
    if ns_all:
        ax1.set_xticks(ns_all, [f"{n:,}" for n in ns_all])
        ax2.set_xticks(ns_all, [f"{n:,}" for n in ns_all])
        ax1.set_xlim(ns_all[0] / 1.6, ns_all[-1] * 1.6)
        ax2.set_xlim(ns_all[0] / 1.6, ns_all[-1] * 1.6)
    ax1.margins(y=0.15)  # the accuracy axis spans the data (and its error bars) only
    ax1.set_ylabel("accuracy of the choice (%)")
    ax1.set_title("Random search: accuracy (mean ± std)", fontsize=10)
    ax2.set_ylabel("search time (s)")
    ax2.set_title("Random search: time per repeat (mean ± std)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return fig


def _plot_exp3(
    path: Path, points: dict[str, list[tuple[float, float]]], mu: float, sigma: float
) -> Any:
    """Each metric times each penalty against size; below mu the four coincide, so the
    unpenalized values are drawn as large open circles under the penalized markers."""
    from nasfilter.analysis.plots import plain_ticks
    from nasfilter.penalties import penalized

    fig = _figure(9.6, 4.0)
    for i, m in enumerate(METRICS, start=1):
        ax = fig.add_subplot(1, 2, i)
        pts = [(s, v) for s, v in points.get(m, []) if math.isfinite(v)]
        if pts:
            s = np.array([p[0] for p in pts])
            v = np.array([p[1] for p in pts])
            ax.scatter(
                s,
                v,
                s=30,
                facecolors="none",
                edgecolors="0.6",
                linewidths=0.8,
                label="no penalty",
            )
            for pen, marker, size in zip(PENALTIES, ("o", "^", "x"), (10, 12, 12), strict=True):
                ax.scatter(
                    s,
                    penalized(v, s, pen, mu, sigma),
                    s=size,
                    marker=marker,
                    label=pen,
                    alpha=0.8,
                    linewidths=0.8 if marker == "x" else 0,
                )
            ax.axvline(mu, color="0.5", lw=0.8)
        else:
            ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("size (MB = size_kb / 1000)")
        ax.set_ylabel(f"{m} x penalty")
        ax.set_title(f"{m} x p(size), mu = {mu:g}, sigma = {sigma:g}", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        plain_ticks(ax)
    fig.tight_layout()
    fig.savefig(path)
    return fig


def _plot_exp4(path: Path, exp4: dict[tuple[str, str], Any], mu: float) -> Any:
    """Penalized search: accuracy of the choice as points with error bars (the axis fits
    the data; bars from 0 would flatten gaps of a point or two), size as bars; the
    metrics side by side with their own markers."""
    from nasfilter.analysis.plots import dodge, plain_ticks

    fig = _figure(9.6, 4.0)
    ax1 = fig.add_subplot(1, 2, 1)
    ax2 = fig.add_subplot(1, 2, 2)
    labels = ["none", *PENALTIES]
    x = np.arange(len(labels), dtype=float)
    w = 0.38
    for j, (m, marker, fill) in enumerate(zip(METRICS, ("o", "s"), ("full", "none"), strict=True)):
        acc = [exp4.get((m, p)) for p in labels]
        am = [
            r.summary["accuracy"]["mean"]
            if r and r.summary["accuracy"]["mean"] is not None
            else np.nan
            for r in acc
        ]
        ae = [r.summary["accuracy"]["std"] or 0.0 if r else 0.0 for r in acc]
        sm = [r.summary["size_kb"]["mean"] if r else np.nan for r in acc]
        se = [r.summary["size_kb"]["std"] or 0.0 if r else 0.0 for r in acc]
        ax1.errorbar(
            dodge(list(x), j, len(METRICS), log=False, width=0.2),
            am,
            yerr=ae,
            marker=marker,
            fillstyle=fill,
            markersize=7,
            linestyle="none",
            capsize=3,
            label=m,
        )
        ax2.bar(x + (j - 0.5) * w, sm, w, yerr=se, capsize=3, label=m)
    ax2.axhline(mu * 1000, color="0.4", lw=0.8, ls="--", label=f"mu = {mu * 1000:g} kB")
    ax1.margins(x=0.1, y=0.15)
    for ax in (ax1, ax2):
        ax.set_xticks(x, labels)
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8, loc="best")
        plain_ticks(ax)
    ax1.set_ylabel("accuracy of the choice (%)")
    ax1.set_title("Penalized random search: accuracy (mean ± std)", fontsize=10)
    ax2.set_ylabel("size of the choice (kB)")
    ax2.set_title("Penalized random search: size", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
    return fig


# --- the whole thing -----------------------------------------------------------------------


def reproduce(
    store: Store, req: ReproduceRequest, log: Callable[[str], None] = lambda m: None
) -> Path:
    """Run Experiments 1-4 and write ``req.out/report.md`` with its figures; return it."""
    from nasfilter.penalties import plot_penalties
    from nasfilter.search import SearchRequest, run_search
    from nasfilter.spaces import get_space

    req.validate()
    t_start = time.perf_counter()
    out = Path(req.out).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder.")
    out.mkdir(parents=True, exist_ok=True)
    space = get_space(req.space)
    truth = resolve_truth(store, space.name, req.dataset, req.split, log)
    population = "truth" if truth.accuracy and len(truth.accuracy) < space.size else "space"
    pop_size = len(truth.accuracy) if population == "truth" else space.size
    data = req.data or "synthetic"
    rep = _Report()
    figures: list[str] = []

    # -- Exp. 1 -----------------------------------------------------------------------------
    archs, what = _exp1_archs(store, req, truth)
    exp1_run, exp1_reused = _score_run(store, req, archs, log)
    exp1_res = None
    exp1_note = ""
    if truth.dataset is not None:
        from nasfilter.analysis.correlation import analyze_run
        from nasfilter.analysis.plots import write_plots

        try:
            exp1_res = analyze_run(store, exp1_run, truth.dataset, truth.split or "valid")
            for p in write_plots(store, exp1_res, out):
                figures.append(p.name)
        except DataError as e:
            exp1_note = f"Not available: {e}"
    else:
        exp1_note = f"Not available: no ground truth ({truth.source})."

    # -- Exp. 2 -----------------------------------------------------------------------------
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
        )

    ns = [n for n in req.ns if n <= pop_size]
    skipped = [n for n in req.ns if n > pop_size]
    exp2: dict[tuple[int, str], Any] = {}
    for n in ns:
        for m in METRICS:
            exp2[(n, m)] = search(n, m)
    if exp2:
        _plot_exp2(out / "exp2_random_search.png", exp2)
        figures.append("exp2_random_search.png")

    # -- Exp. 3 -----------------------------------------------------------------------------
    plot_penalties(out / "exp3_penalties.png", req.mu, req.sigma)
    figures.append("exp3_penalties.png")
    pts: dict[str, list[tuple[float, float]]] = {}
    for m in METRICS:
        rows = store.con.execute(
            "SELECT z.value / 1000.0, s.value FROM scores s JOIN scores z ON z.run_id = s.run_id "
            "AND z.arch = s.arch AND z.metric = 'size_kb' WHERE s.run_id = ? AND s.metric = ?",
            [exp1_run, m],
        ).fetchall()
        pts[m] = [(float(a), float(b)) for a, b in rows if b is not None]
    _plot_exp3(out / "exp3_penalized_scores.png", pts, req.mu, req.sigma)
    figures.append("exp3_penalized_scores.png")

    # -- Exp. 4 -----------------------------------------------------------------------------
    exp4: dict[tuple[str, str], Any] = {}
    n4 = max(ns) if ns else None
    if n4 is not None:
        for m in METRICS:
            exp4[(m, "none")] = exp2[(n4, m)]
            for pen in PENALTIES:
                exp4[(m, pen)] = search(n4, m, pen)
        _plot_exp4(out / "exp4_penalized_search.png", exp4, req.mu)
        figures.append("exp4_penalized_search.png")

    # -- the report -------------------------------------------------------------------------
    elapsed = time.perf_counter() - t_start
    rep.add(f"# nasfilter reproduce: {space.name}, {req.dataset}", "")
    rep.add(
        "Experiments 1-4 of the dissertation, run by `nasfilter reproduce` on what this "
        "database holds. Every number below is stored in the database "
        f"(`{store.path}`) and can be recomputed with SQL (see docs/search.md).",
        "",
    )
    rep.add("## Setup", "")
    rep.table(
        ["item", "value"],
        [
            ("space", f"{space.name} ({space.size:,} architectures)"),
            ("ground truth", truth.source),
            (
                "population",
                (
                    "the architectures with ground truth"
                    if population == "truth"
                    else "the whole space"
                )
                + f" ({pop_size:,})",
            ),
            (
                "NASWOT inputs",
                "synthetic (seeded Gaussian images; no --data given)"
                if data == "synthetic"
                else f"{data} (a mini-batch drawn with seed {req.score_seed})",
            ),
            ("batch size K", req.batch_size),
            ("device", req.device),
            ("repeats", req.repeats),
            ("N", ", ".join(str(n) for n in ns) or "none"),
            ("penalty mu, sigma (MB)", f"{req.mu:g}, {req.sigma:g}"),
            ("sampling seed", f"{req.seed} (repeat r uses seed + r)"),
            ("wall time of this reproduce", f"{elapsed:.1f} s"),
        ],
    )
    notes = []
    if truth.sample:
        notes.append(
            "No NATS-Bench ground truth for this dataset is loaded: this report uses "
            "the shipped sample, and every search samples only among its "
            "architectures (`--population truth`). Load NATS-Bench with "
            "`nasfilter truth load` for the full space."
        )
    if truth.dataset is None:
        notes.append("No ground truth: accuracy columns are n/a and Exp. 1 is skipped.")
    if data == "synthetic":
        notes.append(
            "NASWOT is computed on synthetic inputs (no `--data`): its values, and "
            "so its correlations and choices, differ from those on real images."
        )
    if skipped:
        notes.append(
            f"N = {', '.join(map(str, skipped))} skipped: larger than the population "
            f"({pop_size:,})."
        )
    for note in notes:
        rep.add(f"- {note}")
    rep.add("")

    rep.add("## Experiment 1: Kendall τ against accuracy", "")
    rep.add(
        f"Score run {exp1_run} ({'reused' if exp1_reused else 'new'}): {what}, scored with "
        "relu_count and NASWOT (networks built; relu_count from the same forward pass).",
        "",
    )
    if exp1_res is not None:
        rows = [
            (m.metric, m.n, m.kendall_tau_acc, m.spearman_acc, m.kendall_tau_size, m.excluded)
            for m in exp1_res.metrics
        ]
        rep.add(
            f"Against {exp1_res.dataset} {exp1_res.split} accuracy "
            f"({exp1_res.archs_with_truth:,} architectures with truth); size = params.",
            "",
        )
        rep.table(
            [
                "metric",
                "n",
                "Kendall τ (acc)",
                "Spearman ρ (acc)",
                "Kendall τ (size)",
                "non-finite left out",
            ],
            rows,
        )
        for f in figures:
            if f.startswith(f"run{exp1_run}_"):
                rep.add(f"![{f}]({f})", "")
    else:
        rep.add(exp1_note, "")

    rep.add("## Experiment 2: random search (Table 6)", "")
    rep.add(
        "Algorithm 1: sample N architectures, keep the best by the metric; "
        f"{req.repeats} repeats. Time: per repeat, the wall time of the scoring it did "
        "(measured), plus the stored per-architecture seconds of the scores it reused "
        "(summed). Σ score s: the stored per-architecture scoring seconds of all N, the "
        "same basis for both metrics. Time saved = 100 × (T_NASWOT − T_relu) / T_NASWOT.",
        "",
    )
    rows = []
    for n in ns:
        r_relu, r_nw = exp2[(n, "relu_count")], exp2[(n, "naswot")]
        for m, r in (("relu_count", r_relu), ("naswot", r_nw)):
            ts = r.summary["time_source"]
            rows.append(
                (
                    n,
                    m,
                    r.run_id,
                    _pm(r.summary["accuracy"]),
                    _pm(r.summary["size_kb"], 1),
                    _pm_g(r.summary["seconds"]),
                    _pm_g(r.summary["score_seconds"]),
                    ", ".join(f"{v} {k}" for k, v in ts.items() if v),
                )
            )
        rows.append(
            (
                n,
                "time saved by relu_count",
                "",
                "",
                "",
                _saved(r_relu.summary["seconds"], r_nw.summary["seconds"]),
                _saved(r_relu.summary["score_seconds"], r_nw.summary["score_seconds"]),
                "",
            )
        )
    if rows:
        rep.table(
            [
                "N",
                "metric",
                "search run",
                "accuracy (%)",
                "size (kB)",
                "time (s)",
                "Σ score s",
                "time source",
            ],
            rows,
        )
        rep.add("![exp2](exp2_random_search.png)", "")
    else:
        rep.add("No N fits the population.", "")

    rep.add("## Experiment 3: penalized metrics", "")
    rep.add(
        "Penalty factors p(s), s = size in MB at one byte per parameter (size_kb / 1000): "
        "1 up to mu, then a smooth monotone decay of width sigma (docs/penalties.md). "
        f"mu = {req.mu:g} MB, sigma = {req.sigma:g} MB.",
        "",
    )
    rep.add("![penalties](exp3_penalties.png)", "")
    rep.add(
        f"Each metric × p(size) over the {len(archs):,} architectures of score run {exp1_run}:", ""
    )
    rep.add("![penalized scores](exp3_penalized_scores.png)", "")

    rep.add("## Experiment 4: penalized random search (Table 7)", "")
    if n4 is not None:
        rep.add(
            f"Random search, N = {n4}, {req.repeats} repeats, ranked by metric × p(size). "
            f"≤ mu: repeats whose choice is within the {req.mu * 1000:g} kB target.",
            "",
        )
        rows = []
        for m in METRICS:
            for pen in ("none", *PENALTIES):
                r = exp4[(m, pen)]
                within = sum(1 for x in r.repeats if x.size_kb <= req.mu * 1000)
                rows.append(
                    (
                        m,
                        pen,
                        r.run_id,
                        _pm(r.summary["accuracy"]),
                        _pm(r.summary["size_kb"], 1),
                        f"{within}/{len(r.repeats)}",
                        _pm_g(r.summary["seconds"]),
                    )
                )
        rep.table(
            ["metric", "penalty", "search run", "accuracy (%)", "size (kB)", "≤ mu", "time (s)"],
            rows,
        )
        rep.add("![exp4](exp4_penalized_search.png)", "")
    else:
        rep.add("No N fits the population.", "")
    rep.add("## Recompute", "")
    ids = sorted({r.run_id for r in [*exp2.values(), *exp4.values()]})
    id_list = ", ".join(map(str, ids))
    rep.add(
        "```sql",
        f"SELECT * FROM searches WHERE run_id IN ({id_list});",
        "SELECT run_id, avg(accuracy), stddev_samp(accuracy), avg(size_kb), avg(seconds)",
        f"FROM search_choices WHERE run_id IN ({id_list}) GROUP BY run_id ORDER BY run_id;",
        "```",
        "",
    )
    path = out / "report.md"
    path.write_text("\n".join(rep.lines), encoding="utf-8")
    log(f"Report: {path} ({elapsed:.1f} s)")
    return path


def _saved(relu: dict[str, Any], nw: dict[str, Any]) -> str:
    a, b = relu["mean"], nw["mean"]
    if a is None or b is None or b <= 0:
        return "n/a"
    ratio = f", ×{b / a:,.0f} faster" if a > 0 else ""
    return f"{100.0 * (b - a) / b:.1f}%{ratio}"
