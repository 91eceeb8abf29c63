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

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.analysis.correlation import AnalysisResult
    from nasfilter.store import Store


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "metric"


def _fmt(v: float | None) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{v:+.3f}"


def _points(store: Store, res: AnalysisResult) -> dict[str, list[tuple[float, float, Any]]]:
    """{metric: [(value, accuracy, size)]} of the usable points, from analysis_points."""
    lit = res.dataset.replace("'", "''")
    rows = store.con.execute(
        f"SELECT metric, value, accuracy, size FROM analysis_points({int(res.run_id)}, "
        f"'{lit}', '{res.split}') WHERE usable ORDER BY metric, size NULLS FIRST"
    ).fetchall()
    out: dict[str, list[tuple[float, float, Any]]] = {}
    for m, v, a, s in rows:
        out.setdefault(m, []).append((v, a, s))
    return out


def log_axis(values: list[float]) -> bool:
    """A log axis when every value is positive and they span more than two decades."""
    if not values:
        return False
    lo, hi = min(values), max(values)
    return lo > 0 and hi / lo > 100.0


def write_plots(store: Store, res: AnalysisResult, out_dir: str | Path) -> list[Path]:
    """Write one PNG per metric and the tau heatmap into ``out_dir``; return the paths."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.colors import LogNorm, Normalize
    from matplotlib.figure import Figure

    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise UsageError(f"--plot {out} is a file, not a folder.")
    out.mkdir(parents=True, exist_ok=True)
    pts = _points(store, res)
    tag = f"run{res.run_id}_{_safe(res.dataset)}_{res.split}"
    written: list[Path] = []

    sizes = [s for rows in pts.values() for _, _, s in rows if s is not None]
    if sizes and min(sizes) > 0 and max(sizes) / min(sizes) > 10:
        norm: Any = LogNorm(vmin=min(sizes), vmax=max(sizes))
    elif sizes:
        norm = Normalize(vmin=min(sizes), vmax=max(sizes))
    else:
        norm = None

    for m in res.metrics:
        rows = pts.get(m.metric, [])
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
            if log_axis(xs):
                ax.set_xscale("log")
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
        ax.grid(True, alpha=0.3)
        fig.tight_layout()
        p = out / f"{tag}_{_safe(m.metric)}.png"
        fig.savefig(p)
        written.append(p)

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
    p = out / f"{tag}_tau_heatmap.png"
    fig.savefig(p)
    written.append(p)
    return written
