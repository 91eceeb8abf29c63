"""Commands: analyze (how well each metric predicts accuracy and size)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasfilter.cli.options import DbOption, FormatOption, RunOption, ShowSqlOption
from nasfilter.cli.render import Format, console, err_console, render


def analyze(
    run: RunOption = "latest",
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            "-d",
            help="NATS-Bench dataset of the truth (any case). "
            "\\[default: the only one with truth for the run, else the one matching "
            "the run's input shape]",
            show_default=False,
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            help="valid or test. \\[default: valid if the run has validation truth, else test]",
            show_default=False,
        ),
    ] = None,
    plot: Annotated[
        Path | None,
        typer.Option(
            "--plot",
            help="Write PNG figures into this folder (created if absent).",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
    show_sql: ShowSqlOption = False,
) -> None:
    """How well each metric of a run predicts accuracy and size.

    Per metric, over the architectures with ground truth: Kendall tau-b and Spearman rho
    against accuracy and size (params), between metrics, and the accuracy of the top
    1/10/100.

    Example: [bold]nasfilter truth sample && nasfilter analyze --dataset cifar10-valid[/bold]
    """
    from nasfilter.analysis.correlation import analyze_run, default_dataset_split
    from nasfilter.store import Store

    with Store.open(db, read_only=True) as store:
        run_id = store.resolve_run(run, kind="score")
        chosen, chosen_split = default_dataset_split(store, run_id, dataset, split)
        if fmt == Format.table and (dataset is None or split is None):
            err_console.print(
                f"Dataset: {chosen}, split: {chosen_split} "
                "(pass --dataset/--split to choose another).",
                highlight=False,
            )
        res = analyze_run(store, run_id, chosen, chosen_split)
        written = []
        if plot is not None:
            from nasfilter.analysis.plots import write_plots

            written = write_plots(store, res, plot)
    if show_sql:
        err_console.print(";\n".join(res.sql) + ";", markup=False, highlight=False)
    if fmt == Format.json:
        obj = res.to_json()
        obj["plots"] = [str(p) for p in written]
        render([], [], fmt, json_obj=obj)
    elif fmt == Format.csv:
        render(res.columns, res.rows, fmt)
    else:
        _tables(res)
    for p in written:
        err_console.print(f"Wrote {p}", markup=False, highlight=False)


def _tau(v: float | None) -> str:
    return "" if v is None else f"{v:+.4f}"


def _acc(v: float | None) -> str:
    return "" if v is None else f"{v:.2f}"


def _tables(res) -> None:  # type: ignore[no-untyped-def]
    head = (
        f"Run {res.run_id} ({res.space}) vs {res.dataset} {res.split} accuracy: "
        f"{res.archs_with_truth:,} architectures with truth, best {_acc(res.best_accuracy)}%"
    )
    console.print(head, highlight=False)
    render(  # excluded (non-finite) values: counted on stderr below, and in csv/json
        ["metric", "better", "n", "distinct", "τ acc", "ρ acc", "τ size", "ρ size", "inputs"],
        [
            (
                m.metric,
                "higher" if m.higher_is_better else "lower",
                m.n,
                m.distinct_values,
                _tau(m.kendall_tau_acc_directed),
                _tau(m.spearman_acc_directed),
                _tau(m.kendall_tau_size_directed),
                _tau(m.spearman_size_directed),
                m.inputs,
            )
            for m in res.metrics
        ],
        Format.table,
        title="Kendall tau-b and Spearman rho, direction applied",
    )
    console.print(
        "Direction applied: a lower-is-better metric enters with its sign flipped, so + means "
        "the networks the metric prefers are more accurate (acc) or larger (size).",
        highlight=False,
    )
    rows = []
    for m in res.metrics:
        for k in (1, 10, 100):
            tie_n = getattr(m, f"top{k}_tie_n")
            take = getattr(m, f"top{k}_tie_take")
            lo, hi = getattr(m, f"top{k}_tie_min_acc"), getattr(m, f"top{k}_tie_max_acc")
            tied = f"{take:,} of {tie_n:,}" if tie_n and tie_n > take else ""
            rows.append(
                (
                    m.metric,
                    k,
                    _acc(getattr(m, f"top{k}_mean_acc")),
                    _acc(getattr(m, f"top{k}_best_acc")),
                    _acc(getattr(m, f"top{k}_gap")),
                    tied,
                    f"{_acc(lo)}–{_acc(hi)}" if tied else "",
                )
            )
    render(
        ["metric", "k", "mean acc", "best acc", "gap", "tied at cut", "tied acc"],
        rows,
        Format.table,
        title="Top-k by each metric: true accuracy (%)",
    )
    console.print(
        f"Best first in each metric's direction; gap: to the best scored "
        f"({_acc(res.best_accuracy)}%). Where the k end inside a group of equal values, mean "
        "and best are expected over a random choice within that group; tied at cut: how many "
        "of the group the k take; tied acc: the group's accuracy range.",
        highlight=False,
    )
    if res.pairs:
        render(
            ["a", "b", "n", "τ", "ρ"],
            [
                (p.a, p.b, p.n, _tau(p.kendall_tau_directed), _tau(p.spearman_rho_directed))
                for p in res.pairs
            ],
            Format.table,
            title="Between metrics, direction applied",
        )
    excluded = [m for m in res.metrics if m.excluded]
    for m in excluded:
        err_console.print(
            f"{m.metric}: {m.excluded:,} non-finite values (NaN/inf) left out.", markup=False
        )
