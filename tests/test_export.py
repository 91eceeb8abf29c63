"""`nasfilter export`: never overwrites silently, never writes onto the database, carries
the run's settings and metric metadata, and a status column per metric."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from nasfilter.errors import UsageError
from nasfilter.store import BatchWriter, Store, export_parquet
from tests.conftest import invoke


def _score(runner: CliRunner, db: Path, *args: str) -> None:
    r = invoke(runner, "score", *args, "--db", str(db))
    assert r.exit_code == 0, r.output


def _one_line_error(r, code: int = 2) -> str:  # type: ignore[no-untyped-def]
    assert r.exit_code == code, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    assert "Traceback" not in r.output
    return lines[0]


def _runs(db: Path) -> int:
    con = duckdb.connect(str(db), read_only=True)
    try:
        row = con.execute("SELECT count(*) FROM runs").fetchone()
        assert row is not None
        return int(row[0])
    finally:
        con.close()


def test_an_existing_file_is_replaced_only_with_force(
    runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    _score(runner, db, "nats-sss", "--n", "7")
    out = tmp_path / "mine.parquet"
    out.write_bytes(b"precious")
    r = invoke(runner, "export", "--out", str(out), "--db", str(db))
    assert "--force" in _one_line_error(r)
    assert out.read_bytes() == b"precious"
    r = invoke(runner, "export", "--out", str(out), "--db", str(db), "--force")
    assert r.exit_code == 0, r.output
    assert pq.read_table(out).num_rows == 7
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["mine.parquet", db.name])


def test_never_onto_the_database_or_its_wal_even_with_force(
    runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    _score(runner, db, "nats-sss", "--n", "5")
    before = db.read_bytes()
    link = tmp_path / "link.parquet"
    link.symlink_to(db)
    hard = tmp_path / "hard.parquet"
    os.link(db, hard)
    for target in (db, Path(str(db) + ".wal"), link, hard):
        r = invoke(runner, "export", "--out", str(target), "--db", str(db), "--force")
        assert "database" in _one_line_error(r)
    assert db.read_bytes() == before
    assert not Path(str(db) + ".wal").exists()
    assert _runs(db) == 1


def test_a_folder_as_out_is_one_line_and_leaves_nothing(
    runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    _score(runner, db, "nats-sss", "--n", "5")
    folder = tmp_path / "out"
    folder.mkdir()
    for extra in ((), ("--force",)):
        r = invoke(runner, "export", "--out", str(folder), "--db", str(db), *extra)
        assert "folder" in _one_line_error(r)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([db.name, "out"])
    assert list(folder.iterdir()) == []


def test_settings_metric_metadata_and_status_columns(db: Path, tmp_path: Path) -> None:
    with Store.open(db) as s:
        settings = {"space": "nats-sss", "seed": 11, "data": "synthetic", "penalty": "gdf"}
        metrics = [
            {
                "name": name,
                "version": version,
                "higher_is_better": hib,
                "needs_model": False,
                "needs_data": False,
                "needs_gradients": False,
                "path": "analytic",
                "description": f"{name} for the test",
                "unit": None,
            }
            for name, version, hib in (
                ("params", "1", False),
                ("size_kb", "1", False),
                ("naswot", "3", True),
            )
        ]
        run = s.create_run("score", "nats-sss", settings, 11, 3, "test", metrics)
        w = BatchWriter(s, run)
        rows = [
            ("8:8:8:8:8", 11714.0, 1574.2, "ok"),
            ("16:8:8:8:8", 12000.0, -math.inf, "singular"),
            ("64:64:64:64:64", 713674.0, math.nan, "nan"),
        ]
        for pos, (arch, params, score, status) in enumerate(rows):
            w.add_score(arch, "params", pos, params, "ok", 0.0)
            w.add_score(arch, "size_kb", pos, params / 1000, "ok", 0.0)
            w.add_score(arch, "naswot", pos, score, status, 0.5)
        w.flush()
        s.set_run_status(run, "completed")
        out = tmp_path / "run.parquet"
        assert export_parquet(s, run, out) == 3
        stored_settings = s.con.execute(
            "SELECT settings FROM runs WHERE run_id = ?", [run]
        ).fetchone()
    t = pq.read_table(out)
    assert t.column_names == [
        "space",
        "arch",
        "params",
        "params_status",
        "size_kb",
        "size_kb_status",
        "naswot",
        "naswot_status",
    ]
    d = t.to_pydict()
    assert d["arch"] == [r[0] for r in rows]  # draw order
    assert d["params"] == [11714, 12000, 713674]
    assert d["naswot_status"] == ["ok", "singular", "nan"]
    assert d["naswot"][0] == 1574.2 and d["naswot"][1] == -math.inf
    assert math.isnan(d["naswot"][2])  # stored as it is, never a placeholder
    md = t.schema.metadata
    rec = json.loads(md[b"nasfilter.run"])
    assert stored_settings is not None and rec["settings"] == json.loads(stored_settings[0])
    assert rec["settings"] == settings
    assert rec["seed"] == 11 and rec["run_id"] == run and rec["status"] == "completed"
    meta = {m["metric"]: m for m in json.loads(md[b"nasfilter.metrics"])}
    assert sorted(meta) == ["naswot", "params", "size_kb"]
    assert meta["naswot"]["version"] == "3" and meta["naswot"]["higher_is_better"] is True
    assert meta["params"]["higher_is_better"] is False
    assert md[b"nasfilter.version"].decode()


def test_library_refuses_the_same_targets(db: Path, tmp_path: Path) -> None:
    with Store.open(db) as s:
        run = s.create_run("score", "nats-sss", {}, 0, 0, None, [])
        with pytest.raises(UsageError, match="database"):
            export_parquet(s, run, db, force=True)
        with pytest.raises(UsageError, match="does not exist"):
            export_parquet(s, run, tmp_path / "no" / "x.parquet")
