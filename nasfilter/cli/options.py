"""Options shared by several commands."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated

import typer

from nasfilter.cli.render import Format

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        envvar="NASFILTER_DB",
        help="DuckDB file to use. \\[default: ./nasfilter.duckdb]",
        show_default=False,
        readable=False,  # the store says what is wrong with the file, in one line
    ),
]
RunOption = Annotated[
    str,
    typer.Option("--run", help="Run id, or 'latest' for the newest score run."),
]
FormatOption = Annotated[
    Format,
    typer.Option("--format", "-f", help="Output format.", case_sensitive=False),
]
ShowSqlOption = Annotated[bool, typer.Option("--show-sql", help="Print the SQL used, on stderr.")]
WideOption = Annotated[
    bool,
    typer.Option(
        "--wide",
        help="Show long identities whole in tables (else shortened in the middle to fit the "
        "terminal; csv and json always have them whole).",
    ),
]

DataOption = Annotated[
    str | None,
    typer.Option(
        "--data",
        help="Inputs for data-dependent metrics: cifar10, cifar100, imagenet16-120 or "
        "synthetic. Also sets the networks' classes and resolution.",
    ),
]
DataDirOption = Annotated[
    Path | None,
    typer.Option("--data-dir", envvar="NASFILTER_DATA", help="Folder holding the datasets."),
]
ShapeOption = Annotated[
    str | None,
    typer.Option(
        "--shape",
        help="Dataset shape networks are built at, for synthetic inputs and data-free "
        "metrics (see `nasfilter spaces`). \\[default: the data's, else the space's]",
        show_default=False,
    ),
]
BatchOption = Annotated[int, typer.Option("--batch-size", "-K", help="Mini-batch size K.")]
DeviceOption = Annotated[str, typer.Option("--device", help="auto, cpu, cuda or mps.")]


class BnMode(str, Enum):
    batch = "batch"
    eval = "eval"


class MemoryFormat(str, Enum):
    """= nasfilter.scoring.settings.MEMORY_FORMATS (a test holds them equal)."""

    channels_last = "channels_last"
    contiguous = "contiguous"


class Algo(str, Enum):
    """= nasfilter.search.request.ALGORITHMS (a test holds them equal)."""

    random = "random"
    two_stage = "two-stage"
    evolution = "evolution"


class PopulationKind(str, Enum):
    """= nasfilter.search.request.POPULATIONS."""

    space = "space"
    truth = "truth"


class PenaltyName(str, Enum):
    """= nasfilter.penalties.PENALTIES."""

    gdf = "gdf"
    hsdf = "hsdf"
    rdf = "rdf"


BnModeOption = Annotated[
    BnMode,
    typer.Option(
        "--bn-mode",
        help="BatchNorm while scoring: batch (statistics of the batch, as NASWOT) or eval.",
    ),
]
MemoryFormatOption = Annotated[
    MemoryFormat,
    typer.Option(
        "--memory-format",
        help="Layout of networks and batches: channels_last (NHWC, faster convolutions "
        "on CPU) or contiguous (NCHW). Values differ by float rounding only; stored values "
        "are reused only under the same layout.",
        envvar="NASFILTER_MEMORY_FORMAT",
    ),
]
BytesPerParamOption = Annotated[
    float,
    typer.Option(
        "--bytes-per-param",
        envvar="NASFILTER_BYTES_PER_PARAM",
        help="Bytes per parameter for size_kb (1 = int8).",
    ),
]
MuOption = Annotated[
    float, typer.Option("--mu", help="Penalty target size in MB (1e6 params at 1 byte).")
]
SigmaOption = Annotated[float, typer.Option("--sigma", help="Penalty width in MB.")]

ParamOption = Annotated[
    list[str] | None,
    typer.Option(
        "--param",
        help="A metric's own setting, NAME=VALUE (repeatable), e.g. swap_mu=500 "
        "(see docs/metrics.md).",
        show_default=False,
    ),
]


def parse_params(items: list[str] | None) -> dict[str, float]:
    """``--param NAME=VALUE`` options as a mapping (numbers)."""
    import math

    from nasfilter.errors import UsageError

    out: dict[str, float] = {}
    for item in items or []:
        name, sep, value = str(item).partition("=")
        name = name.strip()
        try:
            v = float(value)
        except ValueError:
            v = math.nan
        if not sep or not name or not math.isfinite(v):
            raise UsageError(
                f"--param {item!r} is not NAME=NUMBER.", "Pass e.g. --param swap_mu=500."
            )
        if name in out:
            raise UsageError(f"--param {name} is given twice.")
        out[name] = int(v) if v.is_integer() else v
    return out


MaxKbOption = Annotated[
    float | None,
    typer.Option("--max-kb", help="Flash budget: keep only networks of at most this size_kb."),
]
MaxRamKbOption = Annotated[
    float | None,
    typer.Option(
        "--max-ram-kb",
        help="RAM budget: peak activation memory (peak_ram_kb, µNAS's model) at most this.",
    ),
]
MaxMacsOption = Annotated[
    float | None,
    typer.Option("--max-macs", help="Compute budget: at most this many MACs (macs)."),
]
BudgetOption = Annotated[
    str | None,
    typer.Option(
        "--budget",
        help="A preset of bounds: munas-cifar10, munas-mnist, munas-speech-commands, "
        "munas-chars74k (µNAS's; --max-* override its bounds).",
        show_default=False,
    ),
]


class BackendName(str, Enum):
    """= nasfilter.scoring.backends.BACKENDS (a test holds them equal)."""

    local = "local"
    ray = "ray"


BackendOption = Annotated[
    BackendName,
    typer.Option(
        "--backend",
        help="Where to score: local (this machine: in this process, or --workers N "
        "processes) or ray (actors on a Ray cluster: pip install 'nasfilter\\[ray]'; "
        "see docs/distributed.md).",
        case_sensitive=False,
    ),
]
WorkersOption = Annotated[
    str | None,
    typer.Option(
        "--workers",
        metavar="N|auto",
        help="Worker processes (local) or Ray actors, each holding one scorer; "
        "[bold]auto[/bold]: one process per usable CPU (local), as many as the cluster "
        "holds (ray). \\[default: local 1 (in this process); ray: as many as the cluster "
        "holds]",
        show_default=False,
    ),
]
RayAddressOption = Annotated[
    str | None,
    typer.Option(
        "--ray-address",
        help="Ray cluster: auto (started with `ray start` on this machine), HOST:PORT or "
        "ray://HOST:PORT. \\[default: $RAY_ADDRESS, else a private Ray instance here]",
        show_default=False,
    ),
]
GpusPerWorkerOption = Annotated[
    float | None,
    typer.Option(
        "--gpus-per-worker",
        help="GPUs each Ray worker reserves; a fraction packs several on one GPU "
        "(0.25: four). \\[default: 0]",
        show_default=False,
    ),
]
CpusPerWorkerOption = Annotated[
    float | None,
    typer.Option(
        "--cpus-per-worker",
        help="CPUs each worker reserves (Ray) and its torch threads (rounded down). \\[default: 1]",
        show_default=False,
    ),
]
