"""Commands: analyze (how well each metric predicts accuracy and size)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasfilter.cli import app
from nasfilter.cli.options import DbOption, FormatOption, RunOption, ShowSqlOption
from nasfilter.cli.render import Format, console, err_console, render


def _f(v: float | None, digits: int = 4) -> float | None:
    return None if v is None else round(float(v), digits)


@app.command()
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
    split: Annotated[str, typer.Option("--split", help="valid or test.")] = "valid",
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
    from nasfilter.analysis.correlation import analyze_run, default_dataset
    from nasfilter.store import Store
    from nasfilter.truth import canonical_dataset, canonical_split

    split = canonical_split(split)
    if dataset is not None:
        dataset = canonical_dataset(dataset)
    with Store.open(db, read_only=True) as store:
        run_id = store.resolve_run(run, kind="score")
        if dataset is None:
            dataset = default_dataset(store, run_id, split)
            if fmt == Format.table:
                err_console.print(
                    f"Dataset: {dataset} (pass --dataset to choose another)", highlight=False
                )
        res = analyze_run(store, run_id, dataset, split)
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


def _tables(res) -> None:  # type: ignore[no-untyped-def]
    head = (
        f"Run {res.run_id} ({res.space}) vs {res.dataset} {res.split} accuracy: "
        f"{res.archs_with_truth:,} architectures with truth, best {res.best_accuracy:.2f}%"
    )
    console.print(head, highlight=False)
    render(
        [
            "metric",
            "better",
            "n",
            "excluded",
            "distinct",
            "tau acc",
            "rho acc",
            "tau size",
            "rho size",
        ],
        [
            (
                m.metric,
                "higher" if m.higher_is_better else "lower",
                m.n,
                m.excluded,
                m.distinct_values,
                _f(m.kendall_tau_acc),
                _f(m.spearman_acc),
                _f(m.kendall_tau_size),
                _f(m.spearman_size),
            )
            for m in res.metrics
        ],
        Format.table,
        title="Rank correlation (Kendall tau-b, Spearman rho)",
    )
    render(
        [
            "metric",
            "top1 acc",
            "top10 mean",
            "top10 best",
            "top100 mean",
            "top100 best",
            "gap@1",
            "gap@10",
            "gap@100",
        ],
        [
            (
                m.metric,
                _f(m.top1_best_acc, 2),
                _f(m.top10_mean_acc, 2),
                _f(m.top10_best_acc, 2),
                _f(m.top100_mean_acc, 2),
                _f(m.top100_best_acc, 2),
                _f(m.top1_gap, 2),
                _f(m.top10_gap, 2),
                _f(m.top100_gap, 2),
            )
            for m in res.metrics
        ],
        Format.table,
        title="Top-k by each metric: true accuracy (%), gap to the best scored "
        f"({res.best_accuracy:.2f}%)",
    )
    if res.pairs:
        render(
            ["a", "b", "n", "tau", "rho"],
            [(p.a, p.b, p.n, _f(p.kendall_tau), _f(p.spearman_rho)) for p in res.pairs],
            Format.table,
            title="Between metrics, and accuracy vs size",
        )
    excluded = [m for m in res.metrics if m.excluded]
    for m in excluded:
        err_console.print(
            f"{m.metric}: {m.excluded:,} non-finite values (NaN/inf) left out", markup=False
        )
