"""Commands: truth load, truth import, truth sample, truth list, truth loads (ground truth)."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasfilter.cli.options import DbOption, FormatOption, WideOption
from nasfilter.cli.render import Format, err_console, render

truth_app = typer.Typer(
    name="truth",
    help="Ground truth: trained accuracies from NATS-Bench, any table, or the shipped sample.",
    no_args_is_help=True,
)

DatasetsOption = Annotated[
    list[str] | None,
    typer.Option(
        "--dataset",
        "-d",
        help="NATS-Bench dataset: cifar10-valid, cifar10, cifar100, ImageNet16-120 (any case). "
        "Repeat or comma-separate. \\[default: all four]",
        show_default=False,
    ),
]


def _print_load(s) -> None:  # type: ignore[no-untyped-def]
    counts = ", ".join(f"{k} {v:,}" for k, v in s.counts.items())
    replaced = f" ({s.replaced:,} replaced)" if s.replaced else ""
    err_console.print(
        f"Load [bold]{s.load_id}[/] ({s.kind}, {s.source}): {s.rows:,} truth rows for "
        f"{s.space}{replaced} in {s.seconds:.2f} s: {counts}",
        highlight=False,
    )
    missing = s.settings.get("missing") or {}
    for ds, n in missing.items():
        err_console.print(f"  {ds}: {n:,} architectures without results, skipped", markup=False)


@truth_app.command("load")
def load(
    space: Annotated[str, typer.Argument(help="Search space (see `nasfilter spaces`).")],
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="The benchmark's data file, for spaces that publish one (NDS: DARTS.json, "
            "...; NAS-Bench-101: nasbench_only108.tfrecord).",
            show_default=False,
        ),
    ] = None,
    benchmark_dir: Annotated[
        Path | None,
        typer.Option(
            "--benchmark-dir",
            help="NATS-Bench: the fast-mode folder (NATS-tss-v1_0-3ffb9-simple or "
            "NATS-sss-v1_0-50262-simple) or the folder holding it. "
            "\\[default: $TORCH_HOME, else ~/.torch]",
            show_default=False,
        ),
    ] = None,
    dataset: DatasetsOption = None,
    hp: Annotated[
        str | None,
        typer.Option(
            "--hp",
            help="NATS-Bench training schedule in epochs: TSS 12 or 200, SSS 01, 12 or "
            "90. \\[default: 200 for TSS, 90 for SSS]",
            show_default=False,
        ),
    ] = None,
    trial: Annotated[
        str,
        typer.Option(
            "--trial",
            help="NATS-Bench: 'mean' (average over the seeds: is_random=False), a seed "
            "such as 777, or 'random' (one random seed per query; not reproducible).",
        ),
    ] = "mean",
    epochs: Annotated[
        int,
        typer.Option("--epochs", help="NAS-Bench-101: training budget, 4, 12, 36 or 108."),
    ] = 108,
    repeat: Annotated[
        str,
        typer.Option(
            "--repeat", help="NAS-Bench-101: 'mean' over the three runs, or one run: 0, 1, 2."
        ),
    ] = "mean",
    no_crc_check: Annotated[
        bool,
        typer.Option("--no-crc-check", help="NAS-Bench-101: skip the TFRecord CRC checks."),
    ] = False,
    db: DbOption = None,
) -> None:
    """Load a benchmark's trained accuracies (and its params and flops) for a space.

    NATS-Bench through its own API (fast mode, one architecture file at a time); NDS
    from its JSON file and NAS-Bench-101 from its TFRecord file, streamed. Examples:
    [bold]nasfilter truth load nats-tss
    --benchmark-dir ~/.torch[/bold], [bold]nasfilter truth load nds-darts --file
    DARTS.json[/bold]
    """
    from nasfilter.cli.progress import progress_bar
    from nasfilter.errors import UsageError
    from nasfilter.spaces import get_space
    from nasfilter.store import Store

    sp = get_space(space)
    fmt = sp.truth_format
    if fmt is None:
        raise UsageError(
            f"No benchmark loader for the {sp.name} space.",
            "Import a table with `nasfilter truth import FILE --space ...`.",
        )
    if fmt == "nats-bench":
        if file is not None:
            raise UsageError(
                f"{sp.name} is read from its benchmark folder, not a file.",
                "Pass --benchmark-dir DIR instead of --file.",
            )
        from nasfilter.truth.nats import load_nats_bench, nats_space, resolve_benchmark_dir

        datasets = _split_list(dataset)
        nats_space(space)
        resolve_benchmark_dir(space, benchmark_dir)  # fail before opening the database
        with Store.open(db) as store, progress_bar(f"NATS-Bench {space}") as bar:
            summary = load_nats_bench(
                store,
                space,
                benchmark_dir,
                datasets,
                hp,
                trial,
                on_total=lambda n: bar.total(n),
                on_progress=bar.advance,
            )
        _print_load(summary)
        return
    given = [
        name
        for name, v in (
            ("--benchmark-dir", benchmark_dir is not None),
            ("--dataset", dataset),
            ("--hp", hp is not None),
            ("--trial", trial != "mean"),
            ("--epochs", fmt != "nb101-tfrecord" and epochs != 108),
            ("--repeat", fmt != "nb101-tfrecord" and repeat != "mean"),
            ("--no-crc-check", fmt != "nb101-tfrecord" and no_crc_check),
        )
        if v
    ]
    if given:
        raise UsageError(f"{', '.join(given)} does not apply to {sp.name}.", "Drop it.")
    if file is None:
        raise UsageError(f"{sp.name} is loaded from its benchmark file.", "Pass --file PATH.")
    if not file.exists():
        raise UsageError(f"--file {file}: no such file.")
    if fmt == "nds-json":
        from nasfilter.truth.nds import load_nds

        with Store.open(db) as store, progress_bar(f"NDS {space}", unit="record") as bar:
            summary = load_nds(store, space, file, on_progress=bar.advance)
    elif fmt == "nb101-tfrecord":
        from nasfilter.truth.nb101 import load_nb101, parse_repeat

        parse_repeat(repeat)  # fail before opening the database
        with Store.open(db) as store, progress_bar("NAS-Bench-101", unit="B") as bar:
            summary = load_nb101(
                store,
                file,
                epochs=epochs,
                repeat=repeat,
                check_crc=not no_crc_check,
                on_total=lambda n: bar.total(n),
                on_progress=bar.advance,
            )
    else:  # pragma: no cover - a space declaring a format this version does not read
        raise UsageError(f"Unknown truth format {fmt!r} of {sp.name}.")
    _print_load(summary)


@truth_app.command("import")
def import_(
    file: Annotated[Path, typer.Argument(help="A .csv (.tsv, .csv.gz) or .parquet file.")],
    space: Annotated[str, typer.Option("--space", help="Search space of the identities.")],
    dataset: Annotated[
        str, typer.Option("--dataset", "-d", help="NATS-Bench dataset name (any case).")
    ],
    arch_col: Annotated[str, typer.Option("--arch-col", help="Column with the identities.")],
    acc_col: Annotated[str, typer.Option("--acc-col", help="Column with the accuracy (%).")],
    split: Annotated[str, typer.Option("--split", help="valid or test.")] = "valid",
    source: Annotated[
        str | None,
        typer.Option(
            "--source", help="Name of the source. \\[default: file name]", show_default=False
        ),
    ] = None,
    scale: Annotated[
        float | None,
        typer.Option(
            "--scale",
            help="Multiply every accuracy by this first: 100 for fractions (0.93 -> 93%). "
            "Without it, a file whose accuracies all lie in [0, 1] is refused.",
            show_default=False,
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """Import accuracies (percent) from any CSV or Parquet table.

    Every identity is validated; a file with bad rows is refused whole; one transaction."""
    from nasfilter.store import Store
    from nasfilter.truth.table import import_table

    with Store.open(db) as store:
        summary = import_table(
            store, file, space, dataset, arch_col, acc_col, split, source, scale=scale
        )
    _print_load(summary)


@truth_app.command("sample")
def sample(
    spaces: Annotated[
        list[str] | None,
        typer.Argument(help="Spaces whose sample to load. \\[default: every shipped sample]"),
    ] = None,
    db: DbOption = None,
) -> None:
    """Load the ground-truth samples shipped with nasfilter, so analyze works offline.

    nats-tss: NAS-Bench-Suite-Zero's NAS-Bench-201 sample, 2,173 rows (cifar10-valid,
    cifar100, ImageNet16-120; split valid). nb101: its NAS-Bench-101 sample, 500 rows
    (292 cells; cifar10, split valid).
    """
    import importlib

    from nasfilter.errors import UsageError
    from nasfilter.spaces import get_space, list_spaces
    from nasfilter.store import Store

    chosen = (
        [get_space(s) for s in spaces] if spaces else [s for s in list_spaces() if s.truth_sample]
    )
    for sp in chosen:
        if not sp.truth_sample:
            have = ", ".join(s.name for s in list_spaces() if s.truth_sample)
            raise UsageError(f"No sample is shipped for {sp.name}.", f"Samples exist for: {have}.")
    with Store.open(db) as store:
        for sp in chosen:
            module, func = str(sp.truth_sample).split(":")
            summary = getattr(importlib.import_module(module), func)(store)
            _print_load(summary)


@truth_app.command("list")
def list_(db: DbOption = None, fmt: FormatOption = Format.table, wide: WideOption = False) -> None:
    """What truth the database holds, per space, dataset, split and source."""
    from nasfilter.store import Store
    from nasfilter.truth import truth_summary

    with Store.open(db, read_only=True) as store:
        cols, rows = truth_summary(store)
    render(cols, rows, fmt, title="Ground truth", wide=wide)
    if fmt == Format.table and not rows:
        err_console.print("No ground truth yet: see `nasfilter truth --help`.")


@truth_app.command("loads")
def loads(db: DbOption = None, fmt: FormatOption = Format.table) -> None:
    """The loads of ground truth, with their settings."""
    from nasfilter.store import Store
    from nasfilter.truth import truth_loads

    with Store.open(db, read_only=True) as store:
        cols, rows = truth_loads(store)
    render(cols, rows, fmt, title="Truth loads")


def _split_list(values: list[str] | None) -> list[str] | None:
    if not values:
        return None
    out = [v.strip() for item in values for v in item.split(",") if v.strip()]
    return out or None
