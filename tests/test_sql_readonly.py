"""`nasfilter sql` is read-only by DuckDB's own settings (a read-only connection with
external access disabled and the configuration locked) and DuckDB's own parser (one
statement, a query): nothing it is given can change or create any file."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest
from typer.testing import CliRunner

from tests.conftest import invoke


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A database with a score run and the shipped truth sample, and a second database
    (made once: every test checks that nothing in this folder changes)."""
    tmp = tmp_path_factory.mktemp("sql")
    db = tmp / "test.duckdb"
    runner = CliRunner()
    r = invoke(runner, "score", "nats-tss", "--n", "30", "--seed", "3", "--db", str(db))
    assert r.exit_code == 0, r.output
    assert invoke(runner, "truth", "sample", "nats-tss", "--db", str(db)).exit_code == 0
    con = duckdb.connect(str(tmp / "other.duckdb"))
    con.execute("CREATE TABLE scores AS SELECT range AS x FROM range(5)")
    con.close()
    return tmp


@pytest.fixture
def scored(folder: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(folder)  # relative paths in the SQL land here
    return folder / "test.duckdb"


def _snapshot(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


REFUSED = [
    "COPY (SELECT * FROM scores) TO 'out.csv'",
    "COPY scores TO '{tmp}/out.parquet' (FORMAT PARQUET)",
    "EXPORT DATABASE '{tmp}/dump'",
    "ATTACH '{tmp}/other.duckdb' AS other (READ_WRITE)",
    "ATTACH '{tmp}/other.duckdb' AS other (READ_WRITE); DELETE FROM other.scores",
    "CREATE TEMP TABLE t AS SELECT 1 AS x",
    "PRAGMA threads=1",
    "PRAGMA table_info('scores')",
    "SET enable_external_access = true",
    "SELECT count(*) FROM scores; DELETE FROM scores",
    "DELETE FROM scores",
    "INSTALL httpfs",
    "CHECKPOINT",
    "CALL pragma_version()",
    "SELECT * FROM read_csv('{tmp}/other.duckdb')",
]


@pytest.mark.parametrize("sql", REFUSED)
def test_writes_and_escapes_are_refused_and_nothing_is_written(
    runner: CliRunner, scored: Path, folder: Path, sql: str
) -> None:
    before = _snapshot(folder)
    r = invoke(runner, "sql", "--db", str(scored), "--", sql.format(tmp=folder))
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    assert r.stdout == ""
    assert _snapshot(folder) == before  # no file created, changed or removed
    con = duckdb.connect(str(folder / "other.duckdb"), read_only=True)
    assert con.execute("SELECT count(*) FROM scores").fetchone() == (5,)
    con.close()


def test_no_statement_is_one_line(runner: CliRunner, scored: Path) -> None:
    for sql in ("", "   ", " ; ", "-- only a comment"):
        r = invoke(runner, "sql", "--db", str(scored), "--", sql)
        assert r.exit_code == 2, r.output
        assert len(r.stderr.strip().splitlines()) == 1 and "No SQL" in r.stderr


@pytest.mark.parametrize(
    "sql",
    [
        "COPY (SELECT 1) TO '{tmp}/x.csv'",
        "EXPORT DATABASE '{tmp}/dump'",
        "ATTACH '{tmp}/other.duckdb' AS other (READ_WRITE)",
        "INSTALL httpfs",
        "PRAGMA threads = 1",
        "SET enable_external_access = true",
        "SELECT * FROM read_parquet('{tmp}/*.parquet')",
        "DELETE FROM scores",
    ],
)
def test_the_connection_itself_refuses_them(scored: Path, folder: Path, sql: str) -> None:
    """The settings are the guard, not the statement check: run straight on the
    connection `nasfilter sql` uses, DuckDB refuses each of these."""
    from nasfilter.store import SQL_SANDBOX, Store

    before = _snapshot(folder)
    with Store.open(scored, read_only=True, config=SQL_SANDBOX) as s:
        with pytest.raises(duckdb.Error):
            s.con.execute(sql.format(tmp=folder))
    assert _snapshot(folder) == before


def test_queries_views_and_macros_still_work(runner: CliRunner, scored: Path) -> None:
    def rows(sql: str) -> list[str]:
        r = invoke(runner, "sql", sql, "--db", str(scored), "-f", "csv")
        assert r.exit_code == 0, r.output
        return r.stdout.splitlines()

    assert rows("SELECT count(*) AS n FROM scores WHERE run_id = 1") == ["n", "120"]
    assert rows("SELECT count(*) AS n FROM results") == ["n", "30"]
    assert rows("FROM truth_summary SELECT dataset, archs ORDER BY dataset") == [
        "dataset,archs",
        "ImageNet16-120,724",
        "cifar10-valid,724",
        "cifar100,725",
    ]
    assert rows("WITH a AS (SELECT 2 AS x) SELECT x * 21 AS y FROM a") == ["y", "42"]
    assert "scores" in rows("SHOW TABLES")
    assert rows("DESCRIBE SELECT 1 AS one")[1].startswith("one,INTEGER")
    summary = rows("SELECT metric, n FROM analysis_summary(1, 'cifar10-valid', 'valid')")
    assert summary[0] == "metric,n" and len(summary) == 5  # flops, params, relu_count, size_kb
    tau = rows(
        "SELECT n, kendall_tau_b FROM rank_correlations("
        "'SELECT ''a'' AS x_name, ''b'' AS y_name, range AS x, range AS y FROM range(4)')"
    )
    assert tau == ["n,kendall_tau_b", "4,1.0"]
