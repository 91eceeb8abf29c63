"""Ground truth: the trained accuracy of architectures, per dataset and split.

Rows live in the ``truth`` table (migration 002), keyed by (space, arch, dataset, split)
with ``arch`` the space's canonical identity. Every load is one transaction and one row
of ``truth_loads``; a later load of the same key replaces the row (upsert).

Loaders:

- :func:`nasfilter.truth.nats.load_nats_bench` reads NATS-Bench through its own API;
- :func:`nasfilter.truth.table.import_table` reads any CSV or Parquet table;
- :func:`nasfilter.truth.table.load_sample` loads the shipped NAS-Bench-201 sample;
- :func:`nasfilter.truth.nds.load_nds` streams an NDS design-space JSON file;
- :func:`nasfilter.truth.nb101.load_nb101` reads NAS-Bench-101's official TFRecord files
  (kind ``nb101``), :func:`nasfilter.truth.nb101.load_nb101_sample` the shipped
  NAS-Bench-101 sample.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any

from nasfilter import __version__
from nasfilter.datasets import TRUTH_SPLITS, canonical_split, canonical_truth_dataset
from nasfilter.errors import DataError
from nasfilter.store import Store, utc_now

#: NATS-Bench's dataset names, as its API spells them (every ground-truth dataset name
#: is in ``nasfilter.datasets.TRUTH_DATASETS``).
DATASETS: tuple[str, ...] = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")
SPLITS: tuple[str, ...] = TRUTH_SPLITS
LOAD_KINDS: tuple[str, ...] = ("nats_bench", "import", "sample", "nds", "nb101")

TRUTH_COLUMNS = (
    "arch",
    "dataset",
    "split",
    "accuracy",
    "benchmark_index",
    "bench_params",
    "bench_flops",
)


def million_to_count(million: float) -> float:
    """A value given in millions (count / 1e6) as a count: x 1e6, rounded to the nearest
    integer when within 1e-6 (relative) of it, which undoes the float noise of the
    division (and of a mean over equal values); otherwise left as is."""
    v = float(million) * 1e6
    r = round(v)
    return float(r) if abs(v - r) <= 1e-6 * max(1.0, abs(v)) else v


def canonical_dataset(name: str) -> str:
    """The benchmark's spelling of a ground-truth dataset name given in any case (see
    ``nasfilter.datasets.TRUTH_DATASETS``)."""
    return canonical_truth_dataset(name)


@dataclass
class TruthBatch:
    """Columns of truth rows to write, one list per column of ``TRUTH_COLUMNS``."""

    arch: list[str] = field(default_factory=list)
    dataset: list[str] = field(default_factory=list)
    split: list[str] = field(default_factory=list)
    accuracy: list[float] = field(default_factory=list)
    benchmark_index: list[int | None] = field(default_factory=list)
    bench_params: list[float | None] = field(default_factory=list)
    bench_flops: list[float | None] = field(default_factory=list)
    #: optional per-row details (all rows or none): the benchmark's key, the training
    #: budget, the number of runs averaged, the mean training time
    bench_hash: list[str | None] = field(default_factory=list)
    epochs: list[int | None] = field(default_factory=list)
    runs: list[int | None] = field(default_factory=list)
    train_seconds: list[float | None] = field(default_factory=list)

    def add(
        self,
        arch: str,
        dataset: str,
        split: str,
        accuracy: float,
        benchmark_index: int | None = None,
        bench_params: float | None = None,
        bench_flops: float | None = None,
        bench_hash: str | None = None,
        epochs: int | None = None,
        runs: int | None = None,
        train_seconds: float | None = None,
    ) -> None:
        self.bench_hash.append(bench_hash)
        self.epochs.append(epochs)
        self.runs.append(runs)
        self.train_seconds.append(train_seconds)
        self.arch.append(arch)
        self.dataset.append(dataset)
        self.split.append(split)
        self.accuracy.append(float(accuracy))
        self.benchmark_index.append(benchmark_index)
        self.bench_params.append(bench_params)
        self.bench_flops.append(bench_flops)

    def __len__(self) -> int:
        return len(self.arch)


@dataclass
class LoadSummary:
    load_id: int
    kind: str
    space: str
    source: str
    datasets: list[str]
    rows: int
    replaced: int
    counts: dict[str, int]  # "dataset/split" -> rows
    seconds: float
    settings: dict[str, Any]


def _details(values: list[Any], n: int) -> list[Any]:
    """A detail column: as given, or all NULL when the loader filled none."""
    return values if len(values) == n else [None] * n


def write_truth(
    store: Store,
    kind: str,
    space: str,
    source: str,
    settings: dict[str, Any],
    batch: TruthBatch,
    started: float | None = None,
    runs: Any = None,
) -> LoadSummary:
    """Upsert ``batch`` and record the load, in one transaction.

    The batch must not hold the same (arch, dataset, split) twice: callers validate.
    ``runs``: an Arrow table of ``truth_runs`` rows (without space and load_id), upserted
    in the same transaction.
    """
    import pyarrow as pa

    if kind not in LOAD_KINDS:  # pragma: no cover - programming error
        raise ValueError(f"unknown load kind {kind!r}")
    started = time.perf_counter() if started is None else started
    keys = set(zip(batch.arch, batch.dataset, batch.split, strict=True))
    if len(keys) != len(batch):
        raise DataError(
            f"The {kind} load holds the same (arch, dataset, split) more than once "
            f"({len(batch) - len(keys):,} repeats); nothing was written."
        )
    datasets = sorted(set(batch.dataset), key=lambda d: DATASETS.index(d) if d in DATASETS else 99)
    counts: dict[str, int] = {}
    for d, s in zip(batch.dataset, batch.split, strict=True):
        counts[f"{d}/{s}"] = counts.get(f"{d}/{s}", 0) + 1
    table = pa.table(
        {
            "arch": pa.array(batch.arch, pa.string()),
            "dataset": pa.array(batch.dataset, pa.string()),
            "split": pa.array(batch.split, pa.string()),
            "accuracy": pa.array(batch.accuracy, pa.float64()),
            "benchmark_index": pa.array(batch.benchmark_index, pa.int64()),
            "bench_params": pa.array(batch.bench_params, pa.float64()),
            "bench_flops": pa.array(batch.bench_flops, pa.float64()),
            "bench_hash": pa.array(_details(batch.bench_hash, len(batch)), pa.string()),
            "epochs": pa.array(_details(batch.epochs, len(batch)), pa.int32()),
            "runs": pa.array(_details(batch.runs, len(batch)), pa.int32()),
            "train_seconds": pa.array(_details(batch.train_seconds, len(batch)), pa.float64()),
        }
    )
    views: dict[str, Any] = {"_nf_truth": table}
    if runs is not None:
        views["_nf_truth_runs"] = runs
    with store.transaction(**views) as con:
        row = con.execute(
            "INSERT INTO truth_loads (kind, space, datasets, source, settings, rows,"
            " loaded_at, nasfilter_version) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
            " RETURNING load_id",
            [
                kind,
                space,
                datasets,
                source,
                json.dumps(settings, sort_keys=True),
                len(batch),
                utc_now(),
                __version__,
            ],
        ).fetchall()  # all: a RETURNING result left unfinished blocks the connection
        load_id = int(row[0][0])
        rep = con.execute(
            "SELECT count(*) FROM truth t JOIN _nf_truth n ON t.space = ? AND t.arch = n.arch"
            " AND t.dataset = n.dataset AND t.split = n.split",
            [space],
        ).fetchall()[0]
        con.execute(
            "INSERT OR REPLACE INTO truth (space, arch, dataset, split, accuracy, source,"
            " benchmark_index, bench_params, bench_flops, load_id, bench_hash, epochs, runs,"
            " train_seconds)"
            " SELECT ?, arch, dataset, split, accuracy, ?, benchmark_index, bench_params,"
            " bench_flops, ?, bench_hash, epochs, runs, train_seconds FROM _nf_truth",
            [space, source, load_id],
        )
        if runs is not None:
            con.execute(
                "INSERT OR REPLACE INTO truth_runs (space, arch, dataset, epochs, run,"
                " valid_accuracy, test_accuracy, train_accuracy, train_seconds,"
                " halfway_valid_accuracy, halfway_test_accuracy, load_id)"
                " SELECT ?, arch, dataset, epochs, run, valid_accuracy, test_accuracy,"
                " train_accuracy, train_seconds, halfway_valid_accuracy, halfway_test_accuracy,"
                " ? FROM _nf_truth_runs",
                [space, load_id],
            )
    return LoadSummary(
        load_id=load_id,
        kind=kind,
        space=space,
        source=source,
        datasets=datasets,
        rows=len(batch),
        replaced=int(rep[0]) if rep else 0,
        counts=counts,
        seconds=time.perf_counter() - started,
        settings=settings,
    )


def accuracy_of(store: Store, space: str, dataset: str, split: str) -> dict[str, float]:
    """``{canonical arch: accuracy (percent)}`` for one space, dataset and split."""
    from nasfilter.spaces import get_space

    space = get_space(space).name
    dataset = canonical_dataset(dataset)
    split = canonical_split(split)
    rows = store.con.execute(
        "SELECT arch, accuracy FROM truth WHERE space = ? AND dataset = ? AND split = ?",
        [space, dataset, split],
    ).fetchall()
    return {a: float(v) for a, v in rows}


def truth_summary(store: Store) -> tuple[list[str], list[tuple]]:
    return store.query("SELECT * FROM truth_summary")


def truth_loads(store: Store) -> tuple[list[str], list[tuple]]:
    return store.query(
        "SELECT load_id, kind, space, array_to_string(datasets, ',') AS datasets, source, rows,"
        " strftime(loaded_at, '%Y-%m-%d %H:%M:%S') AS loaded_at, settings"
        " FROM truth_loads ORDER BY load_id"
    )


__all__ = [
    "DATASETS",
    "SPLITS",
    "LoadSummary",
    "TruthBatch",
    "accuracy_of",
    "canonical_dataset",
    "canonical_split",
    "million_to_count",
    "truth_loads",
    "truth_summary",
    "write_truth",
]
