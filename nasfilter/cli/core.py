"""Commands: spaces, metrics, score, runs, top, sql, export."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path
from typing import Annotated

import typer

from nasfilter.cli.options import (
    BackendName,
    BackendOption,
    BatchOption,
    BnMode,
    BnModeOption,
    BudgetOption,
    BytesPerParamOption,
    CpusPerWorkerOption,
    DataDirOption,
    DataOption,
    DbOption,
    DeviceOption,
    FormatOption,
    GpusPerWorkerOption,
    MaxKbOption,
    MaxMacsOption,
    MaxRamKbOption,
    MemoryFormat,
    MemoryFormatOption,
    MuOption,
    ParamOption,
    PenaltyName,
    RayAddressOption,
    RunOption,
    ShapeOption,
    ShowSqlOption,
    SigmaOption,
    WideOption,
    WorkersOption,
    parse_params,
)
from nasfilter.cli.render import Format, console, err_console, render
from nasfilter.errors import UsageError


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
        kind = "enumerable" if s.enumerable else "sampled"
        rows.append((s.name, s.size, kind, ", ".join(s.shapes), s.notation, what, s.description))
    render(
        ["space", "size", "kind", "shapes", "identity", "needs", "description"],
        rows,
        fmt,
        title="Search spaces",
    )


def metrics(fmt: FormatOption = Format.table) -> None:
    """List the metrics and their metadata: direction, what they need, their parameters."""
    from nasfilter.metrics import list_metrics

    rows = [
        (
            m.name,
            m.version,
            "higher" if m.higher_is_better else "lower",
            "yes" if m.needs_model else "no",
            "yes" if m.needs_data else "no",
            "yes" if m.needs_gradients else "no",
            ", ".join(sorted(m.needs)) or "-",
            ", ".join(f"{k}={'required' if v is None else v}" for k, v in m.params) or "-",
            m.unit,
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
            "needs",
            "params",
            "unit",
            "description",
        ],
        rows,
        fmt,
        title="Metrics",
    )


def info(
    space: Annotated[str, typer.Argument(help="Search space, e.g. nats-tss.")],
    arch: Annotated[str, typer.Argument(help="Architecture identity in the space's notation.")],
    data: Annotated[
        str | None,
        typer.Option(
            "--data", help="Dataset shape (see `nasfilter spaces`). [default: the space's]"
        ),
    ] = None,
    bytes_per_param: BytesPerParamOption = 1.0,
    fmt: FormatOption = Format.table,
    wide: WideOption = False,
) -> None:
    """Params, flops, relu_count, size_kb (and the space's own figures) of one architecture.

    Analytic where the space computes them (no network is built); otherwise measured on
    the built network, and the output says so.
    """
    from nasfilter.metrics import list_metrics
    from nasfilter.scoring.scorer import Scorer
    from nasfilter.scoring.settings import RunSettings
    from nasfilter.spaces import get_space

    sp = get_space(space)
    canonical = sp.canonical(arch)
    names = ["params", "flops", "relu_count", "size_kb"]
    names += [m.name for m in list_metrics() if m.figure in sp.figures and m.name not in names]
    names = [n for n in names if _available(sp, n)]
    settings = RunSettings.make(
        sp.name, names, shape=data, bytes_per_param=bytes_per_param, batch_size=2
    )
    with Scorer(settings) as scorer:
        res = scorer.score(canonical)
    values = {name: v for name, v, _, _ in res.rows}
    cols = ["space", "arch"] + (["rank"] if sp.enumerable else []) + names
    row: list[object] = [sp.name, canonical] + ([sp.rank(canonical)] if sp.enumerable else [])
    row += [_count_or_value(values[n]) for n in names]
    render(cols, [tuple(row)], fmt, wide=wide)
    measured = [n for n in names if scorer.paths.get(n) != "analytic"]
    if measured:
        err_console.print(
            f"Measured on the built network (not analytic in {sp.name}): {', '.join(measured)}.",
            markup=False,
            highlight=False,
        )


def _available(space, name: str) -> bool:  # type: ignore[no-untyped-def]
    from nasfilter.metrics import get_metric

    return get_metric(name).path_in(space) is not None


def _count_or_value(v: float) -> float | int:
    return int(v) if v == v and float(v).is_integer() and abs(v) < 1e18 else v


def score(
    space: Annotated[
        str | None, typer.Argument(help="Search space (see `nasfilter spaces`).")
    ] = None,
    n: Annotated[int | None, typer.Option("--n", help="Number of architectures to sample.")] = None,
    all_: Annotated[
        bool, typer.Option("--all", help="Score every architecture of the space.")
    ] = False,
    archs: Annotated[
        str | None,
        typer.Option(
            "--archs",
            help="Score the identities in this file, one per line ('-' for stdin).",
            show_default=False,
        ),
    ] = None,
    metrics: Annotated[
        str,
        typer.Option("--metrics", "-m", help="Comma-separated metrics (see `nasfilter metrics`)."),
    ] = "relu_count,params,flops,size_kb",
    seed: Annotated[int, typer.Option("--seed", help="Sampling, batch and init seed.")] = 0,
    data: DataOption = None,
    shape: ShapeOption = None,
    data_dir: DataDirOption = None,
    download: Annotated[bool, typer.Option("--download", help="Fetch CIFAR if absent.")] = False,
    batch_size: BatchOption = 128,
    device: DeviceOption = "auto",
    bn_mode: BnModeOption = BnMode.batch,
    memory_format: MemoryFormatOption = MemoryFormat.channels_last,
    bytes_per_param: BytesPerParamOption = 1.0,
    penalty: Annotated[
        PenaltyName | None,
        typer.Option(
            "--penalty",
            help="Also store each higher-is-better metric times a size "
            "penalty (as <metric>_<penalty>).",
        ),
    ] = None,
    mu: MuOption = 0.2,
    sigma: SigmaOption = 0.4,
    param: ParamOption = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            help="Finish an interrupted run (its id, or 'latest'); alone, or with the "
            "backend options.",
        ),
    ] = None,
    backend: BackendOption = BackendName.local,
    workers: WorkersOption = None,
    ray_address: RayAddressOption = None,
    gpus_per_worker: GpusPerWorkerOption = None,
    cpus_per_worker: CpusPerWorkerOption = None,
    db: DbOption = None,
    fmt: Annotated[
        Format,
        typer.Option(
            "--format",
            "-f",
            help="What stdout gets: the run id (table), or the summary as csv/json.",
            case_sensitive=False,
        ),
    ] = Format.table,
) -> None:
    """Score architectures of a search space and store the results.

    Prints the run id on stdout (the summary with --format json or csv); progress and
    messages go to stderr. Example: [bold]nasfilter score nats-tss --all[/bold]

    The backend options say where the architectures are scored (results are the same
    wherever, bit for bit at the same torch thread count): [bold]--workers 4[/bold] (four
    processes here; [bold]auto[/bold]: one per CPU, the fastest way to score small
    networks on a CPU), [bold]--backend ray --ray-address auto --gpus-per-worker
    0.25[/bold] (see docs/distributed.md).
    """
    from nasfilter import engine
    from nasfilter.errors import StoreError
    from nasfilter.scoring.backends import BackendSpec
    from nasfilter.store import Store, default_db_path

    def backend_spec(run_device: str) -> BackendSpec:
        spec = BackendSpec.make(
            backend.value,
            workers=workers,
            ray_address=ray_address,
            gpus_per_worker=gpus_per_worker,
            cpus_per_worker=cpus_per_worker,
            device=run_device,
        )
        spec.preflight()  # Ray installed, the address answers: before a run is made
        return spec

    if resume is not None:
        given = [
            name
            for name, v in (
                ("SPACE", space is not None),
                ("--n", n is not None),
                ("--all", all_),
                ("--archs", archs is not None),
                ("--metrics", metrics != "relu_count,params,flops,size_kb"),
                ("--data", data is not None),
                ("--shape", shape is not None),
                ("--seed", seed != 0),
                ("--penalty", penalty is not None),
                ("--param", bool(param)),
            )
            if v
        ]
        if given:
            raise UsageError(
                f"--resume takes the run's own settings; it cannot be combined with "
                f"{', '.join(given)}.",
                "Drop them, or start a new run without --resume.",
            )
        path = Path(db).expanduser().resolve() if db is not None else default_db_path()
        if not path.exists():
            raise StoreError(
                f"No database at {path}: nothing to resume.",
                "Pass the --db of the interrupted run, or start a new run.",
            )
    if resume is None and space is None:
        raise UsageError("Name a search space (see `nasfilter spaces`), or pass --resume RUN.")
    req = None
    if resume is None:
        arch_list = None
        if archs is not None:
            arch_list = engine.read_arch_list(space or "", _read_lines(archs), f"--archs {archs}")
        req = engine.ScoreRequest(
            space=space or "",
            n=n,
            all=all_,
            archs=arch_list,
            metrics=metrics,
            seed=seed,
            data=data,
            shape=shape,
            data_dir=str(data_dir) if data_dir else None,
            download=download,
            batch_size=batch_size,
            device=device,
            bn_mode=bn_mode.value,
            memory_format=memory_format.value,
            bytes_per_param=bytes_per_param,
            penalty=penalty.value if penalty is not None else None,
            mu=mu,
            sigma=sigma,
            params=parse_params(param),
        )
        engine.plan(req)  # validate before touching the database
        spec = backend_spec(device)
    else:
        spec = backend_spec("auto")  # checked again with the run's device below
    with Store.open(db) as store:
        if resume is not None:
            run_id = _resumable(store, resume)
            if run_id is None:
                return
        else:
            assert req is not None
            run_id = engine.start(store, req, command=shlex.join(["nasfilter", *sys.argv[1:]]))
            store.release()
        settings = store.get_run(run_id)["settings"]
        store.release()
        if resume is not None:
            spec = backend_spec(str(settings.get("device", "auto")))
        summary = _execute_with_progress(store, run_id, settings, spec)
    _print_summary(summary, store.path)
    if fmt == Format.table:
        typer.echo(str(summary.run_id))
    else:
        d = summary.as_dict()
        statuses = d.pop("statuses")
        render(
            list(d) + ["statuses"],
            [tuple(d.values()) + (json.dumps(statuses, sort_keys=True),)],
            fmt,
            json_obj={**d, "statuses": statuses},
        )


def _read_lines(source: str) -> list[str]:

    if source == "-":
        return sys.stdin.read().splitlines()
    p = Path(source).expanduser()
    try:
        return p.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        raise UsageError(f"--archs {source}: no such file.") from None
    except IsADirectoryError:
        raise UsageError(f"--archs {source} is a folder, not a file.") from None
    except (OSError, UnicodeDecodeError) as e:
        raise UsageError(f"--archs {source} cannot be read: {e}.") from None


def _resumable(store, resume: str) -> int | None:  # type: ignore[no-untyped-def]
    """The run ``--resume`` names, or None (and a message) when it is already complete."""
    run_id = store.resolve_run(resume, kind="score")
    run = store.get_run(run_id)
    if run["status"] != "completed":
        return run_id
    others = store.con.execute(
        "SELECT run_id, status FROM runs WHERE kind = 'score' AND status <> 'completed' "
        "AND coalesce(origin, 'score') = 'score' ORDER BY run_id"
    ).fetchall()
    if others:
        listed = ", ".join(f"{r} ({st})" for r, st in others)
        raise UsageError(
            f"Run {run_id} is already complete. Runs that can be resumed: {listed}.",
            f"Pass one of them: `nasfilter score --resume {others[-1][0]}`.",
        )
    err_console.print(f"Run {run_id} is already complete; no run is left to resume.")
    return None


def _execute_with_progress(store, run_id, settings, spec=None):  # type: ignore[no-untyped-def]
    from nasfilter import engine
    from nasfilter.cli.progress import progress_bar

    where = "" if spec is None or spec.in_process else f" ({_where(spec)})"
    with progress_bar(f"run {run_id} {settings['space']}{where}") as bar:
        if where:
            bar.print(f"Starting the workers of run {run_id}{where}...")
        return engine.execute(
            store, run_id, on_progress=bar.advance, on_total=bar.total, backend=spec,
            on_status=bar.status,
        )  # fmt: skip


def _where(spec) -> str:  # type: ignore[no-untyped-def]
    if spec.kind == "processes":
        return f"{spec.workers} processes"
    parts = ["ray"] + ([f"{spec.workers} workers"] if spec.workers else [])
    if spec.gpus_per_worker:
        parts.append(f"{spec.gpus_per_worker:g} GPU each")
    return ", ".join(parts)


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


def top(
    k: Annotated[int, typer.Option("--k", help="How many candidates.")] = 20,
    max_kb: MaxKbOption = None,
    max_ram_kb: MaxRamKbOption = None,
    max_macs: MaxMacsOption = None,
    budget: BudgetOption = None,
    metric: Annotated[str, typer.Option("--metric", help="Rank by this metric.")] = "relu_count",
    penalty: Annotated[
        PenaltyName | None,
        typer.Option(
            "--penalty",
            help="Rank by metric x a size penalty of the stored size_kb "
            "(size in MB = size_kb / 1000).",
        ),
    ] = None,
    mu: MuOption = 0.2,
    sigma: SigmaOption = 0.4,
    tie_break: Annotated[
        str,
        typer.Option(
            "--tie-break",
            help="Ties: first (first drawn), smallest, largest (parameters), or a metric "
            "of the run (e.g. naswot).",
        ),
    ] = "first",
    run: RunOption = "latest",
    db: DbOption = None,
    fmt: FormatOption = Format.table,
    show_sql: ShowSqlOption = False,
    wide: WideOption = False,
) -> None:
    """The candidates to train, best first: arch, the metric, params, size_kb.

    With --penalty, ranked by metric x penalty(size), with the factor and the penalized
    value as columns. Ties are broken by --tie-break (default: the first drawn).
    """
    from nasfilter.analysis.top import check_budget, top_candidates
    from nasfilter.budgets import make_budget, require_figures
    from nasfilter.ranking import check_tie_break
    from nasfilter.spaces import get_space
    from nasfilter.store import Store

    if k < 1:
        raise UsageError(f"--k must be at least 1 (got {k}).")
    check_budget("--max-kb", max_kb)
    check_tie_break(tie_break)
    bud = make_budget(budget, max_ram_kb=max_ram_kb, max_macs=max_macs)
    with Store.open(db, read_only=True) as store:
        run_id = store.resolve_run(run, kind="score")
        if bud is not None:
            require_figures(get_space(store.get_run(run_id)["space"]), bud)
            if max_kb is None:
                max_kb = bud.max_kb
        res = top_candidates(
            store,
            run_id,
            metric,
            k,
            max_kb,
            penalty=penalty.value if penalty is not None else None,
            mu=mu,
            sigma=sigma,
            tie_break=tie_break,
            bounds={m: b for m, b in (bud.bounds() if bud else {}).items() if m != "size_kb"},
        )
    if show_sql:
        err_console.print(res.sql, markup=False, highlight=False)
    by = metric
    if res.penalty is not None:
        p = res.penalty
        by = f"{metric} x {p['penalty']}(size; mu={p['mu']:g} MB, sigma={p['sigma']:g} MB)"
    limits = [f"size_kb ≤ {max_kb:g}"] if max_kb is not None else []
    if bud is not None:
        limits += [
            f"{m} ≤ {b:,.0f}" if float(b).is_integer() else f"{m} ≤ {b:,.6g}"
            for m, b in bud.bounds().items()
            if m != "size_kb"
        ]
    title = f"Top {k} of run {run_id} by {by}" + (f" ({', '.join(limits)})" if limits else "")
    render(res.columns, res.rows, fmt, title=title, wide=wide)
    if not res.rows:
        err_console.print(
            "No architecture fits" + (f" within {', '.join(limits)}." if limits else ".")
        )
    note = res.tie_note(res.columns[1])
    if note:
        err_console.print(note, markup=False, highlight=False, soft_wrap=True)


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
