"""Ground truth: NATS-Bench through its real API (tiny benchmark written here in the
genuine format), table import with validation, the shipped sample, upserts, errors."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from nasfilter.errors import DataError, UnknownSpaceError, UsageError
from nasfilter.store import Store
from nasfilter.truth import accuracy_of, canonical_dataset
from nasfilter.truth.nats import iter_architectures, load_nats_bench, open_api
from nasfilter.truth.table import import_table, load_sample
from tests.conftest import invoke
from tests.fixtures import nats_bench_tiny as tiny

CELL_A = tiny.TSS_ARCHS[0]
CELL_B = tiny.TSS_ARCHS[1]


def _truth(store: Store, where: str = "TRUE") -> list[tuple]:
    return store.con.execute(
        "SELECT space, arch, dataset, split, accuracy, source, benchmark_index, bench_params,"
        f" bench_flops, load_id FROM truth WHERE {where} ORDER BY ALL"
    ).fetchall()


def _count(store: Store, table: str) -> int:
    return store.con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]


# -- schema ----------------------------------------------------------------------------------


def test_truth_table_has_the_agreed_columns(db: Path) -> None:
    with Store.open(db) as st:
        cols = st.con.execute(
            "SELECT column_name, data_type FROM information_schema.columns"
            " WHERE table_name = 'truth' ORDER BY ordinal_position"
        ).fetchall()
        assert cols == [
            ("space", "VARCHAR"),
            ("arch", "VARCHAR"),
            ("dataset", "VARCHAR"),
            ("split", "VARCHAR"),
            ("accuracy", "DOUBLE"),
            ("source", "VARCHAR"),
            ("benchmark_index", "BIGINT"),
            ("bench_params", "DOUBLE"),
            ("bench_flops", "DOUBLE"),
            ("load_id", "INTEGER"),
            ("bench_hash", "VARCHAR"),
            ("epochs", "INTEGER"),
            ("runs", "INTEGER"),
            ("train_seconds", "DOUBLE"),
        ]
        loads = [
            c
            for (c,) in st.con.execute(
                "SELECT column_name FROM information_schema.columns"
                " WHERE table_name = 'truth_loads' ORDER BY ordinal_position"
            ).fetchall()
        ]
        assert loads == [
            "load_id",
            "kind",
            "space",
            "datasets",
            "source",
            "settings",
            "rows",
            "loaded_at",
            "nasfilter_version",
        ]


def test_dataset_names_are_nats_bench_s_in_any_case() -> None:
    assert canonical_dataset("imagenet16-120") == "ImageNet16-120"
    assert canonical_dataset("CIFAR10-VALID") == "cifar10-valid"
    assert canonical_dataset("Cifar100") == "cifar100"
    with pytest.raises(UsageError, match="cifar10-valid, cifar10, cifar100, ImageNet16-120"):
        canonical_dataset("mnist")


# -- NATS-Bench through the real API -----------------------------------------------------------


def test_tss_load_reads_the_real_api_and_stores_exact_values(tmp_path: Path, db: Path) -> None:
    tiny.write_benchmark(tmp_path / "torch", "tss")
    with Store.open(db) as st:
        s = load_nats_bench(st, "nats-tss", tmp_path / "torch")
        # 4 archs x (cifar10-valid 2 + cifar10 1 + cifar100 2 + ImageNet16-120 2) values
        assert s.rows == 28 and s.kind == "nats_bench" and s.source == "NATS-tss-v1_0-3ffb9"
        rows = _truth(st)
        assert len(rows) == 28
        for space, arch, dataset, split, acc, source, index, params, flops, load_id in rows:
            assert space == "nats-tss" and source == "NATS-tss-v1_0-3ffb9" and load_id == 1
            assert arch == tiny.TSS_ARCHS[index]
            assert acc == tiny.expected(index, dataset, split, "200")  # mean over 3 seeds
            assert params == 372_346 + 1_000 * index + tiny.CLASSES[dataset]
            assert flops == 110_000_000 + 123_456 * index + tiny.CLASSES[dataset]
        # cifar10 (trained on train+valid) has a test accuracy only
        assert {sp for (_, _, d, sp, *_) in rows if d == "cifar10"} == {"test"}
        # the settings are recorded with the load
        kind, ds, settings = st.con.execute(
            "SELECT kind, datasets, settings FROM truth_loads"
        ).fetchone()
        settings = json.loads(settings)
        assert kind == "nats_bench" and ds == list(tiny.EVAL_SETS)
        assert settings["hp"] == "200" and settings["is_random"] is False
        assert settings["fast_mode"] is True and "1e6" in settings["params_unit"]
        assert accuracy_of(st, "nats-tss", "cifar10-valid", "valid") == {
            a: tiny.expected(i, "cifar10-valid", "valid", "200")
            for i, a in enumerate(tiny.TSS_ARCHS)
        }


def test_hp_trial_and_datasets_are_honoured(tmp_path: Path, db: Path) -> None:
    tiny.write_benchmark(tmp_path, "tss")
    with Store.open(db) as st:
        load_nats_bench(st, "nats-tss", tmp_path, ["CIFAR100"], hp="12", trial="888")
        rows = _truth(st)
        assert {r[2] for r in rows} == {"cifar100"} and len(rows) == 8
        for r in rows:
            assert r[4] == tiny.expected(r[6], "cifar100", r[3], "12", trial=888)
        settings = json.loads(st.con.execute("SELECT settings FROM truth_loads").fetchone()[0])
        assert settings["hp"] == "12" and settings["is_random"] == 888


def test_sss_identities_become_canonical(tmp_path: Path, db: Path) -> None:
    d = tiny.write_benchmark(tmp_path, "sss")
    with Store.open(db) as st:
        s = load_nats_bench(st, "nats-sss", d, ["cifar10-valid"])  # the folder itself
        assert s.rows == 6 and s.source == "NATS-sss-v1_0-50262"
        got = st.con.execute(
            "SELECT benchmark_index, arch FROM truth WHERE split = 'valid' ORDER BY 1"
        ).fetchall()
        assert got == list(enumerate(tiny.SSS_ARCHS))
        settings = json.loads(st.con.execute("SELECT settings FROM truth_loads").fetchone()[0])
        assert settings["hp"] == "90"


def test_each_architecture_is_dropped_from_the_api_cache(tmp_path: Path) -> None:
    d = tiny.write_benchmark(tmp_path, "tss")
    api = open_api("nats-tss", d)
    seen = 0
    for index, rows in iter_architectures(api, "nats-tss", ["cifar10-valid"], "200", False, {}):
        assert rows and index == seen
        assert len(api.arch2infos_dict) == 0 and len(api.evaluated_indexes) == 0
        seen += 1
    assert seen == len(tiny.TSS_ARCHS)


def test_costs_equal_the_api_s_get_cost_info(tmp_path: Path, db: Path) -> None:
    d = tiny.write_benchmark(tmp_path, "tss")
    import nats_bench

    api = nats_bench.create(str(d), "tss", fast_mode=True, verbose=False)
    with Store.open(db) as st:
        load_nats_bench(st, "nats-tss", d, ["cifar100"])
        for i in range(len(tiny.TSS_ARCHS)):
            c = api.get_cost_info(i, "cifar100", hp="200")
            p, f = st.con.execute(
                "SELECT DISTINCT bench_params, bench_flops FROM truth WHERE benchmark_index = ?",
                [i],
            ).fetchone()
            assert p == round(c["params"] * 1e6) and f == round(c["flops"] * 1e6)


def test_default_directory_is_torch_home(tmp_path: Path, db: Path, monkeypatch) -> None:
    tiny.write_benchmark(tmp_path / "th", "tss")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "th"))
    with Store.open(db) as st:
        assert load_nats_bench(st, "nats-tss", None, ["cifar10"]).rows == 4


def test_missing_benchmark_directory_is_one_helpful_line(
    runner, tmp_path: Path, db: Path, monkeypatch
) -> None:
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "nothing"))
    r = invoke(runner, "truth", "load", "nats-tss", "--db", str(db))
    assert r.exit_code == 4
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and err.startswith("Error:")
    for needle in (
        "NATS-tss-v1_0-3ffb9-simple",
        "NATS-sss-v1_0-50262-simple",
        "TORCH_HOME",
        "github.com/D-X-Y/NATS-Bench",
        str(tmp_path / "nothing"),
    ):
        assert needle in err
    r = invoke(
        runner, "truth", "load", "nats-sss", "--benchmark-dir", str(tmp_path), "--db", str(db)
    )
    assert r.exit_code == 4 and "--benchmark-dir" in r.stderr


def test_corrupt_files_are_named_and_nothing_is_stored(tmp_path: Path, db: Path) -> None:
    d = tiny.write_benchmark(tmp_path, "tss")
    (d / "000002.pickle.pbz2").write_bytes(b"BZh91AY&SY not really bzip2")
    with Store.open(db) as st:
        with pytest.raises(DataError, match="000002.pickle.pbz2") as e:
            load_nats_bench(st, "nats-tss", d)
        assert "corrupt" in str(e.value)
        assert _count(st, "truth") == 0 and _count(st, "truth_loads") == 0
    (d / "meta.pickle.pbz2").write_bytes(b"garbage")
    with Store.open(db) as st, pytest.raises(DataError, match="meta.pickle.pbz2"):
        load_nats_bench(st, "nats-tss", d)


def test_missing_arch_file_and_unknown_hp(tmp_path: Path, db: Path) -> None:
    d = tiny.write_benchmark(tmp_path, "tss")
    with Store.open(db) as st:
        with pytest.raises(DataError, match=r"has no results for --hp 90 \(it has: 12, 200\)"):
            load_nats_bench(st, "nats-tss", d, hp="90")
        (d / "000003.pickle.pbz2").unlink()
        with pytest.raises(DataError, match="Missing NATS-Bench file .*000003.pickle.pbz2"):
            load_nats_bench(st, "nats-tss", d)
        assert _count(st, "truth") == 0


def test_load_rejects_other_spaces_and_bad_trials(tmp_path: Path, db: Path) -> None:
    with Store.open(db) as st:
        with pytest.raises(UnknownSpaceError):
            load_nats_bench(st, "nats-xyz", tmp_path)
        with pytest.raises(UsageError, match="--trial"):
            load_nats_bench(st, "nats-tss", tmp_path, trial="best")


def test_cli_load_shows_the_summary(runner, tmp_path: Path, db: Path) -> None:
    tiny.write_benchmark(tmp_path, "tss")
    r = invoke(
        runner,
        "truth",
        "load",
        "nats-tss",
        "--benchmark-dir",
        str(tmp_path),
        "-d",
        "cifar10-valid,imagenet16-120",
        "--db",
        str(db),
    )
    assert r.exit_code == 0, r.output
    assert "16 truth rows" in r.stderr and "ImageNet16-120/test 4" in r.stderr
    r = invoke(runner, "truth", "list", "--db", str(db), "-f", "json")
    got = {(x["dataset"], x["split"]): x["archs"] for x in json.loads(r.stdout)}
    assert got == {
        ("cifar10-valid", "valid"): 4,
        ("cifar10-valid", "test"): 4,
        ("ImageNet16-120", "valid"): 4,
        ("ImageNet16-120", "test"): 4,
    }


# -- import ------------------------------------------------------------------------------------


def _write_csv(path: Path, rows: list[list[str]], header=("cell", "acc", "other")) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


def test_import_csv_stores_canonical_rows_and_upserts(tmp_path: Path, db: Path) -> None:
    f = _write_csv(tmp_path / "t.csv", [[CELL_A, "91.5", "x"], [CELL_B, " 70 ", "y"]])
    with Store.open(db) as st:
        s = import_table(st, f, "nats-tss", "Cifar10-Valid", "cell", "acc")
        assert s.rows == 2 and s.replaced == 0 and s.source == "t.csv"
        assert _truth(st) == sorted(
            [
                ("nats-tss", CELL_A, "cifar10-valid", "valid", 91.5, "t.csv", None, None, None, 1),
                ("nats-tss", CELL_B, "cifar10-valid", "valid", 70.0, "t.csv", None, None, None, 1),
            ]
        )
        g = _write_csv(tmp_path / "u.csv", [[CELL_A, "92.25", ""]])
        s = import_table(st, g, "nats-tss", "cifar10-valid", "cell", "acc", source="mine")
        assert s.replaced == 1 and s.load_id == 2
        assert accuracy_of(st, "nats-tss", "cifar10-valid", "valid") == {
            CELL_A: 92.25,
            CELL_B: 70.0,
        }
        assert st.con.execute(
            "SELECT source, load_id FROM truth WHERE arch = ?", [CELL_A]
        ).fetchone() == ("mine", 2)
        assert st.con.execute(
            "SELECT source, load_id FROM truth WHERE arch = ?", [CELL_B]
        ).fetchone() == ("t.csv", 1)
        # a test-split import is a different key
        import_table(st, g, "nats-tss", "cifar10-valid", "cell", "acc", split="test")
        assert _count(st, "truth") == 3
        kind, settings = st.con.execute(
            "SELECT kind, settings FROM truth_loads WHERE load_id = 3"
        ).fetchone()
        assert kind == "import" and json.loads(settings)["split"] == "test"


def test_bad_rows_refuse_the_whole_file_with_line_numbers(runner, tmp_path: Path, db: Path) -> None:
    rows = [
        [CELL_A, "91.5", ""],  # line 2: fine
        ["|none~0|+|bogus~0|none~1|+|none~0|none~1|none~2|", "80", ""],  # line 3
        [CELL_B, "abc", ""],  # line 4: not a number
        [tiny.TSS_ARCHS[2], "nan", ""],  # line 5: NaN
        [tiny.TSS_ARCHS[3], "", ""],  # line 6: empty accuracy
        [CELL_A, "90", ""],  # line 7: duplicate of line 2
        ["", "50", ""],  # line 8: empty identity
        [CELL_B, "101", ""],  # line 9: not a percentage
    ]
    f = _write_csv(tmp_path / "bad.csv", rows)
    with Store.open(db) as st:
        with pytest.raises(DataError) as e:
            import_table(st, f, "nats-tss", "cifar10-valid", "cell", "acc")
        msg = str(e.value)
        assert "7 of 8 rows are bad, nothing was imported" in msg
        for line in ("line 3:", "line 4:", "line 5:", "line 6:", "line 7:"):
            assert line in msg
        assert "unknown operation 'bogus'" in msg and "'abc' is not a finite number" in msg
        assert "duplicate of line 2" in msg and "(and 2 more)" in msg
        assert "line 2:" not in msg
        assert _count(st, "truth") == 0 and _count(st, "truth_loads") == 0
    r = invoke(
        runner,
        "truth",
        "import",
        str(f),
        "--space",
        "nats-tss",
        "--dataset",
        "cifar10",
        "--arch-col",
        "cell",
        "--acc-col",
        "acc",
        "--db",
        str(db),
    )
    assert r.exit_code == 4 and len(r.stderr.strip().splitlines()) == 1
    assert "line 3:" in r.stderr


def test_line_numbers_count_multiline_records_and_blank_lines(tmp_path: Path, db: Path) -> None:
    f = tmp_path / "m.csv"
    f.write_text(f'cell,acc,note\n{CELL_A},90,"two\nlines"\n\n{CELL_B},oops,x\n')
    with Store.open(db) as st, pytest.raises(DataError, match=r"line 5: accuracy 'oops'"):
        import_table(st, f, "nats-tss", "cifar100", "cell", "acc")


def test_import_parquet_and_its_row_numbers(tmp_path: Path, db: Path) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    good = tmp_path / "g.parquet"
    pq.write_table(pa.table({"a": ["64:64:64:64:64", "8:16:24:32:40"], "y": [55.0, 44.5]}), good)
    bad = tmp_path / "b.parquet"
    pq.write_table(pa.table({"a": ["64:64:64:64:64", "8:16:24:32:41"], "y": [55.0, None]}), bad)
    with Store.open(db) as st:
        s = import_table(st, good, "nats-sss", "ImageNet16-120", "a", "y", split="test")
        assert s.rows == 2
        assert accuracy_of(st, "nats-sss", "imagenet16-120", "test") == {
            "64:64:64:64:64": 55.0,
            "8:16:24:32:40": 44.5,
        }
        with pytest.raises(DataError, match=r"row 2: .*width 41 is not allowed.*not a finite"):
            import_table(st, bad, "nats-sss", "cifar10", "a", "y")
        assert _count(st, "truth") == 2


def test_import_usage_errors(tmp_path: Path, db: Path) -> None:
    f = _write_csv(tmp_path / "t.csv", [[CELL_A, "91.5", ""]])
    with Store.open(db) as st:
        with pytest.raises(UsageError, match="no column 'accuracy'.*cell, acc, other"):
            import_table(st, f, "nats-tss", "cifar10", "cell", "accuracy")
        with pytest.raises(UnknownSpaceError):
            import_table(st, f, "nas-bench-999", "cifar10", "cell", "acc")
        with pytest.raises(UsageError, match="Unknown dataset 'svhn'"):
            import_table(st, f, "nats-tss", "svhn", "cell", "acc")
        with pytest.raises(UsageError, match="Unknown split"):
            import_table(st, f, "nats-tss", "cifar10", "cell", "acc", split="train")
        with pytest.raises(DataError, match="No file"):
            import_table(st, tmp_path / "none.csv", "nats-tss", "cifar10", "cell", "acc")
        with pytest.raises(UsageError, match="format"):
            import_table(st, f.rename(tmp_path / "t.xlsx"), "nats-tss", "cifar10", "cell", "acc")
        assert _count(st, "truth") == 0


# -- the shipped sample ------------------------------------------------------------------------


def test_sample_loads_three_datasets_with_exact_values(db: Path) -> None:
    with Store.open(db) as st:
        s = load_sample(st)
        assert s.rows == 2173 and s.kind == "sample" and s.source == "nas-bench-suite-zero"
        assert s.counts == {
            "cifar10-valid/valid": 724,
            "cifar100/valid": 725,
            "ImageNet16-120/valid": 724,
        }
        cell = (
            "|skip_connect~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
            "|nor_conv_1x1~0|nor_conv_1x1~1|none~2|"
        )
        got = st.con.execute(
            "SELECT accuracy, bench_params, bench_flops, benchmark_index, source FROM truth"
            " WHERE arch = ? AND dataset = 'cifar10-valid'",
            [cell],
        ).fetchone()
        assert got == (86.06, 615386.0, 88307392.0, None, "nas-bench-suite-zero")
        # the benchmark's params equal nasfilter's analytic count for every row
        from nasfilter.spaces import DATASETS, get_space

        tss = get_space("nats-tss")
        shape = {
            "cifar10-valid": "cifar10",
            "cifar100": "cifar100",
            "ImageNet16-120": "imagenet16-120",
        }
        for arch, ds, p in st.con.execute(
            "SELECT arch, dataset, bench_params FROM truth"
        ).fetchall():
            assert tss.costs(arch, DATASETS[shape[ds]]).params == p
        again = load_sample(st)
        assert again.replaced == 2173 and _count(st, "truth") == 2173
        assert st.con.execute("SELECT DISTINCT load_id FROM truth").fetchall() == [(2,)]


def test_cli_sample_and_the_sql_view(runner, db: Path) -> None:
    r = invoke(runner, "truth", "sample", "--db", str(db))  # every shipped sample
    assert r.exit_code == 0 and "2,173 truth rows for nats-tss" in r.stderr
    assert "292 truth rows for nb101" in r.stderr
    r = invoke(runner, "truth", "sample", "nats-sss", "--db", str(db))
    assert r.exit_code == 2 and "No sample is shipped for nats-sss" in r.stderr
    r = invoke(
        runner,
        "sql",
        "SELECT dataset, archs FROM truth_summary WHERE space = 'nats-tss' ORDER BY dataset",
        "--db",
        str(db),
        "-f",
        "csv",
    )
    assert r.stdout.splitlines()[1:] == ["ImageNet16-120,724", "cifar10-valid,724", "cifar100,725"]


def test_the_project_never_reads_shared_data() -> None:
    root = Path(__file__).resolve().parent.parent / "nasfilter"
    for p in root.rglob("*.py"):
        assert "shared/data" not in p.read_text(encoding="utf-8"), p


def test_a_failing_write_leaves_nothing_behind(db: Path) -> None:
    from nasfilter.truth import TruthBatch, write_truth

    b = TruthBatch()
    b.add(CELL_A, "cifar10", "test", 90.0)
    b.add(CELL_A, "cifar10", "test", 91.0)
    with Store.open(db) as st:
        with pytest.raises(DataError, match="more than once"):
            write_truth(st, "import", "nats-tss", "x", {}, b)
        b = TruthBatch()
        b.add(CELL_A, "cifar10", "test", 90.0)
        b.add(CELL_B, "cifar10", "train", 91.0)  # violates the table's CHECK: insert fails
        with pytest.raises(Exception, match="(?i)constraint"):
            write_truth(st, "import", "nats-tss", "x", {}, b)
        assert _count(st, "truth") == 0 and _count(st, "truth_loads") == 0
