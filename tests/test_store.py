"""The DuckDB store: migrations, refusal of foreign/newer/locked files, batched writes,
interrupted runs and resume, Parquet export."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from nasfilter import engine
from nasfilter.errors import RunNotFoundError, StoreError, UnknownRunError
from nasfilter.store import BatchWriter, Store, export_parquet, migrations


def test_migrations_are_applied_in_order_and_recorded(db: Path) -> None:
    with Store.open(db) as s:
        applied = s.con.execute("SELECT version FROM schema_migrations ORDER BY 1").fetchall()
        assert [v for (v,) in applied] == [v for v, _, _ in migrations()]
        assert s.schema_version() == migrations()[-1][0]
    # reopening applies nothing twice
    with Store.open(db) as s:
        n = s.con.execute("SELECT count(*) FROM schema_migrations").fetchone()
        assert n == (len(migrations()),)


def test_newer_database_is_refused_and_left_untouched(db: Path) -> None:
    Store.open(db).close()
    con = duckdb.connect(str(db))
    con.execute("INSERT INTO schema_migrations VALUES (999, 'future', now(), '99.0')")
    con.close()
    with pytest.raises(StoreError, match="newer than this nasfilter"):
        Store.open(db)
    con = duckdb.connect(str(db))
    assert con.execute("SELECT max(version) FROM schema_migrations").fetchone() == (999,)
    con.close()


def test_foreign_duckdb_file_is_refused(db: Path) -> None:
    con = duckdb.connect(str(db))
    con.execute("CREATE TABLE mine (x INTEGER)")
    con.close()
    with pytest.raises(StoreError, match="not written by nasfilter"):
        Store.open(db)


def test_corrupt_file_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "bad.duckdb"
    bad.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError, match="Cannot open the database"):
        Store.open(bad)


def test_missing_database_for_reading(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="No database at"):
        Store.open(tmp_path / "none.duckdb", read_only=True)


def test_locked_database_gives_a_clear_error(db: Path) -> None:
    Store.open(db).close()
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            f"import duckdb,time; c=duckdb.connect({str(db)!r}); print('ok', flush=True); "
            "time.sleep(30)",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "ok"
        t = time.perf_counter()
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("NASFILTER_LOCK_TIMEOUT", "0.5")
            with pytest.raises(StoreError, match="held open by another process") as e:
                Store.open(db)
        assert "Close that connection" in str(e.value)
        assert 0.4 < time.perf_counter() - t < 5  # it waited for the lock, then gave up
    finally:
        holder.kill()
        holder.wait()


def test_batch_writer_round_trip_keeps_nan_and_inf(db: Path) -> None:
    with Store.open(db) as s:
        run = s.create_run("score", "nats-sss", {"x": 1}, 0, 3, None)
        w = BatchWriter(s, run, batch_rows=2)
        w.add_architecture("nats-sss", "8:8:8:8:8", 11714, 4481114)
        w.add_score("8:8:8:8:8", "a", 0, 1.0, "ok", 0.1)
        w.add_score("8:8:8:8:8", "b", 0, float("-inf"), "singular", 0.2)
        w.flush()
        assert w.pending == 0
        w.add_score("8:8:8:8:8", "c", 0, float("nan"), "nan", 0.3)
        w.flush()
        rows = s.con.execute("SELECT metric, value, status FROM scores ORDER BY metric").fetchall()
        assert rows[0] == ("a", 1.0, "ok")
        assert rows[1] == ("b", float("-inf"), "singular")
        assert rows[2][0] == "c" and rows[2][1] != rows[2][1] and rows[2][2] == "nan"
        arch = s.con.execute("SELECT * FROM architectures").fetchall()
        assert arch == [("nats-sss", "8:8:8:8:8", 11714, 4481114, 11.714)]


def test_unknown_run_and_empty_database(db: Path) -> None:
    with Store.open(db) as s:
        with pytest.raises(RunNotFoundError, match="no score run yet"):
            s.resolve_run("latest", kind="score")
        with pytest.raises(UnknownRunError, match="No run 42") as e:
            s.resolve_run(42)
        assert e.value.exit_code == 2


def _interrupt_after(k: int):  # type: ignore[no-untyped-def]
    seen = {"n": 0}

    def cb(n: int) -> None:
        seen["n"] += n
        if seen["n"] >= k:
            raise KeyboardInterrupt

    return cb


def test_interrupted_run_keeps_committed_batches_and_resumes_without_duplicates(
    db: Path,
) -> None:
    req = engine.ScoreRequest(space="nats-tss", n=3000, seed=5, metrics="relu_count,flops")
    with Store.open(db) as s:
        run = engine.start(s, req)
        with pytest.raises(engine.RunInterrupted, match=f"--resume {run}"):
            # flush every 200 rows; progress reported every 0.1 s -> interrupt mid-run
            engine.execute(
                s, run, on_progress=_interrupt_after(1), batch_rows=200, flush_seconds=0.0,
                chunk_size=100,
            )  # fmt: skip
        assert s.get_run(run)["status"] == "interrupted"
        kept = s.con.execute("SELECT count(DISTINCT arch) FROM scores").fetchone()[0]
        assert 0 < kept < 3000
        summary = engine.execute(s, run)
        assert summary.archs_skipped == kept
        assert summary.archs_scored == 3000 - kept
        assert s.get_run(run)["status"] == "completed"
        total, distinct = s.con.execute(
            "SELECT count(*), count(DISTINCT (arch, metric)) FROM scores"
        ).fetchone()
        assert total == distinct == 3000 * 4
        # identical to an uninterrupted run with the same seed
        other = engine.start(s, req)
        engine.execute(s, other)
        diff = s.con.execute(
            "SELECT count(*) FROM scores a FULL JOIN scores b "
            "ON a.arch = b.arch AND a.metric = b.metric AND b.run_id = ? "
            "WHERE a.run_id = ? AND (b.value IS NULL OR a.value <> b.value "
            "OR a.position <> b.position)",
            [other, run],
        ).fetchone()
        assert diff == (0,)


def test_export_parquet_one_row_per_architecture(db: Path, tmp_path: Path) -> None:
    with Store.open(db) as s:
        run = engine.start(s, engine.ScoreRequest(space="nats-sss", n=50, seed=1))
        engine.execute(s, run)
        out = tmp_path / "out.parquet"
        assert export_parquet(s, run, out) == 50
        expected = dict(
            s.con.execute(
                "SELECT arch, value FROM scores WHERE metric='relu_count' AND run_id=?", [run]
            ).fetchall()
        )
    t = pq.read_table(out)
    values = ["params", "size_kb", "flops", "relu_count"]
    assert t.column_names == ["space", "arch"] + [c for m in values for c in (m, f"{m}_status")]
    assert t.num_rows == 50
    d = t.to_pydict()
    assert set(d["space"]) == {"nats-sss"}
    assert str(t.schema.field("params").type) == "int64"
    for arch, rc, p, kb in zip(d["arch"], d["relu_count"], d["params"], d["size_kb"], strict=True):
        assert rc == expected[arch]
        assert kb == pytest.approx(p / 1000.0)


def test_results_view_has_one_column_per_metric(db: Path) -> None:
    with Store.open(db) as s:
        run = engine.start(s, engine.ScoreRequest(space="nats-sss", n=5, seed=1))
        engine.execute(s, run)
        cols, rows = s.query("SELECT * FROM results WHERE run_id = ?", [run])
    assert {"relu_count", "params", "flops", "size_kb", "arch", "all_ok"} <= set(cols)
    assert len(rows) == 5


def test_sigterm_marks_the_run_interrupted(db: Path, tmp_path: Path) -> None:
    script = tmp_path / "run.py"
    script.write_text(
        "import sys\nfrom nasfilter import engine\nfrom nasfilter.store import Store\n"
        f"s = Store.open({str(db)!r})\n"
        "run = engine.start(s, engine.ScoreRequest(space='nats-sss', all=True))\n"
        "import time\n"
        "def slow(n):\n    time.sleep(0.002)\n"
        "print(run, flush=True)\n"
        "try:\n    engine.execute(s, run, on_progress=slow, flush_seconds=0.05)\n"
        "except engine.RunInterrupted as e:\n    print('interrupted', flush=True)\n"
        "s.close()\n"
    )
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    assert p.stdout is not None
    run = int(p.stdout.readline())
    time.sleep(1.5)
    p.terminate()
    out = p.communicate(timeout=30)[0]
    assert "interrupted" in out
    with Store.open(db) as s:
        assert s.get_run(run)["status"] == "interrupted"
        n = s.con.execute("SELECT count(*) FROM scores").fetchone()[0]
        assert n > 0 and n % 4 == 0  # whole architectures only
