"""--resume: refused combinations, which run `latest` means, a missing database, and runs
written by nasfilter 0.x (schema 4, old settings) opening and resuming."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
from typer.testing import CliRunner

from nasfilter.spaces import get_space
from nasfilter.store import Store, migrations
from tests.conftest import invoke


def test_resume_takes_no_other_selection(runner: CliRunner, db: Path) -> None:
    invoke(runner, "score", "nats-sss", "--n", "5", "--db", str(db))
    for extra, name in (
        (["nats-sss"], "SPACE"),
        (["--n", "3"], "--n"),
        (["--metrics", "naswot"], "--metrics"),
        (["--all"], "--all"),
        (["--seed", "4"], "--seed"),
    ):
        r = invoke(runner, "score", *extra, "--resume", "1", "--db", str(db))
        assert r.exit_code == 2, (extra, r.output)
        assert f"cannot be combined with {name}" in r.stderr and r.stderr.count("\n") == 1


def test_resume_latest_says_which_runs_can_be_resumed(runner: CliRunner, db: Path) -> None:
    invoke(runner, "score", "nats-sss", "--n", "5", "--db", str(db))
    invoke(runner, "score", "nats-sss", "--n", "6", "--db", str(db))
    con = duckdb.connect(str(db))
    con.execute("UPDATE runs SET status = 'interrupted' WHERE run_id = 1")
    con.close()
    r = invoke(runner, "score", "--resume", "latest", "--db", str(db))
    assert r.exit_code == 2
    assert "Run 2 is already complete. Runs that can be resumed: 1 (interrupted)." in r.stderr
    assert "--resume 1" in r.stderr
    r = invoke(runner, "score", "--resume", "1", "--db", str(db))
    assert r.exit_code == 0 and "0 architectures scored (5 already stored)" in r.stderr
    r = invoke(runner, "score", "--resume", "latest", "--db", str(db))
    assert r.exit_code == 0 and "no run is left to resume" in r.stderr


def test_resume_on_a_missing_database_creates_nothing(runner: CliRunner, tmp_path: Path) -> None:
    db = tmp_path / "nope.duckdb"
    r = invoke(runner, "score", "--resume", "latest", "--db", str(db))
    assert r.exit_code == 3 and "No database at" in r.stderr and "nothing to resume" in r.stderr
    assert not db.exists()


def _old_database(db: Path) -> list[str]:
    """A database as nasfilter 0.x wrote it: migrations 1-4 (with the analysis macros
    of 003), an interrupted run of 3 of 8 sampled SSS architectures in the old settings
    layout, and a search-made run."""
    space = get_space("nats-sss")
    sample = space.sample(8, 5)
    con = duckdb.connect(str(db))
    con.execute(
        "CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL,"
        " applied_at TIMESTAMP NOT NULL, nasfilter_version VARCHAR NOT NULL)"
    )
    for version, name, sql in migrations():
        if version > 4:
            break
        con.execute(sql)
        con.execute("INSERT INTO schema_migrations VALUES (?, ?, now(), '0.1.0')", [version, name])
    old = {
        "space": "nats-sss", "n": 8, "all": False, "seed": 5,
        "metrics": ["relu_count", "params", "size_kb"],
        "dataset_shape": {"name": "cifar10", "num_classes": 10, "resolution": 32},
        "bytes_per_param": 1.0, "builds_networks": False, "penalty": None,
    }  # fmt: skip
    con.execute(
        "INSERT INTO runs (kind, space, settings, seed, n_requested, nasfilter_version,"
        " command, started_at, status) VALUES ('score', 'nats-sss', ?, 5, 8, '0.1.0',"
        " 'nasfilter score nats-sss --n 8 --seed 5', now(), 'interrupted')",
        [json.dumps(old)],
    )
    for m, hib in (("relu_count", True), ("params", False), ("size_kb", False)):
        con.execute(
            "INSERT INTO run_metrics VALUES (1, ?, '1', ?, false, false, false, 'analytic',"
            " '', '')",
            [m, hib],
        )
    for pos, a in enumerate(sample[:3]):
        c = space.costs(a)
        con.execute(
            "INSERT INTO architectures VALUES ('nats-sss', ?, ?, ?, ?)",
            [a, c.params, c.flops, c.params / 1000],
        )
        for m, v in (("relu_count", c.relu_count), ("params", c.params),
                     ("size_kb", c.params / 1000)):  # fmt: skip
            con.execute(
                "INSERT INTO scores VALUES (1, ?, ?, ?, ?, 'ok', 0.001)", [a, m, pos, float(v)]
            )
    search_made = {**old, "explicit_archs": True, "n": 3}
    con.execute(
        "INSERT INTO runs (kind, space, settings, seed, n_requested, nasfilter_version,"
        " command, started_at, status) VALUES ('score', 'nats-sss', ?, 0, 3, '0.1.0',"
        " 'nasfilter search (run 9, repeat 0, stage final)', now(), 'completed')",
        [json.dumps(search_made)],
    )
    con.close()
    return sample


def test_a_database_of_nasfilter_0x_opens_migrates_and_resumes(
    runner: CliRunner, tmp_path: Path
) -> None:
    db = tmp_path / "old.duckdb"
    sample = _old_database(db)
    with Store.open(db) as st:  # migrates to the current schema
        assert st.schema_version() == migrations()[-1][0]
        origins = st.con.execute("SELECT run_id, origin FROM runs ORDER BY run_id").fetchall()
    assert origins == [(1, "score"), (2, "search")]
    r = invoke(runner, "score", "--resume", "latest", "--db", str(db))
    assert r.exit_code == 0, r.output
    assert "5 architectures scored (3 already stored)" in r.stderr
    space = get_space("nats-sss")
    with Store.open(db, read_only=True) as st:
        got = st.con.execute(
            "SELECT arch, value FROM scores WHERE run_id = 1 AND metric = 'relu_count'"
            " ORDER BY position"
        ).fetchall()
        assert st.get_run(1)["status"] == "completed"
    assert [a for a, _ in got] == sample
    assert all(v == space.costs(a).relu_count for a, v in got)
    r = invoke(runner, "top", "--k", "3", "--db", str(db), "-f", "json")
    assert r.exit_code == 0 and len(json.loads(r.stdout)) == 3
