"""NAS-Bench-101 ground truth without TensorFlow: TFRecord framing with masked CRC-32C,
the ModelMetrics protobuf, the loader into the truth table, and the shipped sample.

The tiny benchmark files are written here in the genuine format, from its definitions:
TFRecord framing (tensorflow/core/lib/io/record_writer.cc: length, masked CRC-32C of the
length, data, masked CRC-32C of the data; CRC-32C computed bit by bit below), records
as ``nasbench/api.py`` reads them (JSON ``[hash, epochs, adjacency, ops, base64
metrics]``) and ``ModelMetrics`` encoded by a protobuf writer below from
``nasbench/lib/model_metrics.proto``. Hashes come from this test suite's own
``hash_module`` reference.
"""

from __future__ import annotations

import base64
import json
import math
import struct
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from nasfilter.errors import DataError, UsageError
from nasfilter.store import Store
from nasfilter.truth.nb101 import (
    decode_model_metrics,
    load_nb101,
    load_nb101_sample,
    read_nb101,
    read_sample,
)
from nasfilter.truth.tfrecord import crc32c, crc32c_many, iter_records
from tests.test_nb101_space import (
    FIRST_HASH,
    FIRST_ID,
    FIRST_MATRIX,
    FIRST_OPS,
    INCEPTION_STORED,
    SP,
    ref_hash_module,
)

# -- the format, written from its definitions ----------------------------------------------


def ref_crc32c(data: bytes) -> int:
    """CRC-32C bit by bit: reflected polynomial 0x82F63B78, init and final xor all ones."""
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 if crc & 1 else 0)
    return crc ^ 0xFFFFFFFF


def ref_masked(data: bytes) -> int:
    c = ref_crc32c(data)
    return (((c >> 15) | (c << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def tf_record(data: bytes) -> bytes:
    length = struct.pack("<Q", len(data))
    return (
        length + struct.pack("<I", ref_masked(length)) + data + struct.pack("<I", ref_masked(data))
    )


def pb_varint(n: int) -> bytes:
    n &= (1 << 64) - 1
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def pb_double(field: int, x: float) -> bytes:
    return pb_varint(field << 3 | 1) + struct.pack("<d", x)


def pb_int(field: int, n: int) -> bytes:
    return pb_varint(field << 3 | 0) + pb_varint(n)


def pb_bytes(field: int, b: bytes) -> bytes:
    return pb_varint(field << 3 | 2) + pb_varint(len(b)) + b


def evaluation_data(epoch: float, seconds: float, train: float, valid: float, test: float,
                    path: str = "") -> bytes:  # fmt: skip
    return (
        pb_double(1, epoch)
        + pb_double(2, seconds)
        + pb_double(3, train)
        + pb_double(4, valid)
        + pb_double(5, test)
        + (pb_bytes(6, path.encode()) if path else b"")
    )


def model_metrics(evals: list[bytes], params: int, total: float) -> bytes:
    return b"".join(pb_bytes(1, e) for e in evals) + pb_int(2, params) + pb_double(3, total)


def record(matrix: list[list[int]], ops: list[str], epochs: int, valid: float, test: float,
           params: int, module_hash: str | None = None) -> bytes:  # fmt: skip
    labels = [-1] + [["conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3"].index(o)
                     for o in ops[1:-1]] + [-2]  # fmt: skip
    h = module_hash or ref_hash_module(np.array(matrix), labels)
    evals = [
        evaluation_data(0.0, 0.0, 0.1, 0.1, 0.1),
        evaluation_data(epochs / 2, 50.0 * epochs, 0.5, valid - 0.1, test - 0.1),
        evaluation_data(float(epochs), 100.0 * epochs, 1.0, valid, test, f"/m/{h}/model.ckpt"),
    ]
    metrics = base64.b64encode(model_metrics(evals, params, 123.5)).decode()
    adjacency = "".join(str(x) for row in matrix for x in row)
    return json.dumps([h, epochs, adjacency, ",".join(ops), metrics]).encode()


OUT0 = ([[0, 1], [0, 0]], ["input", "output"])
CELLS = [
    (FIRST_MATRIX, FIRST_OPS, 8_555_530),
    (INCEPTION_STORED["matrix"], INCEPTION_STORED["ops"], 2_694_282),
    (*OUT0, 882_570),
]
VALID = [[0.92, 0.93, 0.94], [0.90, 0.91, 0.95], [0.80, 0.81, 0.82]]
TEST = [[0.91, 0.92, 0.93], [0.89, 0.90, 0.94], [0.79, 0.80, 0.81]]


def write_file(
    path: Path, budgets: tuple[int, ...] = (108,), records: list[bytes] | None = None
) -> Path:
    """A miniature nasbench_only108 / nasbench_full file: every cell, budget and repeat."""
    if records is None:
        records = []
        for e in budgets:
            for c, (m, ops, params) in enumerate(CELLS):
                for r in range(3):
                    shift = 0.0 if e == 108 else -0.01 * (108 - e) / 12
                    records.append(
                        record(m, ops, e, VALID[c][r] + shift, TEST[c][r] + shift, params)
                    )
    path.write_bytes(b"".join(tf_record(x) for x in records))
    return path


# -- framing and CRC -----------------------------------------------------------------------


def test_crc32c_check_value_and_many_buffers_at_once() -> None:
    assert ref_crc32c(b"123456789") == 0xE3069283 == crc32c(b"123456789")  # RFC 3720 B.4
    rng = np.random.default_rng(0)
    bufs = [
        rng.integers(0, 256, int(n), dtype=np.uint8).tobytes() for n in rng.integers(0, 70, 120)
    ]
    bufs += [b"", b"\x00", b"\xff" * 33]
    assert crc32c_many(bufs).tolist() == [ref_crc32c(b) for b in bufs]


def test_records_are_read_back_in_order_and_streamed(tmp_path: Path) -> None:
    """Records come back in order, and memory follows the batch, not the file: four
    times the file, the same peak."""
    rng = np.random.default_rng(1)
    datas = [
        rng.integers(0, 256, int(n), dtype=np.uint8).tobytes() for n in rng.integers(0, 900, 60)
    ]
    block = b"".join(tf_record(d) for d in datas)

    def peak_reading(copies: int) -> tuple[int, int]:
        path = tmp_path / f"x{copies}.tfrecord"
        path.write_bytes(block * copies)
        tracemalloc.start()
        got = 0
        for k, rec in enumerate(iter_records(path, batch_bytes=64 << 10)):
            assert rec == datas[k % len(datas)]
            got += 1
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert got == copies * len(datas)
        return peak, path.stat().st_size

    small, _ = peak_reading(10)
    big, size = peak_reading(40)
    assert size > 1_000_000
    assert big < 1.3 * small, (small, big, size)


def test_corrupt_and_truncated_files_are_refused(tmp_path: Path) -> None:
    datas = [b'{"a": 1}', b"second record", b"third"]
    good = b"".join(tf_record(d) for d in datas)
    first = len(tf_record(datas[0]))
    path = tmp_path / "x.tfrecord"

    bad = bytearray(good)
    bad[first + 12 + 3] ^= 0x01  # a data byte of record 1
    path.write_bytes(bytes(bad))
    with pytest.raises(DataError, match=f"data CRC of record 1 \\(byte offset {first:,}\\)"):
        list(iter_records(path))
    assert list(iter_records(path, check_crc=False))[1] != datas[1]

    bad = bytearray(good)
    bad[first + 7] = 0x7F  # the length of record 1 now reads as huge
    path.write_bytes(bytes(bad))
    with pytest.raises(DataError, match="length CRC of record 1"):
        list(iter_records(path))

    path.write_bytes(good[:-3])
    with pytest.raises(DataError, match="truncated or corrupt: .* after record 2"):
        list(iter_records(path))


# -- the protobuf --------------------------------------------------------------------------


def test_model_metrics_decode_from_the_schema() -> None:
    evals = [
        evaluation_data(0.0, 0.0, 0.1, 0.11, 0.12),
        evaluation_data(54.0, 600.5, 0.8, 0.81, 0.82),
        evaluation_data(108.0, 1201.25, 1.0, 0.9376001358032227, 0.9311898946762085, "/c"),
    ]
    unknown = pb_int(15, 7) + pb_bytes(16, b"xyz") + pb_varint(17 << 3 | 5) + b"\x00" * 4
    m = decode_model_metrics(model_metrics(evals, 2_694_282, 1155.85302734375) + unknown)
    assert m.trainable_parameters == 2_694_282
    assert m.total_time == 1155.85302734375
    assert [e.current_epoch for e in m.evaluation_data] == [0.0, 54.0, 108.0]
    last = m.evaluation_data[-1]
    assert (last.training_time, last.train_accuracy) == (1201.25, 1.0)
    assert (last.validation_accuracy, last.test_accuracy) == (
        0.9376001358032227,
        0.9311898946762085,
    )
    assert last.checkpoint_path == "/c"
    assert decode_model_metrics(pb_int(2, -5)).trainable_parameters == -5  # int32 sign
    assert math.isnan(decode_model_metrics(b"").total_time)
    with pytest.raises(ValueError):
        decode_model_metrics(pb_varint(1 << 3 | 2) + pb_varint(50) + b"short")


# -- loading ---------------------------------------------------------------------------------


def _truth(store: Store) -> dict[tuple[str, str], tuple[float, float | None]]:
    rows = store.con.execute(
        "SELECT arch, split, accuracy, bench_params FROM truth WHERE space = 'nb101'"
        " AND dataset = 'cifar10'"
    ).fetchall()
    return {(a, s): (acc, p) for a, s, acc, p in rows}


def test_load_only108_means_and_repeats(tmp_path: Path) -> None:
    path = write_file(tmp_path / "nasbench_only108.tfrecord")
    side = tmp_path / "extras.parquet"
    with Store.open(tmp_path / "db.duckdb") as st:
        s = load_nb101(st, path, side_file=side)
        assert (s.kind, s.space, s.source, s.rows) == ("nb101", "nb101", path.name, 6)
        assert s.counts == {"cifar10/valid": 3, "cifar10/test": 3}
        assert s.settings["cells"] == 3 and s.settings["cells_with_fewer_than_3_runs"] == 0
        t = _truth(st)
        inception = SP.canonical(json.dumps(INCEPTION_STORED))
        assert t[(FIRST_ID, "valid")] == (pytest.approx(93.0), 8_555_530)
        assert t[(FIRST_ID, "test")][0] == pytest.approx(92.0)
        assert t[(inception, "valid")][0] == pytest.approx(100 * (0.90 + 0.91 + 0.95) / 3)
        assert t[("out~0", "test")] == (pytest.approx(80.0), 882_570)
        # one repeat instead of the mean: replaces the rows
        s2 = load_nb101(st, path, repeat=2)
        assert s2.replaced == 6
        assert _truth(st)[(FIRST_ID, "valid")][0] == pytest.approx(94.0)
    import pyarrow.parquet as pq

    ex = pq.read_table(side).to_pylist()
    by_arch = {r["arch"]: r for r in ex}
    assert by_arch[FIRST_ID]["module_hash"] == FIRST_HASH
    assert by_arch[FIRST_ID]["valid_1"] == pytest.approx(93.0)
    assert by_arch[FIRST_ID]["training_time_2"] == pytest.approx(10800.0)
    assert by_arch[FIRST_ID]["halfway_test_0"] == pytest.approx(91.0 - 10.0)
    assert by_arch["out~0"]["trainable_parameters"] == 882_570
    assert {r["repeats"] for r in ex} == {3} and {r["epochs"] for r in ex} == {108}


def test_load_full_file_at_another_budget_and_refuse_a_missing_one(tmp_path: Path) -> None:
    full = write_file(tmp_path / "nasbench_full.tfrecord", budgets=(4, 12, 36, 108))
    ex = read_nb101(full, epochs=12)
    assert ex.epochs == 12 and len(ex.arch) == 3
    k = ex.arch.index(FIRST_ID)
    assert ex.valid[k].tolist() == pytest.approx([92.0 - 8.0, 93.0 - 8.0, 94.0 - 8.0])
    only = write_file(tmp_path / "nasbench_only108.tfrecord")
    with pytest.raises(DataError, match=r"no runs at 36 epochs \(it has: 108\)"):
        read_nb101(only, epochs=36)
    with pytest.raises(UsageError, match="not a NAS-Bench-101 budget"):
        read_nb101(only, epochs=100)
    with pytest.raises(UsageError, match="--repeat"):
        load_nb101(Store.open(tmp_path / "db.duckdb"), only, repeat=3)


def test_a_cell_stored_in_another_vertex_order_is_keyed_canonically(tmp_path: Path) -> None:
    from tests.test_nb101_space import INCEPTION_QUERY

    recs = [record(INCEPTION_QUERY["matrix"], INCEPTION_QUERY["ops"], 108, 0.9, 0.8, 1)] * 3
    ex = read_nb101(write_file(tmp_path / "f.tfrecord", records=recs))
    assert ex.arch == [SP.canonical(json.dumps(INCEPTION_QUERY))]


@pytest.mark.parametrize(
    ("records", "why"),
    [
        (
            [record(FIRST_MATRIX, FIRST_OPS, 108, 0.9, 0.9, 1, module_hash="ab" * 16)] * 3,
            "gives hash abab",
        ),  # fmt: skip
        ([b"not json"], "record 0 is not a NAS-Bench-101 record"),
        ([json.dumps(["x", 108, "0100", "input,output", "!!"]).encode()], "record 0"),
        ([record(*OUT0, 108, 0.8, 0.8, 1)] * 4, "more than 3 runs of out~0"),
        ([record(*OUT0, 108, 0.8, 0.8, 1), record(*OUT0, 108, 0.8, 0.8, 2)], "disagree"),
        (
            [
                record(*OUT0, 108, 0.8, 0.8, 1, module_hash="cd" * 16),
                record(*OUT0, 108, 0.8, 0.8, 1),
            ],
            "both name the cell out~0",
        ),  # fmt: skip
        ([record([[0, 0], [0, 0]], ["input", "output"], 108, 0.8, 0.8, 1)], "not connected"),
    ],
)
def test_bad_files_are_refused_with_the_reason(
    tmp_path: Path, records: list[bytes], why: str
) -> None:
    path = write_file(tmp_path / "bad.tfrecord", records=records)
    with pytest.raises(DataError, match=why):
        read_nb101(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="No file .*nope.tfrecord"):
        read_nb101(tmp_path / "nope.tfrecord")


# -- the shipped sample --------------------------------------------------------------------


def test_sample_rows_and_loader(tmp_path: Path) -> None:
    rows = read_sample()
    assert len(rows) == 500 and all(r.arch == SP.canonical(r.arch) for r in rows)
    assert set(rows[0].values) == {"synflow", "snip", "grasp", "fisher", "grad_norm", "jacov",
                                   "epe_nas", "l2_norm", "plain"}  # fmt: skip
    with Store.open(tmp_path / "db.duckdb") as st:
        s = load_nb101_sample(st)
        assert (s.kind, s.space, s.source, s.rows) == (
            "sample",
            "nb101",
            "nas-bench-suite-zero",
            292,
        )
        assert s.settings["rows"] == 500 and s.settings["cells"] == 292
        assert s.settings["cells_whose_rows_disagree_on_params_or_flops"] == 3
        t = _truth(st)
    # 55 rows are the smallest cell (a random 7x7 spec with the input-output edge often
    # prunes to it); they show its three NAS-Bench-101 runs, drawn at random per row
    out0 = [r.val_accuracy for r in rows if r.arch == "out~0"]
    assert len(out0) == 55 and len(set(out0)) == 3
    assert t[("out~0", "valid")] == (pytest.approx(sum(out0) / 55), 882_570)
    assert t[("conv1x1~0|conv1x1~1|conv3x3~0|out~1+2+3", "valid")][1] is None


def test_cli_loads_the_tfrecord_and_the_sample_and_analyzes(tmp_path: Path) -> None:
    """End to end: `truth load nb101 --file` (details and every run stored), `truth sample
    nb101`, `score nb101 --archs` of the sample's cells and `analyze` with its defaults."""
    from typer.testing import CliRunner

    from tests.conftest import invoke

    runner = CliRunner()
    db = tmp_path / "cli.duckdb"
    path = write_file(tmp_path / "nasbench_only108.tfrecord")
    r = invoke(runner, "truth", "load", "nb101", "--file", str(path), "--db", str(db))
    assert r.exit_code == 0, r.output
    assert "6 truth rows for nb101" in r.stderr
    with Store.open(db, read_only=True) as st:
        row = st.con.execute(
            "SELECT bench_hash, epochs, runs, train_seconds FROM truth WHERE arch = ?"
            " AND split = 'valid'",
            [FIRST_ID],
        ).fetchone()
        runs = st.con.execute(
            "SELECT run, valid_accuracy FROM truth_runs WHERE arch = ? ORDER BY run", [FIRST_ID]
        ).fetchall()
    assert row[0] == FIRST_HASH and row[1] == 108 and row[2] == 3 and row[3] > 0
    assert [a for _, a in runs] == pytest.approx([92.0, 93.0, 94.0])
    r = invoke(runner, "truth", "load", "nb101", "--file", str(path), "--repeat", "7",
               "--db", str(db))  # fmt: skip
    assert r.exit_code == 2 and "--repeat" in r.stderr
    r = invoke(runner, "truth", "load", "nb101", "--file", str(path), "--hp", "12",
               "--db", str(db))  # fmt: skip
    assert r.exit_code == 2 and "--hp does not apply to nb101" in r.stderr
    r = invoke(runner, "truth", "sample", "nb101", "--db", str(db))
    assert r.exit_code == 0, r.output
    assert "292 truth rows for nb101" in r.stderr
    cells = sorted({x.arch for x in read_sample()})[:60]
    archs = tmp_path / "cells.txt"
    archs.write_text("\n".join(cells) + "\n")
    r = invoke(runner, "score", "nb101", "--archs", str(archs), "--db", str(db))
    assert r.exit_code == 0, r.output
    r = invoke(runner, "analyze", "--db", str(db), "-f", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["dataset"], out["split"]) == ("cifar10", "valid")
    by = {m["metric"]: m for m in out["metrics"]}
    assert by["params"]["n"] == 60
