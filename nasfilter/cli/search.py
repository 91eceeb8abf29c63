"""Commands: search, reproduce."""

from __future__ import annotations

import math
import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from nasfilter.cli import app
from nasfilter.cli.options import (
    BatchOption,
    BnModeOption,
    BytesPerParamOption,
    DataDirOption,
    DataOption,
    DbOption,
    DeviceOption,
    FormatOption,
    MuOption,
    SigmaOption,
)
from nasfilter.cli.render import Format, err_console, render

PenaltyOption = Annotated[
    str | None,
    typer.Option(
        "--penalty",
        help="Rank by metric x a size penalty: gdf, hsdf or rdf (size = size_kb / 1000 MB).",
    ),
]


@app.command()
def search(
    space: Annotated[str | None, typer.Argument(help="Search space: nats-tss or nats-sss.")] = None,
    algo: Annotated[str, typer.Option("--algo", help="random, two-stage or evolution.")] = "random",
    n: Annotated[
        int,
        typer.Option(
            "--n",
            help="Architectures evaluated per repeat (two-stage: scored by the filter metric).",
        ),
    ] = 100,
    repeats: Annotated[int, typer.Option("--repeats", "-R", help="Independent repeats.")] = 10,
    metric: Annotated[
        str | None,
        typer.Option(
            "--metric",
            "-m",
            help="Choose by this metric. (default: naswot for two-stage, relu_count otherwise)",
            show_default=False,
        ),
    ] = None,
    filter_metric: Annotated[
        str, typer.Option("--filter-metric", help="two-stage: first-stage (filter) metric.")
    ] = "relu_count",
    keep: Annotated[
        float,
        typer.Option(
            "--keep",
            help="two-stage: fraction kept for the second stage (ceil(keep x N), at least 1).",
        ),
    ] = 0.1,
    ea_population: Annotated[
        int, typer.Option("--ea-population", help="evolution: population size P (capped at N).")
    ] = 10,
    ea_sample: Annotated[
        int, typer.Option("--ea-sample", help="evolution: tournament size S.")
    ] = 3,
    penalty: PenaltyOption = None,
    mu: MuOption = 0.2,
    sigma: SigmaOption = 0.4,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="Ground truth to report accuracy with: cifar10-valid, "
            "cifar10, cifar100, ImageNet16-120.",
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            help="valid or test (default: test if loaded, else valid).",
            show_default=False,
        ),
    ] = None,
    population: Annotated[
        str,
        typer.Option(
            "--population",
            help="space (every architecture) or truth (only "
            "those with ground truth for --dataset).",
        ),
    ] = "space",
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed; repeat r uses seed + r.")] = 0,
    score_seed: Annotated[
        int, typer.Option("--score-seed", help="Seed of the score runs (input batch, weights).")
    ] = 0,
    data: DataOption = None,
    data_dir: DataDirOption = None,
    batch_size: BatchOption = 128,
    device: DeviceOption = "auto",
    bn_mode: BnModeOption = "batch",
    bytes_per_param: BytesPerParamOption = 1.0,
    reuse: Annotated[
        bool,
        typer.Option(
            "--reuse/--no-reuse",
            help="Reuse stored scores made with the same "
            "metric and settings (times are then summed).",
        ),
    ] = True,
    show: Annotated[
        str | None,
        typer.Option(
            "--show", help="Print a stored search (run id or 'latest') instead of running one."
        ),
    ] = None,
    db: DbOption = None,
    fmt: FormatOption = Format.table,
) -> None:
    """Search a space with a training-free metric and report each repeat's choice.

    Example: [bold]nasfilter search nats-tss --algo random --n 100 --repeats 10[/bold]
    """
    from nasfilter.errors import UsageError
    from nasfilter.search import SearchRequest, plan_search, read_search, run_search
    from nasfilter.store import Store

    if show is not None:
        with Store.open(db, read_only=True) as store:
            res = read_search(store, store.resolve_run(show, kind="search"))
        _print_search(res, fmt)
        return
    if space is None:
        raise UsageError("Name a search space (see `nasfilter spaces`), or pass --show RUN.")
    req = SearchRequest(
        space=space,
        algo=algo,
        n=n,
        repeats=repeats,
        metric=metric,
        filter_metric=filter_metric,
        keep=keep,
        ea_population=ea_population,
        ea_sample=ea_sample,
        penalty=penalty,
        mu=mu,
        sigma=sigma,
        dataset=dataset,
        split=split,
        population=population,
        seed=seed,
        score_seed=score_seed,
        data=data,
        data_dir=str(data_dir) if data_dir else None,
        batch_size=batch_size,
        device=device,
        bn_mode=bn_mode,
        bytes_per_param=bytes_per_param,
        reuse=reuse,
    )
    plan_search(req)  # validate before touching the database

    def on_repeat(r: Any) -> None:
        err_console.print(
            f"repeat {r.repeat + 1}/{repeats}: {r.arch}  {r.seconds:.3f} s ({r.time_source})",
            markup=False,
            highlight=False,
        )

    with Store.open(db) as store:
        res = run_search(
            store,
            req,
            command=shlex.join(["nasfilter", *sys.argv[1:]]),
            on_repeat=on_repeat if fmt == Format.table else None,
        )
    _print_search(res, fmt)


def _title(res: Any) -> str:
    s = res.settings
    extra = ""
    if s["algo"] == "two-stage":
        extra = f", {s['filter_metric']} keeps {s['keep']} of {s['n']}"
    if s["algo"] == "evolution":
        extra = f", P={s['ea_population']}, S={s['ea_sample']}"
    by = s["metric"]
    if s["penalty"]:
        p = s["penalty"]
        by = f"{s['metric']} x {p['penalty']}(mu={p['mu']:g} MB, sigma={p['sigma']:g} MB)"
    pop = "" if s["population"] == "space" else f", population {s['population_size']:,} with truth"
    return (
        f"Search run {res.run_id}: {s['algo']} on {s['space']}, N={s['n']}, "
        f"{s['repeats']} repeats, by {by}{extra}{pop}"
    )


def search_rows(res: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
    s = res.settings
    cols = ["repeat", "arch", s["metric"]]
    if s["penalty"]:
        cols.append(s["rank_by"])
    cols += ["params", "size_kb", "accuracy", "seconds", "time_source"]
    rows = []
    for r in res.repeats:
        row: list[Any] = [r.repeat, r.arch, r.value]
        if s["penalty"]:
            row.append(r.rank_value)
        row += [r.params, r.size_kb, r.accuracy, r.seconds, r.time_source]
        rows.append(tuple(row))
    return cols, rows


def _print_search(res: Any, fmt: Format) -> None:
    cols, rows = search_rows(res)
    sm = res.summary
    keys = {c: c for c in cols if isinstance(sm.get(c), dict) and "mean" in sm[c]}
    if fmt == Format.json:
        render(cols, rows, fmt, json_obj=res.to_json())
        return
    if fmt == Format.csv:
        extra = []
        for what in ("mean", "std"):
            extra.append(
                tuple(
                    what if c == "repeat" else (sm[keys[c]][what] if c in keys else None)
                    for c in cols
                )
            )
        render(cols, rows + extra, fmt)
        return
    render(cols, rows, fmt, title=_title(res))
    srows = []
    for c in cols:
        if c in keys:
            st = sm[keys[c]]
            srows.append((c, st["mean"], st["std"], st["n"]))
    srows.append(
        (
            "score_seconds",
            sm["score_seconds"]["mean"],
            sm["score_seconds"]["std"],
            sm["score_seconds"]["n"],
        )
    )
    render(
        ["quantity", "mean", "std", "n"],
        srows,
        fmt,
        title=f"Mean ± std over {sm['repeats']} repeats",
    )
    for note in res.notes:
        err_console.print(note, markup=False, highlight=False, soft_wrap=True)


def _fmt_pm(st: dict[str, Any], digits: int = 2) -> str:
    if st["mean"] is None:
        return "n/a"
    if st["std"] is None or (isinstance(st["std"], float) and math.isnan(st["std"])):
        return f"{st['mean']:.{digits}f}"
    return f"{st['mean']:.{digits}f} ± {st['std']:.{digits}f}"


@app.command()
def reproduce(
    space: Annotated[str, typer.Option("--space", help="nats-tss or nats-sss.")] = "nats-tss",
    dataset: Annotated[
        str, typer.Option("--dataset", help="cifar10, cifar10-valid, cifar100 or ImageNet16-120.")
    ] = "cifar10",
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Folder for report.md and the figures.")
    ] = Path("reproduce"),
    data: DataOption = None,
    data_dir: DataDirOption = None,
    batch_size: BatchOption = 128,
    device: DeviceOption = "auto",
    repeats: Annotated[int, typer.Option("--repeats", "-R", help="Repeats per search.")] = 10,
    ns: Annotated[
        str, typer.Option("--ns", help="Comma-separated N of the random searches.")
    ] = "10,100,1000",
    exp1_n: Annotated[
        int | None,
        typer.Option(
            "--exp1-n",
            help="Architectures scored for Exp. 1. (default: the whole "
            "population when it has truth for at most 1000, else 1000).",
            show_default=False,
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            help="valid or test (default: test if loaded, else valid).",
            show_default=False,
        ),
    ] = None,
    mu: MuOption = 0.2,
    sigma: SigmaOption = 0.4,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed of the searches.")] = 0,
    db: DbOption = None,
) -> None:
    """Run the dissertation's Experiments 1-4 on what is available; write DIR/report.md.

    Example: [bold]nasfilter reproduce --space nats-tss --dataset cifar10 --out report[/bold]
    """
    from nasfilter.reproduce import ReproduceRequest, parse_ns
    from nasfilter.reproduce import reproduce as run
    from nasfilter.store import Store

    req = ReproduceRequest(
        space=space,
        dataset=dataset,
        out=out,
        data=data,
        data_dir=str(data_dir) if data_dir else None,
        batch_size=batch_size,
        device=device,
        repeats=repeats,
        ns=parse_ns(ns),
        exp1_n=exp1_n,
        split=split,
        mu=mu,
        sigma=sigma,
        seed=seed,
    )
    req.validate()
    with Store.open(db) as store:
        report = run(store, req, log=lambda m: err_console.print(m, markup=False, highlight=False))
    typer.echo(f"Wrote {report}")
