"""Figures for ``analyze --plot DIR``: each metric against accuracy, coloured by size, and a
heatmap of Kendall tau-b between the metrics, accuracy and size.

matplotlib is imported inside the functions only (Agg canvas, no display needed).
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nasfilter.errors import UsageError
from nasfilter.store import sql_literal

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.analysis.correlation import AnalysisResult
    from nasfilter.store import Store


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "metric"


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.3f}"


def _points(store: Store, res: AnalysisResult) -> dict[str, list[tuple[float, float, Any]]]:
    """{metric: [(value, accuracy, size)]} of the usable points, from analysis_points."""
    rows = store.con.execute(
        f"SELECT metric, value, accuracy, size FROM analysis_points({int(res.run_id)}, "
        f"{sql_literal(res.dataset)}, {sql_literal(res.split)}) WHERE usable "
        "ORDER BY metric, size NULLS FIRST"
    ).fetchall()
    out: dict[str, list[tuple[float, float, Any]]] = {}
    for m, v, a, s in rows:
        out.setdefault(m, []).append((v, a, s))
    return out


def plain_number(v: float, _pos: Any = None) -> str:
    """A tick label without scientific notation: 200, 1,000, 0.5, 0.002."""
    if not math.isfinite(v):
        return ""
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.6g}" if abs(v) >= 1e-4 else f"{v:.3g}"


def _PlainLinear() -> Any:
    """A tick formatter for linear axes: thousands separators, as many decimals as the
    ticks need to differ (0.25 steps: two), never an offset or scientific notation."""
    from matplotlib.ticker import Formatter

    class PlainLinear(Formatter):  # type: ignore[misc]
        ticks: list[float] = []

        def set_locs(self, locs: Any) -> None:  # the axis passes its ticks before labels
            self.ticks = [float(v) for v in locs]

        def __call__(self, x: float, pos: Any = None) -> str:
            locs = self.ticks or [float(x)]
            d = next(
                (
                    d
                    for d in range(7)
                    if all(abs(round(v, d) - v) <= 1e-9 * max(1.0, abs(v)) for v in locs)
                ),
                6,
            )
            text = f"{x:,.{d}f}"
            return "0" if text.lstrip("-") == f"{0:.{d}f}" else text

    return PlainLinear()


def plain_ticks(ax: Any) -> None:
    """Plain tick labels on both axes of ``ax`` (no "2×10¹", no "1e6" offset); call it
    after plotting. A log axis gets labelled ticks at 1, 2 and 5 times the powers of ten
    (every integer multiple when it spans less than a decade, only the powers beyond
    three decades) and no minor labels; a linear axis plain digits without an offset."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, LogLocator, NullFormatter

    for axis, lim in ((ax.xaxis, ax.get_xlim()), (ax.yaxis, ax.get_ylim())):
        if isinstance(axis.get_major_locator(), FixedLocator):
            continue  # ticks set explicitly (categories, chosen values): kept
        if axis.get_scale() == "log":
            lo, hi = sorted(abs(v) for v in lim)
            decades = math.log10(hi / lo) if lo > 0 else 99.0
            subs = (
                tuple(float(i) for i in range(1, 10))
                if decades < 1
                else (1.0, 2.0, 5.0)
                if decades <= 3
                else (1.0,)
            )
            axis.set_major_locator(LogLocator(base=10.0, subs=subs))
            axis.set_major_formatter(FuncFormatter(plain_number))
            axis.set_minor_formatter(NullFormatter())
        elif axis.get_scale() == "linear":
            axis.set_major_formatter(_PlainLinear())
            if axis is ax.xaxis and max(abs(v) for v in lim) >= 1e5:
                ax.tick_params(axis="x", labelrotation=30)  # long labels must not overlap


def dodge(xs: list[float], i: int, k: int, log: bool, width: float = 0.06) -> list[float]:
    """x positions of series ``i`` of ``k`` shifted side by side (in log space on a log
    axis), so that series with equal values stay visible next to each other."""
    off = (i - (k - 1) / 2) * width
    return [x * 10**off if log else x + off for x in xs]


def log_axis(values: list[float]) -> bool:
    """A log axis when every value is positive and they span more than two decades."""
    if not values:
        return False
    lo, hi = min(values), max(values)
    return lo > 0 and hi / lo > 100.0


def _size_norm(pts: dict[str, list[tuple[float, float, Any]]]) -> Any:
    from matplotlib.colors import LogNorm, Normalize

    sizes = [s for rows in pts.values() for _, _, s in rows if s is not None]
    if sizes and min(sizes) > 0 and max(sizes) / min(sizes) > 10:
        return LogNorm(vmin=min(sizes), vmax=max(sizes))
    if sizes:
        return Normalize(vmin=min(sizes), vmax=max(sizes))
    return None


def metric_figure(
    res: AnalysisResult, m: Any, rows: list[tuple[float, float, Any]], norm: Any = None
) -> Any:
    """One metric against accuracy: a point per architecture coloured by size; the x
    axis reversed for a lower-is-better metric (better to the right), log when the values
    span decades; the accuracy axis fits the data; plain tick labels."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(6.4, 4.8), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    if rows:
        xs = [r[0] for r in rows]
        ys = [r[1] for r in rows]
        cs = [r[2] if r[2] is not None else float("nan") for r in rows]
        sc = ax.scatter(
            xs,
            ys,
            c=cs,
            cmap="viridis",
            norm=norm,
            s=9,
            alpha=0.8,
            linewidths=0,
            rasterized=len(rows) > 5000,
        )
        if norm is not None:
            cb = fig.colorbar(sc, ax=ax)
            cb.set_label("size: params (count)")
            plain_ticks(cb.ax)
        if log_axis(xs):
            ax.set_xscale("log")
        lo, hi = min(ys), max(ys)
        pad = max((hi - lo) * 0.05, 0.5)
        ax.set_ylim(lo - pad, hi + pad)  # the data's range, not 0-100
    else:
        ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
    if m.higher_is_better:
        ax.set_xlabel(f"{m.metric} (higher is better)")
    else:  # better to the right, as the directed tau in the title reads
        ax.invert_xaxis()
        ax.set_xlabel(f"{m.metric} (lower is better: axis reversed)")
    ax.set_ylabel(f"{res.dataset} {res.split} accuracy (%)")
    ax.set_title(
        f"{m.metric} vs accuracy, direction applied: τ = {_fmt(m.kendall_tau_acc_directed)}, "
        f"ρ = {_fmt(m.spearman_acc_directed)} (n = {m.n:,})",
        fontsize=10,
    )
    if m.excluded:
        ax.annotate(
            f"{m.excluded:,} non-finite values left out",
            xy=(0.01, 0.01),
            xycoords="axes fraction",
            fontsize=8,
            color="0.4",
        )
    plain_ticks(ax)
    ax.grid(True, alpha=0.3)
    fig.tight_layout()
    return fig


def tau_figure(res: AnalysisResult) -> Any:
    """The heatmap of Kendall tau-b, direction applied, between metrics, accuracy, size."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    names, tau = res.tau_matrix(directed=True)
    lower = {m.metric for m in res.metrics if not m.higher_is_better}
    names = [f"−{n}" if n in lower else n for n in names]  # what the matrix correlates
    k = len(names)
    fig = Figure(figsize=(1.0 + 0.9 * k, 0.6 + 0.8 * k), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    grid = [[float("nan") if v is None else float(v) for v in row] for row in tau]
    im = ax.imshow(grid, cmap="RdBu_r", vmin=-1.0, vmax=1.0)
    ax.set_xticks(range(k), names, rotation=45, ha="right")
    ax.set_yticks(range(k), names)
    for i in range(k):
        for j in range(k):
            v = tau[i][j]
            txt = "–" if v is None or math.isnan(v) else f"{v:.2f}"
            ax.text(
                j,
                i,
                txt,
                ha="center",
                va="center",
                fontsize=8,
                color="white" if v is not None and abs(v) > 0.6 else "black",
            )
    cb = fig.colorbar(im, ax=ax)
    cb.set_label("Kendall τ-b (direction applied)")
    ax.set_title(
        f"Kendall τ-b, run {res.run_id}, {res.dataset} {res.split} (size = params);\n"
        "direction applied: lower-is-better metrics enter with their sign flipped",
        fontsize=9,
    )
    fig.tight_layout()
    return fig


def write_plots(store: Store, res: AnalysisResult, out_dir: str | Path) -> list[Path]:
    """Write one PNG per metric and the tau heatmap into ``out_dir``; return the paths."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--plot {out} is a file, not a folder.")
    out.mkdir(parents=True, exist_ok=True)
    pts = _points(store, res)
    tag = f"run{res.run_id}_{_safe(res.dataset)}_{res.split}"
    norm = _size_norm(pts)
    written: list[Path] = []
    for m in res.metrics:
        p = out / f"{tag}_{_safe(m.metric)}.png"
        metric_figure(res, m, pts.get(m.metric, []), norm).savefig(p)
        written.append(p)
    p = out / f"{tag}_tau_heatmap.png"
    tau_figure(res).savefig(p)
    written.append(p)
    return written
