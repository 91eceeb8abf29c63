"""The figures of ``nasfilter reproduce`` (matplotlib's Agg canvas; pyplot untouched)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

METRICS = ("relu_count", "naswot")
PENALTIES = ("gdf", "hsdf", "rdf")


def _figure(w: float = 6.4, h: float = 4.2) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(w, h), dpi=110)
    FigureCanvasAgg(fig)
    return fig


def plot_exp2(path: Path, exp2: dict[tuple[int, str], Any]) -> Any:
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


def plot_exp3(
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


def plot_exp4(path: Path, exp4: dict[tuple[str, str], Any], mu: float) -> Any:
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
