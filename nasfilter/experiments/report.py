"""Writing the report of ``nasfilter reproduce``: ``report.md`` and its figures, from the
``Results`` of ``nasfilter.experiments.run``."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from nasfilter.errors import UsageError
from nasfilter.experiments.run import BEST_SINGLE, FILTERS, METRICS, PENALTIES, Results
from nasfilter.store import Store


def prepare_out(out: Path) -> Path:
    """The report folder, created; refused when it is a file."""
    out = Path(out).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a folder.")
    out.mkdir(parents=True, exist_ok=True)
    return out


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
    """Mean ± std with three significant digits in both."""
    if st["mean"] is None:
        return "n/a"
    if st["std"] is None:
        return f"{st['mean']:.3g}"
    return f"{st['mean']:.3g} ± {st['std']:.3g}"


def _basis(summary: dict[str, Any]) -> str:
    ts = summary["time_source"]
    return ", ".join(f"{v} {k}" for k, v in ts.items() if v) or "n/a"


def _saved(relu: dict[str, Any], nw: dict[str, Any]) -> str:
    a, b = relu["mean"], nw["mean"]
    if a is None or b is None or b <= 0:
        return "n/a"
    ratio = f", ×{b / a:,.0f} faster" if a > 0 else ""
    return f"{100.0 * (b - a) / b:.1f}%{ratio}"


def write_figures(store: Store, res: Results, out: Path) -> list[str]:
    """Every figure of the report, written to ``out``; their file names."""
    from nasfilter.experiments.figures import plot_exp2, plot_exp3, plot_exp4
    from nasfilter.penalties import plot_penalties

    names: list[str] = []
    if res.exp1 is not None:
        from nasfilter.analysis.plots import write_plots

        names += [p.name for p in write_plots(store, res.exp1, out)]
    if res.exp2:
        plot_exp2(out / "exp2_random_search.png", res.exp2)
        names.append("exp2_random_search.png")
    plot_penalties(out / "exp3_penalties.png", res.req.mu, res.req.sigma)
    names.append("exp3_penalties.png")
    plot_exp3(out / "exp3_penalized_scores.png", res.exp3_points, res.req.mu, res.req.sigma)
    names.append("exp3_penalized_scores.png")
    if res.exp4:
        plot_exp4(out / "exp4_penalized_search.png", res.exp4, res.req.mu)
        names.append("exp4_penalized_search.png")
    return names


def _search_header(what: str) -> list[str]:
    """The columns of the random-search tables (Exp. 2 and Exp. 5); ``what``: the name of
    the second column."""
    return ["N", what, "search run", "accuracy (%)", "size (kB)", "time (s)", "Σ score s",
            "time basis"]  # fmt: skip


def _skipped(res: Results) -> str:
    return (
        f"N = {', '.join(map(str, res.skipped))} skipped: larger than the population "
        f"({res.pop_size:,})."
    )


def _search_row(n: int, metric: str, r: Any) -> tuple[Any, ...]:
    """A random-search row of Exp. 2 and Exp. 5: N, metric, run, accuracy, size, times."""
    s = r.summary
    return (
        n,
        metric,
        r.run_id,
        _pm(s["accuracy"]),
        _pm(s["size_kb"], 1),
        _pm_g(s["seconds"]),
        _pm_g(s["score_seconds"]),
        _basis(s),
    )


def write_report(store: Store, res: Results, out: Path) -> Path:
    """``out/report.md`` and its figures; returns the report's path."""
    figures = write_figures(store, res, out)
    req = res.req
    rep = _Report()
    size = f"{res.space_size:,} architectures" if res.space_size else "sampled only"
    rep.add(f"# nasfilter reproduce: {res.space}, {req.dataset}", "")
    rep.add(
        "Experiments 1-4 of the dissertation, run by `nasfilter reproduce` on what this "
        "database holds. The tables follow the layout of the dissertation's tables; the "
        "dissertation's own figures are not reproduced here (its tables were published as "
        "images), so nothing below is a like-for-like comparison with them. Every number "
        f"below is stored in the database (`{res.db_path}`) and can be recomputed with SQL "
        "(see docs/search.md).",
        "",
    )
    rep.add("## Setup", "")
    rep.table(
        ["item", "value"],
        [
            ("space", f"{res.space} ({size})"),
            ("ground truth", res.truth.source),
            (
                "population",
                (
                    "the architectures with ground truth"
                    if res.population == "truth"
                    else "the whole space"
                )
                + (f" ({res.pop_size:,})" if res.pop_size else ""),
            ),
            (
                "NASWOT inputs",
                "synthetic (seeded Gaussian images; no --data given)"
                if res.data == "synthetic"
                else f"{res.data} (a mini-batch drawn with seed {req.score_seed})",
            ),
            ("batch size K", req.batch_size),
            ("device", req.device),
            ("repeats", req.repeats),
            ("N", ", ".join(str(n) for n in res.ns) or "none"),
            ("penalty mu, sigma (MB)", f"{req.mu:g}, {req.sigma:g}"),
            ("sampling seed", f"{req.seed} (repeat r, from 1, uses seed + r - 1)"),
            ("ties", "first drawn (the dissertation's Algorithm 1)"),
            ("wall time of this reproduce", f"{res.seconds:.1f} s"),
        ],
    )
    notes = []
    if res.truth.sample:
        notes.append(
            "No full ground truth for this dataset is loaded: this report uses "
            "the shipped sample, and every search samples only among its "
            "architectures (`--population truth`). Load the benchmark with "
            "`nasfilter truth load` for the full space."
        )
    if res.truth.dataset is None:
        notes.append("No ground truth: accuracy columns are n/a and Exp. 1 is skipped.")
    if res.data == "synthetic":
        notes.append(
            "NASWOT is computed on synthetic inputs (no `--data`): its values, and "
            "so its correlations and choices, differ from those on real images."
        )
    if res.skipped:
        notes.append(_skipped(res))
    for note in notes:
        rep.add(f"- {note}")
    rep.add("")

    rep.add("## Experiment 1: Kendall τ against accuracy", "")
    rep.add(
        f"Score run {res.exp1_run} ({'reused' if res.exp1_reused else 'new'}): "
        f"{res.exp1_what}, scored with relu_count and NASWOT (networks built; relu_count "
        "from the same forward pass).",
        "",
    )
    if res.exp1 is not None:
        e1 = res.exp1
        rows: list[tuple[Any, ...]] = [
            (m.metric, m.n, m.kendall_tau_acc, m.spearman_acc, m.kendall_tau_size, m.excluded)
            for m in e1.metrics
        ]
        rep.add(
            f"Against {e1.dataset} {e1.split} accuracy "
            f"({e1.archs_with_truth:,} architectures with truth); size = params.",
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
            if f.startswith(f"run{res.exp1_run}_"):
                rep.add(f"![{f}]({f})", "")
    else:
        rep.add(res.exp1_note, "")

    rep.add("## Experiment 2: random search (layout of Table 6)", "")
    rep.add(
        "Algorithm 1: sample N architectures, keep the best by the metric (ties: the first "
        f"drawn); {req.repeats} repeats. Time: per repeat, the wall time of the scoring it "
        "did (measured), plus the stored per-architecture seconds of the scores it reused "
        "(summed); the time basis column says which. Σ score s: the stored "
        "per-architecture scoring seconds of all N, the same basis for both metrics. "
        "Time saved = 100 × (T_NASWOT − T_relu) / T_NASWOT. Note the basis of the "
        "speed-up: relu_count is computed analytically from the identity (no network is "
        "built), while NASWOT builds every network and runs a forward pass; relu_count "
        "through a forward pass costs about as much as NASWOT's (Exp. 1 computes both in "
        "the same pass).",
        "",
    )
    rows = []
    for n in res.ns:
        r_relu, r_nw = res.exp2[(n, "relu_count")], res.exp2[(n, "naswot")]
        for m, r in (("relu_count", r_relu), ("naswot", r_nw)):
            rows.append(_search_row(n, m, r))
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
            _search_header("metric"),
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
        f"Each metric × p(size) over the {res.exp1_archs:,} architectures of score run "
        f"{res.exp1_run}:",
        "",
    )
    rep.add("![penalized scores](exp3_penalized_scores.png)", "")

    rep.add("## Experiment 4: penalized random search (layout of Table 7)", "")
    if res.n4 is not None:
        rep.add(
            f"Random search, N = {res.n4}, {req.repeats} repeats, ranked by metric × p(size). "
            f"≤ mu: repeats whose choice is within the {req.mu * 1000:g} kB target.",
            "",
        )
        rows = []
        for m in METRICS:
            for pen in ("none", *PENALTIES):
                r = res.exp4[(m, pen)]
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
                        _basis(r.summary),
                    )
                )
        rep.table(
            [
                "metric",
                "penalty",
                "search run",
                "accuracy (%)",
                "size (kB)",
                "≤ mu",
                "time (s)",
                "time basis",
            ],
            rows,
        )
        rep.add("![exp4](exp4_penalized_search.png)", "")
    else:
        rep.add("No N fits the population.", "")
    rep.add("## Experiment 5: filters compared in random search", "")
    rep.add(
        "Not in the dissertation (nasfilter issue 11). Random search as in Exp. 2 (the "
        "relu_count and NASWOT rows are Exp. 2's searches), with "
        f"{BEST_SINGLE} (the best single metric by Kendall τ on the shipped NAS-Bench-201 "
        "CIFAR-10 sample) and the two ensembles: ensemble_free (data-free inputs) and "
        "ensemble (any inputs); docs/metrics.md describes them. A rank aggregate ranks "
        "within each repeat's N candidates." + (" " + _skipped(res) if res.skipped else ""),
        "",
    )
    rows = []
    for n in res.ns:
        for m in FILTERS:
            r = res.exp5.get((n, m))
            if r is None:
                continue
            rows.append(_search_row(n, m, r))
    if rows:
        rep.table(
            _search_header("filter"),
            rows,
        )
    else:
        rep.add("No N fits the population.", "")
    rep.add("## Recompute", "")
    ids = sorted({r.run_id for r in [*res.exp2.values(), *res.exp4.values(), *res.exp5.values()]})
    id_list = ", ".join(map(str, ids))
    if ids:
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
    return path
