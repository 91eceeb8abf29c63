"""Commands: search, reproduce."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from nasfilter.cli.options import (
    Algo,
    BatchOption,
    BnMode,
    BnModeOption,
    BudgetOption,
    BytesPerParamOption,
    DataDirOption,
    DataOption,
    DbOption,
    DeviceOption,
    FormatOption,
    MaxKbOption,
    MaxMacsOption,
    MaxRamKbOption,
    MemoryFormat,
    MemoryFormatOption,
    MuOption,
    ParamOption,
    PenaltyName,
    PopulationKind,
    ShapeOption,
    SigmaOption,
    WideOption,
    parse_params,
)
from nasfilter.cli.render import Format, err_console, render

PenaltyOption = Annotated[
    PenaltyName | None,
    typer.Option(
        "--penalty",
        help="Rank by metric x a size penalty (size = size_kb / 1000 MB).",
    ),
]
TieBreakOption = Annotated[
    str,
    typer.Option(
        "--tie-break",
        help="Ties: first (first drawn, the dissertation's rule), smallest, largest "
        "(parameters), or a metric name (its value decides, e.g. naswot).",
    ),
]


def search(
    space: Annotated[
        str | None, typer.Argument(help="Search space (see `nasfilter spaces`).")
    ] = None,
    algo: Annotated[Algo, typer.Option("--algo", help="Search algorithm.")] = Algo.random,
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
            help="Choose by this metric. \\[default: naswot for two-stage, relu_count otherwise]",
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
    tie_break: TieBreakOption = "first",
    max_kb: MaxKbOption = None,
    max_ram_kb: MaxRamKbOption = None,
    max_macs: MaxMacsOption = None,
    budget: BudgetOption = None,
    dataset: Annotated[
        str | None,
        typer.Option(
            "--dataset",
            help="Ground truth to report accuracy with, e.g. cifar10-valid, "
            "cifar10, cifar100, ImageNet16-120.",
        ),
    ] = None,
    split: Annotated[
        str | None,
        typer.Option(
            "--split",
            help="valid or test. \\[default: test if loaded, else valid]",
            show_default=False,
        ),
    ] = None,
    population: Annotated[
        PopulationKind,
        typer.Option(
            "--population",
            help="space (every architecture) or truth (only "
            "those with ground truth for --dataset).",
        ),
    ] = PopulationKind.space,
    seed: Annotated[
        int, typer.Option("--seed", help="Sampling seed; repeat r (from 1) uses seed + r - 1.")
    ] = 0,
    score_seed: Annotated[
        int, typer.Option("--score-seed", help="Seed of the score runs (input batch, weights).")
    ] = 0,
    data: DataOption = None,
    shape: ShapeOption = None,
    data_dir: DataDirOption = None,
    batch_size: BatchOption = 128,
    device: DeviceOption = "auto",
    bn_mode: BnModeOption = BnMode.batch,
    memory_format: MemoryFormatOption = MemoryFormat.channels_last,
    bytes_per_param: BytesPerParamOption = 1.0,
    param: ParamOption = None,
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
    wide: WideOption = False,
) -> None:
    """Search a space with a training-free metric and report each repeat's choice.

    Example: [bold]nasfilter search nats-tss --algo random --n 100 --repeats 10[/bold]
    """
    from nasfilter.cli.progress import progress_bar
    from nasfilter.errors import UsageError
    from nasfilter.search import SearchRequest, plan_search, read_search, run_search
    from nasfilter.store import Store

    if show is not None:
        with Store.open(db, read_only=True) as store:
            res = read_search(store, store.resolve_run(show, kind="search"))
        _print_search(res, fmt, wide)
        return
    if space is None:
        raise UsageError("Name a search space (see `nasfilter spaces`), or pass --show RUN.")
    req = SearchRequest(
        space=space,
        algo=algo.value,
        n=n,
        repeats=repeats,
        metric=metric,
        filter_metric=filter_metric,
        keep=keep,
        ea_population=ea_population,
        ea_sample=ea_sample,
        penalty=penalty.value if penalty is not None else None,
        mu=mu,
        sigma=sigma,
        tie_break=tie_break,
        budget=budget,
        max_kb=max_kb,
        max_ram_kb=max_ram_kb,
        max_macs=max_macs,
        dataset=dataset,
        split=split,
        population=population.value,
        seed=seed,
        score_seed=score_seed,
        data=data,
        shape=shape,
        data_dir=str(data_dir) if data_dir else None,
        batch_size=batch_size,
        device=device,
        bn_mode=bn_mode.value,
        memory_format=memory_format.value,
        bytes_per_param=bytes_per_param,
        params=parse_params(param),
        reuse=reuse,
    )
    planned = plan_search(req)  # validate before touching the database
    per_repeat = planned["n"] + (planned["keep"] or 0)
    total = per_repeat * planned["repeats"]

    with progress_bar(f"search {planned['algo']} {planned['space']}", total=total) as bar:

        def on_repeat(r: Any) -> None:
            bar.total(total, r.repeat * per_repeat)
            bar.print(f"repeat {r.repeat}/{repeats}: {r.arch}  {r.seconds:.3f} s ({r.time_source})")

        with Store.open(db) as store:
            res = run_search(
                store,
                req,
                command=shlex.join(["nasfilter", *sys.argv[1:]]),
                on_repeat=on_repeat,
                on_evaluated=bar.advance,
            )
    _print_search(res, fmt, wide)


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
    ties = s.get("tie_break") or "smallest"
    return (
        f"Search run {res.run_id}: {s['algo']} on {s['space']}, N={s['n']}, "
        f"{s['repeats']} repeats, by {by}{extra}, ties: {ties}{pop}"
    )


def search_rows(res: Any) -> tuple[list[str], list[tuple[Any, ...]]]:
    """One row per repeat (numbered from 1): repeat, arch, metric, value, [rank_by,
    rank_value], params, size_kb, accuracy, seconds, time_source. Every column has its
    own header, whatever the metric is called."""
    s = res.settings
    cols = ["repeat", "arch", "metric", "value"]
    if s["penalty"]:
        cols += ["rank_by", "rank_value"]
    cols += ["params", "size_kb", "accuracy", "seconds", "time_source"]
    rows = []
    for r in res.repeats:
        row: list[Any] = [r.repeat, r.arch, r.metric, r.value]
        if s["penalty"]:
            row += [s["rank_by"], r.rank_value]
        row += [r.params, r.size_kb, r.accuracy, r.seconds, r.time_source]
        rows.append(tuple(row))
    return cols, rows


def summary_rows(res: Any) -> list[tuple[Any, ...]]:
    """(quantity, mean, std, n) over the repeats."""
    s, sm = res.settings, res.summary
    names = {"value": s["metric"], "rank_value": s["rank_by"] if s["penalty"] else None}
    out = []
    for c in ("value", "rank_value", "params", "size_kb", "accuracy", "seconds", "score_seconds"):
        key = names.get(c, c)
        st = sm.get(key) if key else None
        if isinstance(st, dict) and "mean" in st:
            out.append((key, st["mean"], st["std"], st["n"]))
    return out


def summary_cells(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """The summary's rows for a table: each quantity's mean and std with decimals of
    its own (a column's shared decimals would print an aggregate's -0.29 beside params'
    2,217,066 as "-0")."""
    from nasfilter.cli.render import _decimals, fmt_number

    out = []
    for q, mean, std, n in rows:
        vals = [float(v) for v in (mean, std) if v is not None]
        d = _decimals(vals, 4)  # 4 significant digits, as fmt_mean_std
        out.append((q, fmt_number(mean, d), fmt_number(std, d), n))
    return out


def _print_search(res: Any, fmt: Format, wide: bool = False) -> None:
    cols, rows = search_rows(res)
    if fmt == Format.json:
        render(cols, rows, fmt, json_obj=res.to_json())
        return
    if fmt == Format.csv:  # the repeats only; the summary goes to stderr
        render(cols, rows, fmt)
        for q, mean, std, n in summary_rows(res):
            err_console.print(f"{q}: mean {mean}, std {std}, n {n}", markup=False, highlight=False)
        return
    render(cols, rows, fmt, title=_title(res), wide=wide)
    render(
        ["quantity", "mean", "std", "n"],
        summary_cells(summary_rows(res)),
        fmt,
        title=f"Mean ± std over {res.summary['repeats']} repeats",
    )
    for note in res.notes:
        err_console.print(note, markup=False, highlight=False, soft_wrap=True)


def reproduce(
    space: Annotated[str, typer.Option("--space", help="Search space.")] = "nats-tss",
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
            help="Architectures scored for Exp. 1. \\[default: the whole "
            "population when it has truth for at most 1000, else 1000]",
            show_default=False,
        ),
    ] = None,
    split: Annotated[
        str,
        typer.Option(
            "--split",
            help="valid or test (the dissertation's Exp. 1 uses validation accuracy).",
        ),
    ] = "valid",
    mu: MuOption = 0.2,
    sigma: SigmaOption = 0.4,
    seed: Annotated[int, typer.Option("--seed", help="Sampling seed of the searches.")] = 0,
    db: DbOption = None,
) -> None:
    """Run the dissertation's Experiments 1-4 on what is available; write DIR/report.md.

    Example: [bold]nasfilter reproduce --space nats-tss --dataset cifar10 --out report[/bold]
    """
    from nasfilter.cli.progress import progress_bar
    from nasfilter.experiments import ReproduceRequest, parse_ns
    from nasfilter.experiments import reproduce as run
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
    with progress_bar("reproduce") as bar, Store.open(db) as store:
        report = run(store, req, log=bar.print, on_total=bar.total, on_progress=bar.advance)
    typer.echo(f"Wrote {report}")
