"""Figures: accuracy axes fit the data (not 0-120%), series with equal values stay
visible side by side, and tick labels are plain numbers (no "2×10¹", no "1e6" offset).
Read from the matplotlib figures themselves (axis limits, tick label text, artists)."""

from __future__ import annotations

import re
from pathlib import Path
from types import SimpleNamespace

import pytest

from nasfilter.experiments.figures import plot_exp2 as _plot_exp2
from nasfilter.experiments.figures import plot_exp3 as _plot_exp3
from nasfilter.experiments.figures import plot_exp4 as _plot_exp4

PLAIN = re.compile(r"^[−-]?\d{1,3}(,\d{3})*(\.\d+)?$")


def _labels(fig, ax, which: str) -> list[str]:  # type: ignore[no-untyped-def]
    """Tick label texts as drawn (savefig has drawn the figure; others draw first)."""
    ticks = ax.get_xticklabels() if which == "x" else ax.get_yticklabels()
    return [t.get_text() for t in ticks if t.get_text()]


def _plain(labels: list[str]) -> bool:
    return bool(labels) and all(PLAIN.match(t) for t in labels)


def _offset(ax, which: str) -> str:  # type: ignore[no-untyped-def]
    axis = ax.xaxis if which == "x" else ax.yaxis
    return axis.get_offset_text().get_text()


def _result(acc: float, acc_std: float, sec: float, kb: float = 150.0):  # type: ignore[no-untyped-def]
    return SimpleNamespace(
        summary={
            "accuracy": {"mean": acc, "std": acc_std},
            "seconds": {"mean": sec, "std": sec * 0.1},
            "size_kb": {"mean": kb, "std": 10.0},
        }
    )


def test_exp2_accuracy_axis_fits_and_equal_series_stay_visible(tmp_path: Path) -> None:
    exp2 = {
        # the two metrics choose alike at N = 10 and 1000: equal means and stds
        (10, "relu_count"): _result(92.70, 0.30, 0.002),
        (10, "naswot"): _result(92.70, 0.30, 0.9),
        (100, "relu_count"): _result(93.20, 0.25, 0.004),
        (100, "naswot"): _result(93.05, 0.20, 4.0),
        (1000, "relu_count"): _result(93.30, 0.10, 0.02),
        (1000, "naswot"): _result(93.30, 0.10, 31.0),
    }
    fig = _plot_exp2(tmp_path / "exp2.png", exp2)
    assert (tmp_path / "exp2.png").read_bytes()[:4] == b"\x89PNG"
    ax1, ax2 = fig.axes[:2]
    lo, hi = ax1.get_ylim()
    assert 91.0 < lo < 92.4 and 93.4 < hi < 95.0  # 92.4-93.4 in view, not 0-120
    relu, nw = (c.lines[0] for c in ax1.containers)
    assert relu.get_marker() != nw.get_marker()
    xr, xn = list(relu.get_xdata()), list(nw.get_xdata())
    assert all(a < b for a, b in zip(xr, xn, strict=True))  # side by side, not on top
    assert list(relu.get_ydata()) == [92.70, 93.20, 93.30]
    for ax in (ax1, ax2):
        assert _plain(_labels(fig, ax, "x")) and _offset(ax, "x") == ""
    assert _labels(fig, ax1, "x") == ["10", "100", "1,000"]
    ys = _labels(fig, ax2, "y")  # log time axis over four decades: plain numbers
    assert len(ys) >= 3 and all(re.match(r"^\d[\d,]*(\.\d+)?$", t) for t in ys), ys
    assert "×" not in "".join(ys) and "$" not in "".join(ys)


def test_exp2_time_axis_within_one_decade_still_has_plain_labels(tmp_path: Path) -> None:
    secs = {"relu_count": 2.0, "naswot": 3.0}  # 2.1 to 4.0 s: within one decade
    exp2 = {(n, m): _result(90.0, 0.5, secs[m] + n / 100) for n in (10, 100) for m in secs}
    fig = _plot_exp2(tmp_path / "exp2.png", exp2)
    ys = _labels(fig, fig.axes[1], "y")
    assert len(ys) >= 2 and all(re.match(r"^\d[\d,]*(\.\d+)?$", t) for t in ys), ys


def test_exp4_accuracy_is_points_on_an_axis_fitted_to_the_data(tmp_path: Path) -> None:
    exp4 = {}
    for m, base in (("relu_count", 92.0), ("naswot", 92.0)):  # equal: must stay visible
        for k, pen in enumerate(("none", "gdf", "hsdf", "rdf")):
            exp4[(m, pen)] = _result(base - k * 0.8, 0.3, 1.0, kb=400.0 - 80 * k)
    fig = _plot_exp4(tmp_path / "exp4.png", exp4, mu=0.2)
    ax1, ax2 = fig.axes[:2]
    lo, hi = ax1.get_ylim()
    assert 88.5 < lo < 89.3 and 92.3 < hi < 93.5  # 89.3-92.3 in view, not 0-120
    a, b = (c.lines[0] for c in ax1.containers)
    assert all(x < y for x, y in zip(a.get_xdata(), b.get_xdata(), strict=True))
    assert list(a.get_ydata()) == list(b.get_ydata())  # equal values, both visible
    assert _plain(_labels(fig, ax1, "y")) and _plain(_labels(fig, ax2, "y"))
    assert _labels(fig, ax1, "x") == _labels(fig, ax2, "x") == ["none", "gdf", "hsdf", "rdf"]
    assert ax2.get_ylim()[0] == 0.0  # sizes stay bars from zero


def test_exp3_labels_are_plain_and_unpenalized_points_show_under_the_rest(
    tmp_path: Path,
) -> None:
    sizes = [0.05, 0.1, 0.15, 0.3, 0.6, 1.1]
    points = {
        "relu_count": [(s, 400000.0 + 1.5e6 * s) for s in sizes],
        "naswot": [(s, 1500.0 + 100 * s) for s in sizes],
    }
    fig = _plot_exp3(tmp_path / "exp3.png", points, 0.2, 0.4)
    for ax in fig.axes[:2]:
        ys = _labels(fig, ax, "y")
        assert _plain(ys) and _offset(ax, "y") == "", ys
        assert _plain(_labels(fig, ax, "x"))
        raw = ax.collections[0]
        assert raw.get_label() == "no penalty"
        assert raw.get_facecolors().size == 0 or raw.get_facecolors()[0][3] == 0.0  # open
        assert raw.get_sizes()[0] > max(c.get_sizes()[0] for c in ax.collections[1:])
    assert any("2,000,000" in t or "1,500,000" in t for t in _labels(fig, fig.axes[0], "y"))


def test_analyze_figure_fits_accuracy_and_labels_a_log_axis_plainly() -> None:
    from nasfilter.analysis.plots import metric_figure

    res = SimpleNamespace(dataset="cifar10-valid", split="valid")
    m = SimpleNamespace(
        metric="relu_count",
        higher_is_better=True,
        kendall_tau_acc_directed=0.5,
        spearman_acc_directed=0.6,
        n=4,
        excluded=0,
    )
    rows = [(1000.0, 85.2, 1e4), (20000.0, 88.0, 1e5), (300000.0, 90.1, 5e5), (2e6, 91.0, 1e6)]
    fig = metric_figure(res, m, rows)
    fig.canvas.draw()
    ax = fig.axes[0]
    lo, hi = ax.get_ylim()
    assert 84.0 < lo < 85.2 and 91.0 < hi < 92.5
    assert ax.get_xscale() == "log"
    xs = _labels(fig, ax, "x")
    assert _plain(xs) and "1,000,000" in xs, xs
    m.higher_is_better = False
    fig = metric_figure(res, m, rows)
    left, right = fig.axes[0].get_xlim()
    assert left > right  # lower is better: reversed, better to the right


@pytest.mark.parametrize(
    "v,text", [(2e1, "20"), (1e6, "1,000,000"), (0.5, "0.5"), (0.002, "0.002")]
)
def test_plain_number(v: float, text: str) -> None:
    from nasfilter.analysis.plots import plain_number

    assert plain_number(v) == text
