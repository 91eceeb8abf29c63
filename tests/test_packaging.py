"""Layout and packaging: the numbered migrations live in the top-level ``migrations/``
folder and ship inside the wheel as ``nasfilter.migrations``; the analysis macros are
plain SQL (``nasfilter/sql``) re-created on every open, not migrations.

The wheel test builds the wheel once (``pip wheel --no-deps --no-build-isolation``),
installs it into a fresh virtual environment (dependencies borrowed from this
interpreter's site-packages through a .pth file, so torch is not reinstalled) and
migrates a new database from there. It takes about 10-20 s.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig
import venv
from pathlib import Path

import duckdb
import pytest

from nasfilter.store import Store, apply_definitions, definitions, migrations

ROOT = Path(__file__).resolve().parents[1]


def test_migrations_live_at_the_top_level_and_are_what_the_store_applies() -> None:
    files = sorted(p.name for p in (ROOT / "migrations").glob("*.sql"))
    assert files == [
        "001_core.sql", "002_truth.sql", "003_analysis.sql", "004_search.sql", "005_scorer.sql",
        "006_truth_runs.sql",
    ]  # fmt: skip
    assert not (ROOT / "nasfilter" / "migrations").exists()
    shipped = {f"{v:03d}_{n}.sql": sql for v, n, sql in migrations()}
    assert sorted(shipped) == files
    for name in files:
        assert shipped[name] == (ROOT / "migrations" / name).read_text(encoding="utf-8")


def test_no_macro_is_defined_by_a_migration() -> None:
    for _, _, sql in migrations():
        code = "\n".join(ln for ln in sql.splitlines() if not ln.lstrip().startswith("--"))
        assert "MACRO" not in code.upper()
    names = [n for n, _ in definitions()]
    assert "analysis.sql" in names


def _function_sql(con: duckdb.DuckDBPyConnection, name: str) -> list[tuple[str, str]]:
    return con.execute(
        "SELECT database_name, macro_definition FROM duckdb_functions() "
        "WHERE function_name = ? ORDER BY database_name",
        [name],
    ).fetchall()


def test_a_changed_macro_reaches_an_existing_database_without_a_migration(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Store.open(db) as s:
        applied = s.con.execute("SELECT version FROM schema_migrations").fetchall()
        assert s.con.execute("SELECT * FROM truth_coverage(1)").fetchall() == []
    # a "fixed" definition file: truth_coverage now also reports a marker column
    real = definitions()
    fixed = [
        (n, t.replace("max(t.accuracy) AS best_accuracy", "max(t.accuracy) AS best_accuracy, 7"))
        for n, t in real
    ]
    assert fixed != real
    monkeypatch.setattr("nasfilter.store.definitions", lambda: fixed)
    # read-only: the stored macro is older, so this connection uses TEMP macros
    with Store.open(db, read_only=True) as s:
        cols = [d[0] for d in s.con.execute("SELECT * FROM truth_coverage(1)").description]
        assert len(cols) == 5
    with Store.open(db) as s:  # writable: stored, and no migration was added
        assert s.con.execute("SELECT version FROM schema_migrations").fetchall() == applied
    monkeypatch.undo()
    con = duckdb.connect(str(db), read_only=True)  # plain DuckDB sees the stored fix
    try:
        assert len(con.execute("SELECT * FROM truth_coverage(1)").description) == 5
    finally:
        con.close()


def test_macros_of_an_old_database_are_replaced_on_open(db: Path) -> None:
    """A database written before the macros left migration 003 holds 003's own
    CREATE MACRO definitions and no nf_definitions_sha(): both opens use current ones."""
    with Store.open(db) as s:
        s.con.execute("DROP MACRO nf_definitions_sha")
        s.con.execute(
            "CREATE OR REPLACE MACRO truth_coverage(p_run) AS TABLE SELECT 'stale' AS dataset"
        )
    with Store.open(db, read_only=True) as s:
        assert s.con.execute("SELECT * FROM truth_coverage(1)").fetchall() == []
    con = duckdb.connect(str(db), read_only=True)  # untouched by the read-only open
    assert con.execute("SELECT * FROM truth_coverage(1)").fetchall() == [("stale",)]
    con.close()
    with Store.open(db) as s:
        assert apply_definitions(s.con) is False  # already current: nothing to do
    con = duckdb.connect(str(db), read_only=True)
    assert con.execute("SELECT * FROM truth_coverage(1)").fetchall() == []
    con.close()


# -- the wheel ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import shutil

    # build from a copy: an in-tree build leaves build/ (and its stale files) behind
    src = tmp_path_factory.mktemp("src") / "nasfilter"
    shutil.copytree(
        ROOT,
        src,
        ignore=shutil.ignore_patterns(
            ".git", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", "*.duckdb*"
        ),
    )
    out = tmp_path_factory.mktemp("dist")
    r = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"]
        + ["--no-index", "-q", "-w", str(out), str(src)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    (whl,) = out.glob("nasfilter-*.whl")
    return whl


def test_wheel_carries_the_migrations_and_the_macros(wheel: Path) -> None:
    import zipfile

    names = set(zipfile.ZipFile(wheel).namelist())
    for f in ("001_core.sql", "002_truth.sql", "003_analysis.sql", "004_search.sql"):
        assert f"nasfilter/migrations/{f}" in names
    assert "nasfilter/sql/analysis.sql" in names
    assert not any(n.startswith("migrations/") for n in names)  # no top-level package


def test_installed_wheel_migrates_a_new_database(wheel: Path, tmp_path: Path) -> None:
    env_dir = tmp_path / "venv"
    venv.EnvBuilder(with_pip=False).create(env_dir)
    py = env_dir / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    target = subprocess.run(
        [str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    r = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(py), "install", "-q", "--no-deps"]
        + ["--no-index", str(wheel)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert r.returncode == 0, r.stderr[-2000:]
    # the dependencies (duckdb, typer, ...) from this interpreter, after the venv's own
    # site-packages (a .pth line appends; .pth files inside that folder are not read,
    # so this checkout's editable install does not leak in)
    Path(target, "_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    new_db = tmp_path / "new.duckdb"
    code = f"""
import json, nasfilter, nasfilter.migrations
from nasfilter.store import Store
with Store.open({str(new_db)!r}) as s:
    versions = [v for (v,) in s.con.execute(
        "SELECT version FROM schema_migrations ORDER BY version").fetchall()]
    tables = [t for (t,) in s.con.execute(
        "SELECT table_name FROM information_schema.tables ORDER BY 1").fetchall()]
    cov = s.con.execute("SELECT * FROM truth_coverage(1)").fetchall()
print(json.dumps(dict(pkg=nasfilter.__file__, mig=nasfilter.migrations.__file__,
                      versions=versions, tables=tables, cov=cov)))
"""
    r = subprocess.run(
        [str(py), "-c", code],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
        env={k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "NASFILTER_DB")},
    )
    assert r.returncode == 0, r.stderr[-2000:]
    got = json.loads(r.stdout)
    assert got["pkg"].startswith(target) and got["mig"].startswith(target)
    assert got["versions"] == [1, 2, 3, 4, 5, 6]
    for t in ("runs", "scores", "truth", "searches", "schema_migrations"):
        assert t in got["tables"]
    assert got["cov"] == []
