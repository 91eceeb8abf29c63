"""NDS ground truth: the streaming JSON reader and ``load_nds`` on tiny files written in
the genuine layout (records with every key NDS's files carry, written by Python's json
module as NDS's were, NaN losses included)."""

from __future__ import annotations

import gzip
import io
import json
import math
from pathlib import Path
from typing import Any

import pytest

from nasfilter.errors import DataError, UsageError
from nasfilter.spaces import get_space
from nasfilter.store import Store
from nasfilter.truth.jsonstream import JsonStreamError, iter_records
from nasfilter.truth.nds import load_nds
from tests.fixtures.nds_records import RECORDS


def record(net: dict, errs: list[float], params: int = 1000, flops: int = 2000, job: int = 0):  # type: ignore[no-untyped-def]
    """One NDS record: the keys of NDS's sweep summaries (see NNI's nds/db_gen.py)."""
    n = len(errs)
    return {
        "job_id": job,
        "rng_seed": 1,
        "exp_mem": 811.2,
        "params": params,
        "flops": flops,
        "net": net,
        "optim": {"base_lr": 0.1, "wd": 0.0005, "max_ep": n, "lr_policy": "cos"},
        "act_mem": 402.1,
        "prec_time": {"train_fw_bw": 0.059, "test_fw": 0.012},
        "iter_time": 0.061,
        "min_test_top1": min(errs),
        "train_ep_loss": [2.1, float("nan"), 0.9][:n] + [0.5] * max(0, n - 3),
        "train_ep_top1": [80.0 - i for i in range(n)],
        "test_ep_top1": errs,
        "train_it_loss": [2.3, 2.2, float("nan"), 2.0],
        "train_it_top1": [90.0, 88.5, 87.25, 85.0],
    }


def _rows(st: Store, space: str) -> list[tuple]:
    return st.con.execute(
        "SELECT arch, dataset, split, accuracy, benchmark_index, bench_params, bench_flops,"
        " source FROM truth WHERE space = ? ORDER BY benchmark_index",
        [space],
    ).fetchall()


def _write(path: Path, doc: Any, indent: int | None = None) -> Path:
    text = json.dumps(doc, indent=indent)  # NaN written as NaN, as Python's json does
    if path.name.endswith(".gz"):
        with gzip.open(path, "wt", encoding="utf-8") as f:
            f.write(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def test_a_list_file_loads_accuracy_costs_and_positions(tmp_path: Path, db: Path) -> None:
    sp = get_space("nds-resnet")
    _space, published, params, flops, acc = RECORDS[1]
    other = json.loads(sp.sample(1, seed=0)[0])
    recs = [
        record(published, [60.0, 20.0, 100.0 - acc], params, flops, job=11),
        record(other, [50.0, 12.5], 5, 6, job=12),
        record(published, [40.0, 6.25], params, flops, job=13),  # a re-run of the first
    ]
    path = _write(tmp_path / "ResNet.json", recs, indent=1)
    with Store.open(db) as st:
        summary = load_nds(st, "nds-resnet", path)
        rows = _rows(st, "nds-resnet")
        kind, settings = st.con.execute("SELECT kind, settings FROM truth_loads").fetchall()[0]
    assert summary.rows == 2 and summary.counts == {"cifar10/test": 2}
    first, second = rows
    assert first[0] == sp.canonical(json.dumps(published))
    # the two runs of the published network: mean of (100 - last error)
    assert first[3] == pytest.approx(((100.0 - (100.0 - acc)) + (100.0 - 6.25)) / 2)
    assert first[1:3] == ("cifar10", "test") and first[4:] == (0, params, flops, "ResNet.json")
    assert second[3] == 87.5 and second[4:7] == (1, 5, 6)
    s = json.loads(settings)
    assert kind == "nds" and s["records_read"] == 3 and s["repeated_architectures"] == 1
    assert s["layout"] == "list"


def test_an_imagenet_file_of_top_and_mid_lists_loads(tmp_path: Path, db: Path) -> None:
    sp = get_space("nds-darts-in")
    nets = [json.loads(a) for a in sp.sample(4, seed=2)]
    # members in the other order than NASWOT numbers them: top first, then mid
    doc = {
        "mid": [record(nets[0], [70.0, 55.5], job=1), record(nets[1], [71.0, 60.0], job=2)],
        "top": [record(nets[2], [60.0, 30.0], job=3), record(nets[3], [61.0, 28.75], job=4)],
    }
    path = _write(tmp_path / "DARTS_in.json.gz", doc)
    with Store.open(db) as st:
        load_nds(st, "nds-darts-in", path, source="NDS DARTS_in")
        rows = _rows(st, "nds-darts-in")
    got = {r[0]: (r[3], r[4], r[1], r[7]) for r in rows}
    canon = [sp.canonical_object(n) for n in nets]
    assert got == {
        canon[2]: (70.0, 0, "imagenet", "NDS DARTS_in"),
        canon[3]: (71.25, 1, "imagenet", "NDS DARTS_in"),
        canon[0]: (44.5, 2, "imagenet", "NDS DARTS_in"),
        canon[1]: (40.0, 3, "imagenet", "NDS DARTS_in"),
    }


def test_a_truncated_file_is_one_line_and_nothing_is_written(tmp_path: Path, db: Path) -> None:
    sp = get_space("nds-enas")
    recs = [record(json.loads(a), [30.0, 10.0]) for a in sp.sample(3, seed=1)]
    text = json.dumps(recs)
    path = tmp_path / "ENAS.json"
    path.write_text(text[: len(text) * 2 // 3], encoding="utf-8")
    with Store.open(db) as st:
        with pytest.raises(DataError) as info:
            load_nds(st, "nds-enas", path)
        assert st.con.execute("SELECT count(*) FROM truth").fetchone() == (0,)
    msg = str(info.value)
    assert "\n" not in msg and "the file ends inside record 2" in msg and "truncated" in msg


def test_bad_records_refuse_the_file_naming_them(tmp_path: Path, db: Path) -> None:
    sp = get_space("nds-pnas")
    good = json.loads(sp.sample(1, seed=0)[0])
    bad_net = json.loads(json.dumps(good))
    bad_net["genotype"]["normal"][0][0] = "conv_9x9"
    recs = [
        record(good, [30.0, 10.0]),
        record(bad_net, [30.0, 10.0]),
        {**record(good, [30.0]), "test_ep_top1": []},
        record(good, [30.0, 101.0]),
    ]
    path = _write(tmp_path / "PNAS.json", recs)
    with Store.open(db) as st, pytest.raises(DataError) as info:
        load_nds(st, "nds-pnas", path)
    msg = str(info.value)
    assert "\n" not in msg and "3 of 4 records are bad" in msg
    assert "record 1: Invalid nds-pnas config: genotype.normal[0]: unknown operation" in msg
    assert "record 2: no test_ep_top1" in msg and "record 3: test_ep_top1[-1] = 101" in msg


def test_a_file_of_another_space_says_which_file_is_expected(tmp_path: Path, db: Path) -> None:
    path = _write(tmp_path / "ResNet.json", [record(RECORDS[1][1], [10.0])])
    with Store.open(db) as st, pytest.raises(DataError, match="Is it NDS's DARTS.json"):
        load_nds(st, "nds-darts", path)


def test_other_spaces_and_missing_files_are_refused(tmp_path: Path, db: Path) -> None:
    with Store.open(db) as st:
        with pytest.raises(UsageError, match="not an NDS space"):
            load_nds(st, "nats-tss", tmp_path / "x.json")
        with pytest.raises(DataError, match="No file"):
            load_nds(st, "nds-darts", tmp_path / "missing.json")
        with pytest.raises(DataError, match="holds no records"):
            load_nds(st, "nds-darts", _write(tmp_path / "empty.json", []))


# -- the streaming reader -----------------------------------------------------------------


def test_records_are_the_same_whatever_the_chunk_boundaries() -> None:
    recs = [
        {"i": i, "s": 'é\n"x"' * (i % 4), "v": [1.5e-3, -2, 1e300], "n": float("nan")}
        for i in range(60)
    ]
    for doc in (recs, {"top": recs[:20], "mid": recs[20:]}, {"top": [], "mid": recs}):
        text = json.dumps(doc, indent=2)
        for chunk in (1, 2, 5, 13, 4096):
            got = list(iter_records(io.StringIO(text), chunk=chunk))
            assert [r["i"] for _m, _k, r in got] == list(range(60))
            assert all(math.isnan(r["n"]) and r["v"][2] == 1e300 for _m, _k, r in got)
    got = list(iter_records(io.StringIO(json.dumps({"top": recs[:2], "mid": recs[2:3]}))))
    assert [(m, k) for m, k, _ in got] == [("top", 0), ("top", 1), ("mid", 0)]


class _Counting(io.StringIO):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.read_chars = 0

    def read(self, size: int | None = -1) -> str:
        s = super().read(size)
        self.read_chars += len(s)
        return s


def test_reading_is_streamed_not_whole_file() -> None:
    rec = json.dumps({"net": {"x": list(range(200))}, "test_ep_top1": [1.0] * 100})
    text = "[" + ",".join([rec] * 5000) + "]"  # ~7 MB
    f = _Counting(text)
    records = iter_records(f, chunk=1 << 16)
    next(records)
    assert f.read_chars <= 1 << 16
    for _ in range(999):
        next(records)
    assert f.read_chars < 1000 * len(rec) + (1 << 17)
    # a malformed record stops the reading there, not at the end of the file
    broken = "[" + ",".join([rec] * 10) + ',{"net": oops}' + "," + ",".join([rec] * 5000) + "]"
    f = _Counting(broken)
    with pytest.raises(JsonStreamError, match="invalid JSON in record 10"):
        list(iter_records(f, chunk=1 << 16))
    assert f.read_chars <= 2 << 16


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "the file is empty"),
        ('{"top": 3}', "member 'top' is not a list of records"),
        ("[1 2]", "expected ',' or ']' after record 0"),
        ('[{"a": 1}] x', "unexpected text after the JSON document"),
        ('[{"a": "b', "the file ends inside record 0"),
        ('{"top": [{}], "mid": [', "the file ends before mid[0]"),
        ("42", "expected a JSON array or object"),
    ],
)
def test_malformed_text_is_located(text: str, fragment: str) -> None:
    with pytest.raises(JsonStreamError) as info:
        list(iter_records(io.StringIO(text), chunk=3))
    assert fragment in info.value.message and "line 1" in info.value.message


def test_cli_loads_scores_and_analyzes_an_nds_space(tmp_path: Path, db: Path) -> None:
    """End to end: `truth load nds-resnet --file`, `score --archs` of the file's configs,
    `analyze` against the loaded test accuracy."""
    import random

    from typer.testing import CliRunner

    from tests.conftest import invoke

    runner = CliRunner()
    space = get_space("nds-resnet")
    nets = space.sample(12, 5)
    rnd = random.Random(0)
    recs = [
        record(json.loads(a), [60.0, 20.0 + rnd.random() * 10], params=1000 + i)
        for i, a in enumerate(nets)
    ]
    f = _write(tmp_path / "ResNet.json", recs)
    r = invoke(runner, "truth", "load", "nds-resnet", "--file", str(f), "--db", str(db))
    assert r.exit_code == 0, r.output
    assert "12 truth rows for nds-resnet" in r.stderr
    r = invoke(runner, "truth", "load", "nds-resnet", "--db", str(db))
    assert r.exit_code == 2 and "Pass --file PATH" in r.stderr
    r = invoke(runner, "truth", "load", "nds-resnet", "--file", str(f), "--hp", "12",
               "--db", str(db))  # fmt: skip
    assert r.exit_code == 2 and "--hp does not apply to nds-resnet" in r.stderr
    archs = tmp_path / "archs.txt"
    archs.write_text("\n".join(json.dumps(json.loads(a), indent=None) for a in nets) + "\n")
    r = invoke(runner, "score", "nds-resnet", "--archs", str(archs), "--db", str(db))
    assert r.exit_code == 0, r.output
    assert r.stdout.strip() == "2" or r.stdout.strip().isdigit()
    r = invoke(runner, "analyze", "--dataset", "cifar10", "--split", "test", "--db", str(db),
               "-f", "json")  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    by = {m["metric"]: m for m in out["metrics"]}
    assert by["relu_count"]["n"] == 12 and by["params"]["n"] == 12


def test_reproduce_runs_on_an_nds_space_with_loaded_truth(tmp_path: Path, db: Path) -> None:
    """Issue 13: `reproduce --space nds-...` works when truth is loaded (tiny settings)."""
    import random

    from typer.testing import CliRunner

    from tests.conftest import invoke

    runner = CliRunner()
    nets = get_space("nds-vanilla").sample(8, 3)
    rnd = random.Random(1)
    recs = [record(json.loads(a), [50.0, 20 + 10 * rnd.random()]) for a in nets]
    f = _write(tmp_path / "Vanilla.json", recs)
    assert invoke(runner, "truth", "load", "nds-vanilla", "--file", str(f), "--db",
                  str(db)).exit_code == 0  # fmt: skip
    out = tmp_path / "rep"
    r = invoke(runner, "reproduce", "--space", "nds-vanilla", "--dataset", "cifar10",
               "--split", "test", "--out", str(out), "--ns", "3", "--repeats", "1",
               "--exp1-n", "4", "--batch-size", "4", "--db", str(db))  # fmt: skip
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    assert "loaded ground truth for cifar10 (test split), 8 architectures" in md
    assert "| relu_count | 4 |" in md and "| naswot | 4 |" in md
