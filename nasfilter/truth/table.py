"""Ground truth from any table (CSV or Parquet), and the shipped NAS-Bench-201 sample.

Every row is validated before anything is written: the identity must parse in the
space (it is stored in canonical form), the accuracy must be a finite number in
[0, 100] (percent), and an identity may appear once. A file with any bad row is refused
whole, naming the first few bad rows by line number (CSV: the header is line 1) or row
number (Parquet: the first row is row 1). An import is one transaction.
"""

from __future__ import annotations

import csv
import gzip
import io
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from nasfilter.errors import DataError, InvalidArchitectureError, UsageError
from nasfilter.store import Store
from nasfilter.truth import (
    LoadSummary,
    TruthBatch,
    canonical_dataset,
    canonical_split,
    million_to_count,
    write_truth,
)

MAX_REPORTED = 5
SAMPLE_FILE = "nb201_sample.csv"
SAMPLE_SOURCE = "nas-bench-suite-zero"
SAMPLE_SPACE = "nats-tss"
# NASLib's dataset names -> NATS-Bench's: NASLib queries "cifar10" in the cifar10-valid
# entry of NAS-Bench-201 (trained on the train half, evaluated on the validation half).
SAMPLE_DATASETS = {
    "cifar10": "cifar10-valid",
    "cifar100": "cifar100",
    "ImageNet16-120": "ImageNet16-120",
}
CSV_SUFFIXES = (".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz")
PARQUET_SUFFIXES = (".parquet", ".pq")


@dataclass
class _Row:
    where: str  # "line 7" or "row 6"
    arch: Any
    accuracy: Any
    params: Any = None
    flops: Any = None


def _open_text(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")  # noqa: SIM115


def _csv_rows(path: Path, columns: list[str]) -> Iterator[_Row]:
    """Rows of a CSV file with their line numbers (header = line 1).

    Comma-separated (tab for *.tsv). Python's csv reader counts physical lines, so quoted
    fields spanning lines keep the numbers right; blank lines are skipped (and counted).
    """
    # No sniffing: TSS identities are full of '|', which a sniffer takes for a delimiter.
    delimiter = "\t" if path.name.lower().endswith((".tsv", ".tsv.gz")) else ","
    with _open_text(path) as f:
        reader = csv.reader(f, delimiter=delimiter)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"{path} is empty.") from None
        except csv.Error as e:
            raise DataError(f"Cannot parse {path} as CSV: {_clause(str(e))}.") from None
        header = [h.strip() for h in header]
        idx = []
        for c in columns:
            if c not in header:
                raise UsageError(
                    f"{path} has no column {c!r}.", f"Its columns are: {', '.join(header)}."
                )
            idx.append(header.index(c))
        prev = reader.line_num
        try:
            for rec in reader:
                start, prev = prev + 1, reader.line_num
                if not rec or all(not v.strip() for v in rec):
                    continue
                vals = [rec[i] if i < len(rec) else None for i in idx]
                yield _Row(f"line {start}", *vals)
        except csv.Error as e:
            raise DataError(
                f"Cannot parse {path} as CSV at line {reader.line_num}: {_clause(str(e))}."
            ) from None


def _parquet_rows(path: Path, columns: list[str]) -> Iterator[_Row]:
    import pyarrow.parquet as pq

    try:
        pf = pq.ParquetFile(path)
    except Exception as e:  # pyarrow raises ArrowInvalid, OSError, ...
        raise DataError(f"Cannot read {path} as Parquet: {_clause(str(e))}.") from None
    names = pf.schema_arrow.names
    for c in columns:
        if c not in names:
            raise UsageError(
                f"{path} has no column {c!r}.", f"Its columns are: {', '.join(names)}."
            )
    n = 0
    for batch in pf.iter_batches(columns=list(dict.fromkeys(columns)), batch_size=65536):
        cols = [batch.column(c).to_pylist() for c in columns]
        for vals in zip(*cols, strict=True):
            n += 1
            yield _Row(f"row {n}", *vals)


def _number(v: Any) -> float | None:
    """A finite float, or None."""
    if v is None or isinstance(v, bool):
        return None
    try:
        x = float(v.strip()) if isinstance(v, str) else float(v)
    except (TypeError, ValueError):
        return None
    return x if math.isfinite(x) else None


def _validate(
    rows: Iterator[_Row],
    space_name: str,
    dataset: str,
    split: str,
    million_costs: bool,
    scale: float = 1.0,
) -> tuple[TruthBatch, list[str], int]:
    """Validated rows as a batch, the bad-row messages (all of them) and the row count;
    ``scale`` multiplies every accuracy before it is checked (100 for fractions)."""
    from nasfilter.spaces import get_space

    space = get_space(space_name)
    batch = TruthBatch()
    bad: list[str] = []
    seen: dict[str, str] = {}
    total = 0
    for r in rows:
        total += 1
        problems = []
        arch = None
        if r.arch is None or (isinstance(r.arch, str) and not r.arch.strip()):
            problems.append("empty identity")
        else:
            try:
                arch = space.canonical(str(r.arch).strip())
            except InvalidArchitectureError as e:
                problems.append(e.message.rstrip(". "))
        acc = _number(r.accuracy)
        if acc is not None:
            acc *= scale
        if acc is None:
            problems.append(f"accuracy {r.accuracy!r} is not a finite number")
        elif not 0.0 <= acc <= 100.0:
            problems.append(f"accuracy {acc:g} is not a percentage in [0, 100]")
        if arch is not None and arch in seen:
            problems.append(f"duplicate of {seen[arch]} ({arch})")
        if problems:
            bad.append(f"{r.where}: {'; '.join(problems)}")
            continue
        assert arch is not None and acc is not None
        seen[arch] = r.where
        params = flops = None
        if million_costs:
            p, f = _number(r.params), _number(r.flops)
            params = million_to_count(p) if p is not None else None
            flops = million_to_count(f) if f is not None else None
        batch.add(arch, dataset, split, acc, None, params, flops)
    return batch, bad, total


def _clause(text: str) -> str:
    """A message as a clause inside a sentence: one line, no full stop at the end."""
    lines = str(text).strip().splitlines()
    return (lines[0] if lines else "").strip().rstrip(". ")


def _refuse(path: Path | str, bad: list[str], total: int) -> DataError:
    shown = "; ".join(_clause(b) for b in bad[:MAX_REPORTED])
    more = f" (and {len(bad) - MAX_REPORTED} more)" if len(bad) > MAX_REPORTED else ""
    return DataError(
        f"{path}: {len(bad):,} of {total:,} rows are bad, nothing was imported: {shown}{more}.",
        "Fix or remove those rows and import again.",
    )


def import_table(
    store: Store,
    path: str | Path,
    space: str,
    dataset: str,
    arch_col: str,
    acc_col: str,
    split: str = "valid",
    source: str | None = None,
    scale: float | None = None,
) -> LoadSummary:
    """Validate a whole CSV/Parquet file and upsert it in one transaction.

    Accuracies are percent. ``scale`` multiplies each one first (100 for fractions). Without
    it, a file whose accuracies all lie in [0, 1] is refused as probably fractions.
    """
    from nasfilter.spaces import get_space

    if scale is not None and not (math.isfinite(scale) and scale > 0):
        raise UsageError(
            f"--scale must be a positive number, not {scale:g}.",
            "Pass 100 for fractions (0.93 -> 93%), or 1.",
        )
    started = time.perf_counter()
    space_name = get_space(space).name
    dataset = canonical_dataset(dataset)
    split = canonical_split(split)
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"No file {p}.")
    name = p.name.lower()
    if name.endswith(PARQUET_SUFFIXES):
        rows, fmt = _parquet_rows(p, [arch_col, acc_col]), "parquet"
    elif name.endswith(CSV_SUFFIXES):
        rows, fmt = _csv_rows(p, [arch_col, acc_col]), "csv"
    else:
        raise UsageError(
            f"Cannot tell the format of {p}.",
            f"Name it *.csv (or {', '.join(CSV_SUFFIXES[1:])}) or *.parquet.",
        )
    batch, bad, total = _validate(
        rows, space_name, dataset, split, million_costs=False, scale=scale or 1.0
    )
    if bad:
        raise _refuse(p, bad, total)
    if not len(batch):
        raise DataError(f"{p} has no data rows.")
    if scale is None and max(batch.accuracy) <= 1.0:
        raise UsageError(
            f"{p}: all {len(batch):,} accuracies lie in [0, 1], so they look like fractions, "
            "but nasfilter stores percent. Nothing was imported.",
            "Pass --scale 100 to store them as percent, or --scale 1 to store them as they are.",
        )
    resolved = str(p.resolve())
    settings = {
        "file": resolved,
        "format": fmt,
        "arch_col": arch_col,
        "acc_col": acc_col,
        "dataset": dataset,
        "split": split,
        "rows_read": total,
        "accuracy_unit": "percent",
        "scale": scale or 1.0,
    }
    return write_truth(store, "import", space_name, source or p.name, settings, batch, started)


def sample_path() -> Any:
    """The shipped sample (an importlib.resources Traversable)."""
    return resources.files("nasfilter.sample_data").joinpath(SAMPLE_FILE)


def load_sample(store: Store) -> LoadSummary:
    """Load the shipped NAS-Bench-Suite-Zero NAS-Bench-201 sample (all three datasets).

    Stored as space nats-tss, split 'valid', source 'nas-bench-suite-zero', with NASLib's
    'cifar10' as 'cifar10-valid'; params and flops (millions in the file) as counts.
    """
    started = time.perf_counter()
    text = sample_path().read_text(encoding="utf-8")
    reader = csv.DictReader(io.StringIO(text))
    per_dataset: dict[str, list[_Row]] = {}
    line = 1
    for rec in reader:
        line += 1
        ds = rec["dataset"]
        if ds not in SAMPLE_DATASETS:  # pragma: no cover - the shipped file is fixed
            raise DataError(f"{SAMPLE_FILE} line {line}: unknown dataset {ds!r}.")
        per_dataset.setdefault(ds, []).append(
            _Row(f"line {line}", rec["arch_str"], rec["val_accuracy"], rec["params"], rec["flops"])
        )
    batch = TruthBatch()
    for ds, rows in per_dataset.items():
        b, bad, total = _validate(iter(rows), SAMPLE_SPACE, SAMPLE_DATASETS[ds], "valid", True)
        if bad:  # pragma: no cover - the shipped file is fixed
            raise _refuse(SAMPLE_FILE, bad, total)
        for col in (
            "arch",
            "dataset",
            "split",
            "accuracy",
            "benchmark_index",
            "bench_params",
            "bench_flops",
        ):
            getattr(batch, col).extend(getattr(b, col))
    settings = {
        "file": f"nasfilter/sample_data/{SAMPLE_FILE}",
        "origin": "NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets and "
        "Benchmarks), NASLib repository automl/NASLib naslib/data/, Apache-2.0",
        "accuracy": "val_accuracy: NASLib's recorded validation accuracy after full "
        "(200-epoch) training, percent",
        "dataset_map": SAMPLE_DATASETS,
        "split": "valid",
        "params_unit": "file: millions; stored x 1e6 as a count",
        "flops_unit": "file: millions; stored x 1e6 as a count",
    }
    return write_truth(store, "sample", SAMPLE_SPACE, SAMPLE_SOURCE, settings, batch, started)
