"""Commands: spaces, metrics, score, runs, top, sql, export."""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Annotated

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
    RunOption,
    ShowSqlOption,
    SigmaOption,
    WideOption,
)
from nasfilter.cli.render import Format, console, err_console, render


@app.command()
def spaces(fmt: FormatOption = Format.table) -> None:
    """List the search spaces, their sizes and what scoring them needs."""
    from nasfilter.metrics import list_metrics
    from nasfilter.spaces import list_spaces

    rows = []
    for s in list_spaces():
        needs: dict[str, list[str]] = {}
        for m in list_metrics():
            needs.setdefault(s.needs(m), []).append(m.name)
        what = "; ".join(f"{', '.join(names)}: {n}" for n, names in needs.items())
        rows.append((s.name, s.size, s.notation, what, s.description))
    render(["space", "size", "identity", "needs", "description"], rows, fmt, title="Search spaces")


@app.command()
def metrics(fmt: FormatOption = Format.table) -> None:
    """List the metrics and their metadata."""
    from nasfilter.metrics import list_metrics

    rows = [
        (
            m.name,
            m.version,
            "higher" if m.higher_is_better else "lower",
            "yes" if m.needs_model else "no",
            "yes" if m.needs_data else "no",
            "yes" if m.needs_gradients else "no",
            m.description,
        )
        for m in list_metrics()
    ]
    render(
        [
            "metric",
            "version",
            "better",
            "needs model",
            "needs data",
            "needs gradients",
            "description",
        ],
        rows,
        fmt,
        title="Metrics",
    )


@app.command()
def info(
    space: Annotated[str, typer.Argument(help="Search space, e.g. nats-tss.")],
    arch: Annotated[str, typer.Argument(help="Architecture identity in the space's notation.")],
    data: Annotated[
        str, typer.Option("--data", help="Dataset shape: cifar10, cifar100, imagenet16-120.")
    ] = "cifar10",
    bytes_per_param: BytesPerParamOption = 1.0,
    fmt: FormatOption = Format.table,
    wide: WideOption = False,
) -> None:
    """Analytic params, flops, relu_count and size_kb of one architecture.

    No network is built.
    """
    from nasfilter.spaces import get_dataset_shape, get_space

    sp = get_space(space)
    canonical = sp.canonical(arch)
    c = sp.costs(canonical, get_dataset_shape(data))
    rows = [
        (
            sp.name,
            canonical,
            sp.rank(canonical),
            c.params,
            c.flops,
            c.relu_count,
            c.params * bytes_per_param / 1000.0,
        )
    ]
    render(
        ["space", "arch", "rank", "params", "flops", "relu_count", "size_kb"], rows, fmt, wide=wide
    )


@app.command()
def score(
    space: Annotated[
        str | None, typer.Argument(help="Search space, e.g. nats-tss, nats-sss.")
    ] = None,
    n: Annotated[int | None, typer.Option("--n", help="Number of architectures to sample.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Score every architecture of the space.")
    ] = False,
    metrics: Annotated[
        str,
        typer.Option("--metrics", "-m", help="Comma-separated metrics (see `nasfilter metrics`)."),
    ] = "relu_count,params,flops,size_kb",
    seed: Annotated[int, typer.Option("--seed", help="Sampling, batch and init seed.")] = 0,
    data: DataOption = None,
    data_dir: DataDirOption = None,
    download: Annotated[bool, typer.Option("--download", help="Fetch CIFAR if absent.")] = False,
    batch_size: BatchOption = 128,
    device: DeviceOption = "auto",
    bn_mode: BnModeOption = "batch",
    bytes_per_param: BytesPerParamOption = 1.0,
    penalty: Annotated[
        str | None,
        typer.Option(
            "--penalty",
            help="Also store each higher-is-better metric times a size "
            "penalty: gdf, hsdf or rdf (as <metric>_<penalty>).",
        ),
    ] = None,
    mu: MuOption = 0.2,
    sigma: SigmaOption = 0.4,
    resume: Annotated[
        str | None, typer.Option("--resume", help="Finish an interrupted run (id or 'latest').")
    ] = None,
    db: DbOption = None,
) -> None:
    """Score architectures of a search space and store the results.

    Example: [bold]nasfilter score nats-tss --all[/bold]
    """
    from nasfilter import engine
    from nasfilter.errors import UsageError
    from nasfilter.store import Store

    if resume is None and space is None:
        raise UsageError("Name a search space (see `nasfilter spaces`), or pass --resume RUN.")
    req = None
    if resume is None:
        req = engine.ScoreRequest(
            space=space or "",
            n=n,
            all=all_,
            metrics=metrics,
            seed=seed,
            data=data,
            data_dir=str(data_dir) if data_dir else None,
            download=download,
            batch_size=batch_size,
            device=device,
            bn_mode=bn_mode,
            bytes_per_param=bytes_per_param,
            penalty=penalty,
            mu=mu,
            sigma=sigma,
        )
        engine.plan(req)  # validate before touching the database
    with Store.open(db) as store:
        if resume is not None:
            run_id = store.resolve_run(resume, kind="score")
            run = store.get_run(run_id)
            if run["status"] == "completed":
                err_console.print(f"Run {run_id} is already complete.")
                return
        else:
            assert req is not None
            run_id = engine.start(store, req, command=shlex.join(["nasfilter", *sys.argv[1:]]))
        settings = store.get_run(run_id)["settings"]
        summary = _execute_with_progress(store, run_id, settings)
    _print_summary(summary, store.path)


def _execute_with_progress(store, run_id, settings):  # type: ignore[no-untyped-def]
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    from nasfilter import engine

    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.speed:>8.0f}/s" if False else "[cyan]{task.fields[rate]}"),
        TimeElapsedColumn(),
        TextColumn("ETA"),
        TimeRemainingColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        task = progress.add_task(f"run {run_id} {settings['space']}", total=None, rate="")

        def on_total(total: int, done: int) -> None:
            progress.update(task, total=total, completed=done)

        def on_progress(k: int) -> None:
            progress.advance(task, k)
            t = progress.tasks[0]
            if t.speed:
                progress.update(task, rate=f"{t.speed:,.0f} arch/s")

        return engine.execute(store, run_id, on_progress=on_progress, on_total=on_total)


def _print_summary(s, db_path) -> None:  # type: ignore[no-untyped-def]
    err_console.print(
        f"Run [bold]{s.run_id}[/] {s.status}: {s.archs_scored:,} architectures scored"
        + (f" ({s.archs_skipped:,} already stored)" if s.archs_skipped else "")
        + f", {s.rows:,} rows in {s.seconds:.2f} s → {db_path}"
    )
    for metric, counts in sorted(s.statuses.items()):
        bad = {k: v for k, v in counts.items() if k != "ok"}
        if bad:
            detail = ", ".join(f"{v:,} {k}" for k, v in sorted(bad.items()))
            err_console.print(f"  {metric}: {detail}", markup=False)


@app.command()
def runs(db: DbOption = None, fmt: FormatOption = Format.table) -> None:
    """List the runs in the database."""
    from nasfilter.store import Store

    with Store.open(db, read_only=True) as store:
        cols, rows = store.query(
            "SELECT r.run_id, r.kind, r.space, r.status, r.n_requested AS n, r.seed,"
            " strftime(r.started_at, '%Y-%m-%d %H:%M:%S') AS started,"
            " round(epoch(r.finished_at - r.started_at), 2) AS seconds,"
            " (SELECT string_agg(metric, ',' ORDER BY metric) FROM run_metrics m"
            "  WHERE m.run_id = r.run_id) AS metrics"
            " FROM runs r ORDER BY r.run_id"
        )
    render(cols, rows, fmt, title="Runs")


@app.command()
def top(
    k: Annotated[int, typer.Option("--k", help="How many candidates.")] = 20,
    max_kb: Annotated[
        float | None, typer.Option("--max-kb", help="Keep only networks of at most this size_kb.")
    ] = None,
    metric: Annotated[str, typer.Option("--metric", help="Rank by this metric.")] = "relu_count",
    penalty: Annotated[
        str | None,
        typer.Option(
            "--penalty",
            help="Rank by metric x a size penalty of the stored size_kb: "
            "gdf, hsdf or rdf (size in MB = size_kb / 1000).",
        ),
    ] = None,
    mu: MuOption = 0.2,
    sigma: SigmaOption = 0.4,
    run: RunOption = "latest",
    db: DbOption = None,
    fmt: FormatOption = Format.table,
    show_sql: ShowSqlOption = False,
    wide: WideOption = False,
) -> None:
    """The candidates to train, best first: arch, the metric, params, size_kb.

    With --penalty, ranked by metric x penalty(size), with the factor and the penalized
    value as columns. Ties are broken by fewer parameters, then by identity.
    """
    from nasfilter.analysis.top import top_candidates
    from nasfilter.store import Store

    with Store.open(db, read_only=True) as store:
        run_id = store.resolve_run(run, kind="score")
        res = top_candidates(store, run_id, metric, k, max_kb, penalty=penalty, mu=mu, sigma=sigma)
    if show_sql:
        err_console.print(res.sql, markup=False, highlight=False)
    by = metric
    if res.penalty is not None:
        p = res.penalty
        by = f"{metric} x {p['penalty']}(size; mu={p['mu']:g} MB, sigma={p['sigma']:g} MB)"
    title = f"Top {k} of run {run_id} by {by}" + (
        f" (size_kb ≤ {max_kb:g})" if max_kb is not None else ""
    )
    render(res.columns, res.rows, fmt, title=title, wide=wide)
    if fmt == Format.table and not res.rows:
        err_console.print("No architecture fits.")


@app.command()
def sql(
    query: Annotated[str, typer.Argument(help="SQL to run (read-only).")],
    db: DbOption = None,
    fmt: FormatOption = Format.table,
    wide: WideOption = False,
) -> None:
    """Run one SQL query over the database, read-only.

    Tables: runs, run_metrics, architectures, scores, truth; views: results and the
    analysis macros (see docs/analyze.md). One statement, a query (SELECT, WITH, FROM,
    SHOW, DESCRIBE, ...), on a read-only connection that cannot touch any other file.
    """
    from nasfilter.store import read_only_query

    cols, rows = read_only_query(db, query)
    if cols:
        render(cols, rows, fmt, wide=wide)


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Parquet file to write.")],
    run: RunOption = "latest",
    force: Annotated[
        bool, typer.Option("--force", help="Replace the file if it exists (never the database).")
    ] = False,
    db: DbOption = None,
) -> None:
    """Write one row per architecture of a run to Parquet.

    Columns: space, arch, then each metric of the run and its status (<metric>_status),
    params and size_kb first. The run's settings and metric metadata are in the file's
    key-value metadata (nasfilter.run, nasfilter.metrics). An existing file is replaced
    only with --force.
    """
    from nasfilter.store import Store, export_parquet

    with Store.open(db, read_only=True) as store:
        run_id = store.resolve_run(run, kind="score")
        rows = export_parquet(store, run_id, out, force=force)
    console.print(f"Wrote {rows:,} rows of run {run_id} to {out}", markup=False, highlight=False)
