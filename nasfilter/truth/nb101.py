"""Ground truth for NAS-Bench-101, without TensorFlow: the official files and the sample.

**The files.** ``nasbench_only108.tfrecord`` (108 epochs) and ``nasbench_full.tfrecord``
(4, 12, 36 and 108 epochs) are TFRecord files (``nasfilter.truth.tfrecord``) with one
record per training run. Each record is a JSON list (``nasbench/api.py``)::

    [module_hash, epochs, adjacency, operations, metrics]

``adjacency`` is the n x n matrix as a string of 0/1 (row-major), ``operations`` the
comma-joined op names, ``metrics`` a base64 ``nasbench.ModelMetrics`` protobuf
(``nasbench/lib/model_metrics.proto``, decoded here by a small reader of the protobuf
wire format)::

    ModelMetrics   { repeated EvaluationData evaluation_data = 1;
                     optional int32 trainable_parameters = 2; optional double total_time = 3; }
    EvaluationData { optional double current_epoch = 1; optional double training_time = 2;
                     optional double train_accuracy = 3; optional double validation_accuracy = 4;
                     optional double test_accuracy = 5; optional string checkpoint_path = 6; }

Each run has three evaluations: at the start, half-way and at the end of training; the
last is the run's result (as the official API's ``final_*`` values). Each cell was
trained three times (repeats) per epoch budget.

**What is stored.** Per cell (keyed by its canonical identity), dataset ``cifar10``:
split ``valid`` = the validation accuracy (10,000 images held out of the training set),
split ``test`` = the test accuracy, in percent, averaged over the repeats (or one repeat,
``repeat=0|1|2``); ``bench_params`` = the benchmark's ``trainable_parameters``. The rest
(hash, every repeat, train accuracy, training time, the half-way values) is returned in
an :class:`NB101Extras` table and can be written to a Parquet file (``side_file``) until
the truth schema has columns for it.

The reader streams: one batch of records at a time, and per-cell arrays of the space's
size (a few tens of MB whatever the file).
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import json
import math
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from nasfilter.errors import DataError, InvalidArchitectureError, UsageError
from nasfilter.store import Store
from nasfilter.truth import LoadSummary, TruthBatch, million_to_count, write_truth

SPACE = "nb101"
DATASET = "cifar10"
EPOCHS = (4, 12, 36, 108)
REPEATS = 3
SAMPLE_FILE = "nb101_sample.csv"
SAMPLE_SOURCE = "nas-bench-suite-zero"


# -- protobuf wire format ----------------------------------------------------------------


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ValueError("truncated varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


@dataclass
class Evaluation:
    """``nasbench.EvaluationData``."""

    current_epoch: float = math.nan
    training_time: float = math.nan
    train_accuracy: float = math.nan
    validation_accuracy: float = math.nan
    test_accuracy: float = math.nan
    checkpoint_path: str = ""


@dataclass
class ModelMetrics:
    """``nasbench.ModelMetrics``."""

    evaluation_data: list[Evaluation] = field(default_factory=list)
    trainable_parameters: int | None = None
    total_time: float = math.nan


_EVAL_DOUBLES = {
    1: "current_epoch",
    2: "training_time",
    3: "train_accuracy",
    4: "validation_accuracy",
    5: "test_accuracy",
}


_DOUBLE = struct.Struct("<d").unpack_from


def _skip(buf: bytes, pos: int, wire: int) -> int:
    """Position after a field's value of wire type ``wire`` starting at ``pos``."""
    if wire == 0:
        return _varint(buf, pos)[1]
    if wire == 1:
        return pos + 8
    if wire == 2:
        length, pos = _varint(buf, pos)
        return pos + length
    if wire == 5:
        return pos + 4
    raise ValueError(f"unsupported wire type {wire}")


_FIVE_DOUBLES = struct.Struct("<xdxdxdxdxd").unpack_from
_FIVE_KEYS = bytes([1 << 3 | 1, 2 << 3 | 1, 3 << 3 | 1, 4 << 3 | 1, 5 << 3 | 1])


def _decode_evaluation(buf: bytes, pos: int, end: int) -> Evaluation:
    ev = Evaluation()
    # fast path: fields 1-5 first, in order, as protobuf serializers write them
    if end - pos >= 45 and buf[pos : pos + 45 : 9] == _FIVE_KEYS:
        (
            ev.current_epoch,
            ev.training_time,
            ev.train_accuracy,
            ev.validation_accuracy,
            ev.test_accuracy,
        ) = _FIVE_DOUBLES(buf, pos)
        pos += 45
    while pos < end:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if wire == 1 and 1 <= number <= 5:
            if pos + 8 > end:
                raise ValueError("truncated double")
            setattr(ev, _EVAL_DOUBLES[number], _DOUBLE(buf, pos)[0])
            pos += 8
        elif number == 6 and wire == 2:
            length, pos = _varint(buf, pos)
            ev.checkpoint_path = buf[pos : pos + length].decode("utf-8", "replace")
            pos += length
        else:
            pos = _skip(buf, pos, wire)
    if pos != end:
        raise ValueError("truncated EvaluationData")
    return ev


def decode_model_metrics(buf: bytes) -> ModelMetrics:
    """Decode a serialized ``nasbench.ModelMetrics`` (unknown fields are skipped; for
    repeated scalars the last value wins, as protobuf says). Raises ValueError."""
    m = ModelMetrics()
    pos, n = 0, len(buf)
    while pos < n:
        key, pos = _varint(buf, pos)
        number, wire = key >> 3, key & 7
        if number == 0:
            raise ValueError("field number 0")
        if number == 1 and wire == 2:
            length, pos = _varint(buf, pos)
            if pos + length > n:
                raise ValueError("truncated evaluation_data")
            m.evaluation_data.append(_decode_evaluation(buf, pos, pos + length))
            pos += length
        elif number == 2 and wire == 0:
            v, pos = _varint(buf, pos)
            m.trainable_parameters = v - (1 << 64) if v >= 1 << 63 else v  # int32 sign
        elif number == 3 and wire == 1:
            if pos + 8 > n:
                raise ValueError("truncated total_time")
            m.total_time = _DOUBLE(buf, pos)[0]
            pos += 8
        else:
            pos = _skip(buf, pos, wire)
        if pos > n:
            raise ValueError("truncated field")
    return m


# -- records ---------------------------------------------------------------------------


def parse_record(data: bytes) -> tuple[str, int, str, str, str]:
    """The JSON fields of a record: (hash, epochs, adjacency, operations, metrics b64)."""
    row = json.loads(data.decode("utf-8"))
    if not (isinstance(row, list) and len(row) == 5):
        raise ValueError("a record is not a 5-element JSON list")
    module_hash, epochs, adjacency, operations, metrics = row
    if not (
        isinstance(module_hash, str)
        and isinstance(epochs, int)
        and isinstance(adjacency, str)
        and isinstance(operations, str)
        and isinstance(metrics, str)
    ):
        raise ValueError("a record's fields have the wrong types")
    return module_hash, epochs, adjacency, operations, metrics


def matrix_of_string(adjacency: str) -> list[list[int]]:
    dim = math.isqrt(len(adjacency))
    if dim * dim != len(adjacency) or set(adjacency) - {"0", "1"}:
        raise ValueError(f"adjacency {adjacency!r} is not a square 0/1 matrix")
    return [[int(adjacency[i * dim + j]) for j in range(dim)] for i in range(dim)]


# -- loading -----------------------------------------------------------------------------


@dataclass
class NB101Extras:
    """What the truth table has no column for, per cell that has runs (row ``i`` is the
    cell at enumeration position ``index[i]``), for the chosen epoch budget."""

    epochs: int
    index: np.ndarray  # int64 enumeration positions
    arch: list[str]
    module_hash: list[str]
    repeats: np.ndarray  # runs found per cell
    valid: np.ndarray  # (cells, 3) validation accuracy per repeat, percent, NaN if absent
    test: np.ndarray
    train: np.ndarray
    training_time: np.ndarray  # seconds, per repeat
    halfway_valid: np.ndarray
    halfway_test: np.ndarray
    params: np.ndarray  # trainable_parameters (int64)

    def runs_table(self) -> Any:
        """The ``truth_runs`` rows (one per cell and repeat that has a result), as Arrow."""
        import pyarrow as pa

        cells, reps = np.nonzero(~np.isnan(self.valid) | ~np.isnan(self.test))
        n = len(cells)
        return pa.table(
            {
                "arch": pa.array([self.arch[i] for i in cells], pa.string()),
                "dataset": pa.array([DATASET] * n, pa.string()),
                "epochs": pa.array(np.full(n, self.epochs), pa.int32()),
                "run": pa.array(reps.astype(np.int32), pa.int32()),
                "valid_accuracy": pa.array(self.valid[cells, reps], from_pandas=True),
                "test_accuracy": pa.array(self.test[cells, reps], from_pandas=True),
                "train_accuracy": pa.array(self.train[cells, reps], from_pandas=True),
                "train_seconds": pa.array(self.training_time[cells, reps], from_pandas=True),
                "halfway_valid_accuracy": pa.array(
                    self.halfway_valid[cells, reps], from_pandas=True
                ),
                "halfway_test_accuracy": pa.array(self.halfway_test[cells, reps], from_pandas=True),
            }
        )

    def to_arrow(self) -> Any:
        import pyarrow as pa

        cols: dict[str, Any] = {
            "arch": pa.array(self.arch, pa.string()),
            "module_hash": pa.array(self.module_hash, pa.string()),
            "epochs": pa.array(np.full(len(self.arch), self.epochs), pa.int32()),
            "repeats": pa.array(self.repeats, pa.int32()),
            "trainable_parameters": pa.array(self.params, pa.int64()),
        }
        for name in ("valid", "test", "train", "training_time", "halfway_valid", "halfway_test"):
            arr = getattr(self, name)
            for r in range(REPEATS):
                cols[f"{name}_{r}"] = pa.array(arr[:, r], pa.float64(), from_pandas=True)
        return pa.table(cols)


def read_nb101(
    path: str | Path,
    epochs: int = 108,
    check_crc: bool = True,
    on_progress: Callable[[int], None] | None = None,
) -> NB101Extras:
    """Read every run at ``epochs`` from an official NB101 TFRecord file into per-cell
    arrays (streamed; memory is bounded by the space, not the file: under 200 MB).
    Checks the framing CRCs, that each hash names one cell, that the file's hashes are
    the space's (all of them when the space's hash index is cached, else 200), and that
    the runs of a cell agree on its parameter count."""
    from nasfilter.spaces.nb101 import enumeration
    from nasfilter.spaces.nb101.cells import (
        canonical_cell,
        canonicalize,
        fast_spec,
        format_cell,
        is_canonical,
        parse_spec,
    )
    from nasfilter.truth.tfrecord import iter_records

    if epochs not in EPOCHS:
        raise UsageError(
            f"--epochs {epochs} is not a NAS-Bench-101 budget.", "Choose 4, 12, 36 or 108."
        )
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(
            f"No file {p}.",
            "Download nasbench_only108.tfrecord or nasbench_full.tfrecord "
            "(links in github.com/google-research/nasbench's README).",
        )
    table = enumeration.table()
    size = len(table)
    count = np.zeros(size, dtype=np.int8)
    shape = (size, REPEATS)
    arrays = {
        k: np.full(shape, np.nan)
        for k in ("valid", "test", "train", "training_time", "halfway_valid", "halfway_test")
    }
    params = np.full(size, -1, dtype=np.int64)
    hashes = np.zeros((size, 16), dtype=np.uint8)
    cell_of_hash: dict[str, int] = {}
    epochs_seen: set[int] = set()

    def bad(k: int, why: str) -> DataError:
        return DataError(
            f"{p}: record {k:,} is not a NAS-Bench-101 record ({why}).",
            "Is this nasbench_only108.tfrecord or nasbench_full.tfrecord?",
        )

    for k, data in enumerate(iter_records(p, check_crc=check_crc, on_progress=on_progress)):
        try:
            h, e, adjacency, operations, b64 = parse_record(data)
            epochs_seen.add(e)
            if e != epochs:
                continue
            i = cell_of_hash.get(h)
            if i is None:
                raw = bytes.fromhex(h)
                if len(raw) != 16:
                    raise ValueError(f"hash {h!r} is not 32 hex digits")
                cell = fast_spec(adjacency, operations)
                if cell is None:  # unpruned or malformed: the full parser says which
                    try:
                        n, edges, labels = parse_spec(
                            matrix_of_string(adjacency), operations.split(","), f"hash {h}"
                        )
                    except InvalidArchitectureError as err:
                        raise ValueError(err.message) from None
                    cell = canonical_cell(n, edges, labels)
                elif not is_canonical(cell):  # stored in another vertex order
                    cell = canonicalize(cell)
                i = table.rank(cell)
                if count[i]:
                    raise DataError(
                        f"{p}: hashes {bytes(hashes[i]).hex()} and {h} both name the cell "
                        f"{format_cell(table.cell(i))}.",
                        "The file is corrupt or not NAS-Bench-101.",
                    )
                cell_of_hash[h] = i
                hashes[i] = np.frombuffer(raw, dtype=np.uint8)
            m = decode_model_metrics(base64.b64decode(b64, validate=True))
        except (ValueError, UnicodeDecodeError, binascii.Error) as err:
            raise bad(k, str(err)) from None
        r = int(count[i])
        if r >= REPEATS:
            raise DataError(
                f"{p}: more than {REPEATS} runs of {format_cell(table.cell(i))} at "
                f"{epochs} epochs.",
                "The file is corrupt or not NAS-Bench-101.",
            )
        count[i] = r + 1
        if len(m.evaluation_data) < 2:
            raise bad(k, f"{len(m.evaluation_data)} evaluations, expected 3")
        final, half = m.evaluation_data[-1], m.evaluation_data[len(m.evaluation_data) // 2]
        arrays["valid"][i, r] = 100.0 * final.validation_accuracy
        arrays["test"][i, r] = 100.0 * final.test_accuracy
        arrays["train"][i, r] = 100.0 * final.train_accuracy
        arrays["training_time"][i, r] = final.training_time
        arrays["halfway_valid"][i, r] = 100.0 * half.validation_accuracy
        arrays["halfway_test"][i, r] = 100.0 * half.test_accuracy
        tp = m.trainable_parameters
        if tp is not None:
            if params[i] >= 0 and params[i] != tp:
                raise DataError(f"{p}: the runs of hash {h} disagree on trainable_parameters.")
            params[i] = tp

    if epochs not in epochs_seen:
        have = ", ".join(str(e) for e in sorted(epochs_seen)) or "none"
        raise DataError(
            f"{p} has no runs at {epochs} epochs (it has: {have}).",
            "nasbench_only108.tfrecord has only 108; use nasbench_full.tfrecord for 4, 12, 36.",
        )
    index = np.flatnonzero(count > 0)
    hex_of = [bytes(hashes[int(i)]).hex() for i in index]
    _check_hashes(table, index, hex_of, p)
    return NB101Extras(
        epochs=epochs,
        index=index,
        arch=[format_cell(table.cell(int(i))) for i in index],
        module_hash=hex_of,
        repeats=count[index].astype(np.int64),
        params=params[index],
        **{k: v[index] for k, v in arrays.items()},
    )


def _check_hashes(table: Any, index: np.ndarray, hex_of: list[str], path: Path) -> None:
    """The file's hashes against the space's own: all of them when the space's hash index
    is cached, else 200 cells spread over the file, hashed here."""
    from nasfilter.spaces.nb101.cells import cell_hash

    if table.hashes_path.is_file():
        ours = table.hashes()
        picks = range(len(index))
        theirs = [bytes(ours[int(index[k])]).hex() for k in picks]
    else:
        picks = range(0, len(index), max(1, len(index) // 200))
        theirs = [cell_hash(table.cell(int(index[k]))) for k in picks]
    for k, h in zip(picks, theirs, strict=True):
        if hex_of[k] != h:
            raise DataError(
                f"{path}: the file gives hash {hex_of[k]} to the cell whose NAS-Bench-101 "
                f"hash is {h}.",
                "The file is corrupt or not NAS-Bench-101.",
            )


def parse_repeat(repeat: str | int) -> int | None:
    """``'mean'`` (None) or a repeat 0, 1, 2."""
    if isinstance(repeat, int) and not isinstance(repeat, bool):
        r: int | None = repeat
    else:
        t = str(repeat).strip().lower()
        if t == "mean":
            return None
        try:
            r = int(t)
        except ValueError:
            r = -1
    if r is None or not 0 <= r < REPEATS:
        raise UsageError(f"--repeat must be 'mean', 0, 1 or 2 (got {repeat!r}).")
    return r


def load_nb101(
    store: Store,
    path: str | Path,
    epochs: int = 108,
    repeat: str | int = "mean",
    side_file: str | Path | None = None,
    check_crc: bool = True,
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Load an official NB101 TFRecord file into the truth table (space ``nb101``,
    dataset ``cifar10``, splits ``valid`` and ``test``), in one transaction.

    ``repeat``: ``'mean'`` over the runs of each cell (default), or one repeat (0-2).
    ``side_file``: also write the per-cell extras (hash, every repeat, train accuracy,
    training time, half-way values) as Parquet there. ``on_total(bytes)`` /
    ``on_progress(bytes)``: file size and bytes read, for a progress bar.
    """
    started = time.perf_counter()
    r = parse_repeat(repeat)
    p = Path(path).expanduser()
    if on_total is not None and p.is_file():
        on_total(p.stat().st_size)
    ex = read_nb101(p, epochs, check_crc, on_progress)
    batch = TruthBatch()
    missing = 0
    partial = 0
    for k, arch in enumerate(ex.arch):
        if ex.repeats[k] < REPEATS:
            partial += 1
        for split, arr in (("valid", ex.valid), ("test", ex.test)):
            row = arr[k]
            acc = float(np.nanmean(row)) if r is None else float(row[r])
            if math.isnan(acc):
                missing += 1
                continue
            params = float(ex.params[k]) if ex.params[k] >= 0 else None
            times = ex.training_time[k]
            secs = float(np.nanmean(times)) if r is None else float(times[r])
            batch.add(
                arch,
                DATASET,
                split,
                acc,
                None,
                params,
                None,
                bench_hash=ex.module_hash[k],
                epochs=epochs,
                runs=int(np.count_nonzero(~np.isnan(row))) if r is None else 1,
                train_seconds=None if math.isnan(secs) else secs,
            )
    if not len(batch):
        raise DataError(f"{p} has no results for repeat {repeat} at {epochs} epochs.")
    side = None
    if side_file is not None:
        import pyarrow.parquet as pq

        side = Path(side_file).expanduser().resolve()
        pq.write_table(ex.to_arrow(), side)
    stat = p.stat()
    settings = {
        "file": str(p.resolve()),
        "file_bytes": stat.st_size,
        "reader": "nasfilter TFRecord reader (CRC-32C checked)" if check_crc else "unchecked",
        "epochs": epochs,
        "repeat": "mean over repeats" if r is None else f"repeat {r}",
        "cells": len(ex.arch),
        "cells_with_fewer_than_3_runs": partial,
        "rows_without_value": missing,
        "dataset": DATASET,
        "splits": {
            "valid": "final validation_accuracy (10,000 images held out of the CIFAR-10 "
            "training set), x100",
            "test": "final test_accuracy (CIFAR-10 test set), x100",
        },
        "bench_params": "ModelMetrics.trainable_parameters",
        "extras": "truth (bench_hash, epochs, runs, train_seconds) and truth_runs (every run)"
        + (f"; also written to {side}" if side else ""),
    }
    return write_truth(store, "nb101", SPACE, p.name, settings, batch, started, ex.runs_table())


# -- the shipped sample --------------------------------------------------------------------


def sample_path() -> Any:
    """The shipped NAS-Bench-Suite-Zero NB101 sample (an importlib.resources Traversable)."""
    return resources.files("nasfilter.sample_data").joinpath(SAMPLE_FILE)


@dataclass
class SampleRow:
    line: int
    arch: str
    val_accuracy: float
    params: float  # count
    flops: float  # count
    values: dict[str, float]  # the file's proxy columns


def read_sample() -> list[SampleRow]:
    """The 500 rows of the shipped sample, each with its canonical identity."""
    from nasfilter.spaces.nb101 import canonical_identity

    text = sample_path().read_text(encoding="utf-8")
    out = []
    reader = csv.DictReader(io.StringIO(text))
    proxies = [c for c in (reader.fieldnames or []) if c not in _SAMPLE_FIXED]
    for line, rec in enumerate(reader, start=2):
        spec = json.dumps({"matrix": json.loads(rec["matrix"]), "ops": json.loads(rec["ops"])})
        out.append(
            SampleRow(
                line,
                canonical_identity(spec),
                float(rec["val_accuracy"]),
                million_to_count(float(rec["params"])),
                million_to_count(float(rec["flops"])),
                {c: float(rec[c]) for c in proxies},
            )
        )
    return out


_SAMPLE_FIXED = ("dataset", "matrix", "ops", "val_accuracy", "params", "flops")


def load_nb101_sample(store: Store) -> LoadSummary:
    """Load the shipped NAS-Bench-Suite-Zero NB101 sample: 500 rows, 292 distinct cells.

    Stored as space nb101, dataset cifar10, split 'valid', source 'nas-bench-suite-zero'.
    Rows of the same cell (NASLib sampled some cells several times, in different vertex
    orders) are one truth row: the mean of their val_accuracy (each row is one of
    NAS-Bench-101's three runs, drawn at random by the benchmark's query); bench_params
    and bench_flops are the file's when its rows of that cell agree, else NULL (the file
    counted each row's network in that row's vertex order).
    """
    started = time.perf_counter()
    rows = read_sample()
    groups: dict[str, list[SampleRow]] = {}
    for row in rows:
        groups.setdefault(row.arch, []).append(row)
    batch = TruthBatch()
    disagree = 0
    for arch, rs in groups.items():
        acc = sum(r.val_accuracy for r in rs) / len(rs)
        params = {r.params for r in rs}
        flops = {r.flops for r in rs}
        if len(params) > 1 or len(flops) > 1:
            disagree += 1
        batch.add(
            arch,
            DATASET,
            "valid",
            acc,
            None,
            params.pop() if len(params) == 1 else None,
            flops.pop() if len(flops) == 1 else None,
        )
    settings = {
        "file": f"nasfilter/sample_data/{SAMPLE_FILE}",
        "origin": "NAS-Bench-Suite-Zero (Krishnakumar et al., NeurIPS 2022 Datasets and "
        "Benchmarks), NASLib repository automl/NASLib naslib/data/, Apache-2.0",
        "accuracy": "val_accuracy: NAS-Bench-101 validation accuracy after 108 epochs "
        "(one of its three runs per row, as NASLib queried it), percent; rows of the same "
        "cell averaged",
        "rows": len(rows),
        "cells": len(groups),
        "cells_whose_rows_disagree_on_params_or_flops": disagree,
        "split": "valid",
        "params_unit": "file: millions; stored x 1e6 as a count",
        "flops_unit": "file: millions; stored x 1e6 as a count",
    }
    return write_truth(store, "sample", SPACE, SAMPLE_SOURCE, settings, batch, started)
