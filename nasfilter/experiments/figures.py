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


def plot_exp2(path: Path, exp2: dict[tuple[int, str], Any]) -> None:
    fig = _figure(9.6, 4.0)
    ax1 = fig.add_subplot(1, 2, 1)
    ax2 = fig.add_subplot(1, 2, 2)
    for m, style in zip(METRICS, ("o-", "s--"), strict=True):
        pts = sorted((n, r) for (n, mm), r in exp2.items() if mm == m)
        if not pts:
            continue
        ns = [n for n, _ in pts]
        acc = [r.summary["accuracy"] for _, r in pts]
        if any(a["mean"] is not None for a in acc):
            ax1.errorbar(
                ns,
                [a["mean"] if a["mean"] is not None else np.nan for a in acc],
                yerr=[a["std"] or 0.0 for a in acc],
                fmt=style,
                capsize=3,
                label=m,
            )
        sec = [r.summary["seconds"] for _, r in pts]
        ax2.errorbar(
            ns,
            [s["mean"] for s in sec],
            yerr=[s["std"] or 0.0 for s in sec],
            fmt=style,
            capsize=3,
            label=m,
        )
    for ax in (ax1, ax2):
        ax.set_xscale("log")
        ax.set_xlabel("N (architectures sampled)")
        ax.grid(True, alpha=0.3)
        if ax.get_legend_handles_labels()[0]:
            ax.legend()
    ax1.set_ylabel("accuracy of the choice (%)")
    ax1.set_title("Random search: accuracy (mean ± std)", fontsize=10)
    ax2.set_yscale("log")
    ax2.set_ylabel("search time (s)")
    ax2.set_title("Random search: time per repeat (mean ± std)", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)


def plot_exp3(
    path: Path, points: dict[str, list[tuple[float, float]]], mu: float, sigma: float
) -> None:
    from nasfilter.penalties import penalized

    fig = _figure(9.6, 4.0)
    for i, m in enumerate(METRICS, start=1):
        ax = fig.add_subplot(1, 2, i)
        pts = [(s, v) for s, v in points.get(m, []) if math.isfinite(v)]
        if pts:
            s = np.array([p[0] for p in pts])
            v = np.array([p[1] for p in pts])
            ax.scatter(s, v, s=6, color="0.7", label="no penalty", linewidths=0)
            for pen, marker in zip(PENALTIES, ("o", "^", "s"), strict=True):
                ax.scatter(
                    s,
                    penalized(v, s, pen, mu, sigma),
                    s=6,
                    marker=marker,
                    label=pen,
                    alpha=0.7,
                    linewidths=0,
                )
            ax.axvline(mu, color="0.5", lw=0.8)
        else:
            ax.text(0.5, 0.5, "no finite values", ha="center", va="center", transform=ax.transAxes)
        ax.set_xlabel("size (MB = size_kb / 1000)")
        ax.set_ylabel(f"{m} x penalty")
        ax.set_title(f"{m} x p(size), mu = {mu:g}, sigma = {sigma:g}", fontsize=10)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path)


def plot_exp4(path: Path, exp4: dict[tuple[str, str], Any], mu: float) -> None:
    fig = _figure(9.6, 4.0)
    ax1 = fig.add_subplot(1, 2, 1)
    ax2 = fig.add_subplot(1, 2, 2)
    labels = ["none", *PENALTIES]
    x = np.arange(len(labels))
    w = 0.38
    for j, m in enumerate(METRICS):
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
        ax1.bar(x + (j - 0.5) * w, am, w, yerr=ae, capsize=3, label=m)
        ax2.bar(x + (j - 0.5) * w, sm, w, yerr=se, capsize=3, label=m)
    ax2.axhline(mu * 1000, color="0.4", lw=0.8, ls="--", label=f"mu = {mu * 1000:g} kB")
    for ax in (ax1, ax2):
        ax.set_xticks(x, labels)
        ax.grid(True, axis="y", alpha=0.3)
        lo, hi = ax.get_ylim()
        ax.set_ylim(lo, hi * 1.25)  # room for the legend above the bars
        ax.legend(fontsize=8, loc="upper center", ncol=3)
    ax1.set_ylabel("accuracy of the choice (%)")
    ax1.set_title("Penalized random search: accuracy", fontsize=10)
    ax2.set_ylabel("size of the choice (kB)")
    ax2.set_title("Penalized random search: size", fontsize=10)
    fig.tight_layout()
    fig.savefig(path)
