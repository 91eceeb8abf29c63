"""The CLI: exit codes, one-line errors, output formats, the documented main path."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tests.conftest import invoke, python_c


def _score(runner: CliRunner, db: Path, *args: str):  # type: ignore[no-untyped-def]
    return invoke(runner, "score", *args, "--db", str(db))


def test_version_and_short_help(runner: CliRunner) -> None:
    from nasfilter import __version__

    r = invoke(runner, "--version")
    assert r.exit_code == 0 and r.stdout.strip() == f"nasfilter {__version__}"
    r = invoke(runner, "-h")
    assert r.exit_code == 0 and "score" in r.stdout and "top" in r.stdout


def test_score_then_top_json_is_best_first_under_budget(runner: CliRunner, db: Path) -> None:
    r = _score(runner, db, "nats-sss", "--n", "400", "--seed", "3")
    assert r.exit_code == 0, r.output
    assert "Run 1 completed: 400 architectures scored" in r.stderr
    r = invoke(runner, "top", "--k", "7", "--max-kb", "200", "--db", str(db), "-f", "json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert len(rows) == 7
    assert set(rows[0]) == {"arch", "relu_count", "status", "params", "size_kb"}
    assert all(x["size_kb"] <= 200 for x in rows)
    values = [x["relu_count"] for x in rows]
    assert values == sorted(values, reverse=True)
    # the best under budget really is the maximum among the scored set
    from nasfilter.spaces import get_space

    sp = get_space("nats-sss")
    sample = list(sp.sample(400, 3))
    best = max(sp.costs(a).relu_count for a in sample if sp.costs(a).params / 1000 <= 200)
    assert values[0] == best
    for x in rows:
        assert x["params"] == sp.costs(x["arch"]).params


def test_top_csv_and_lower_is_better_metric(runner: CliRunner, db: Path) -> None:
    assert _score(runner, db, "nats-tss", "--n", "100").exit_code == 0
    r = invoke(runner, "top", "--metric", "params", "--k", "3", "--db", str(db), "-f", "csv")
    assert r.exit_code == 0
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    params = [int(x["params"]) for x in rows]
    assert params == sorted(params) and len(params) == 3


def test_bad_inputs_give_one_line_and_nonzero_exit(runner: CliRunner, db: Path) -> None:
    cases = [
        (("score", "nats-xyz", "--n", "5"), "Unknown search space 'nats-xyz'", 2),
        (("score", "nats-tss", "--n", "20000"), "15,625 architectures", 2),
        (("score", "nats-tss", "--n", "0"), "at least 1", 2),
        (("score", "nats-tss"), "--n N, --all or --archs FILE", 2),
        (("score", "nats-tss", "--n", "5", "--metrics", "foo"), "Unknown metric 'foo'", 2),
        (("score", "nats-tss", "--n", "5", "--metrics", "naswot"), "needs input images", 2),
        (("info", "nats-tss", "|nor_conv_3x3~0|"), "Malformed TSS cell", 2),
        (("top",), "No database at", 3),
    ]
    for args, msg, code in cases:
        r = invoke(runner, *args, "--db", str(db)) if args[0] != "info" else invoke(runner, *args)
        assert r.exit_code == code, (args, r.output)
        assert msg in r.stderr, (args, r.stderr)
        assert "Traceback" not in r.output
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_errors_do_not_lose_stored_rows(runner: CliRunner, db: Path) -> None:
    assert _score(runner, db, "nats-sss", "--n", "30").exit_code == 0
    assert _score(runner, db, "nats-sss", "--n", "99999").exit_code == 2
    r = invoke(runner, "top", "--metric", "nope", "--db", str(db))
    assert r.exit_code == 2 and "has no metric 'nope'" in r.stderr
    r = invoke(runner, "top", "--run", "9", "--db", str(db))
    assert r.exit_code == 2 and "No run 9" in r.stderr  # a usage error, not a database one
    r = invoke(runner, "sql", "SELECT count(*) AS n FROM scores", "--db", str(db), "-f", "json")
    assert json.loads(r.stdout) == [{"n": 30 * 4}]


def test_sql_is_read_only_and_reports_sql_errors(runner: CliRunner, db: Path) -> None:
    assert _score(runner, db, "nats-sss", "--n", "10").exit_code == 0
    r = invoke(runner, "sql", "DELETE FROM scores", "--db", str(db))
    assert r.exit_code == 2 and "read-only" in r.stderr
    r = invoke(runner, "sql", "SELEC 1", "--db", str(db))
    assert r.exit_code == 2 and "SQL error" in r.stderr
    r = invoke(runner, "sql", "SELECT count(*) AS n FROM results", "--db", str(db), "-f", "csv")
    assert r.stdout.splitlines() == ["n", "10"]


def test_export_writes_parquet(runner: CliRunner, db: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    assert _score(runner, db, "nats-tss", "--n", "25", "--metrics", "relu_count").exit_code == 0
    out = tmp_path / "r.parquet"
    r = invoke(runner, "export", "--out", str(out), "--db", str(db))
    assert r.exit_code == 0, r.output
    t = pq.read_table(out)
    assert t.num_rows == 25
    assert t.column_names == [
        "space",
        "arch",
        "params",
        "params_status",
        "size_kb",
        "size_kb_status",
        "relu_count",
        "relu_count_status",
    ]
    r = invoke(runner, "export", "--out", str(tmp_path / "no" / "r.parquet"), "--db", str(db))
    assert r.exit_code == 2 and "does not exist" in r.stderr


def test_resume_of_a_completed_run_says_so(runner: CliRunner, db: Path) -> None:
    assert _score(runner, db, "nats-sss", "--n", "10").exit_code == 0
    r = invoke(runner, "score", "--resume", "latest", "--db", str(db))
    assert r.exit_code == 0 and "already complete" in r.stderr


def test_db_from_environment(runner: CliRunner, tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    target = tmp_path / "env.duckdb"
    monkeypatch.setenv("NASFILTER_DB", str(target))
    from nasfilter.cli import app

    r = runner.invoke(app, ["score", "nats-sss", "--n", "3"])
    assert r.exit_code == 0 and target.exists()


def test_penalized_score_is_stored_with_its_settings(runner: CliRunner, db: Path) -> None:
    r = _score(runner, db, "nats-sss", "--n", "50", "--penalty", "hsdf", "--mu", "0.1")
    assert r.exit_code == 0, r.output
    r = invoke(
        runner,
        "sql",
        "SELECT a.value AS v, p.value AS pv, z.value AS kb "
        "FROM scores a JOIN scores p USING (arch) JOIN scores z USING (arch) "
        "WHERE a.metric='relu_count' AND p.metric='relu_count_hsdf' "
        "AND z.metric='size_kb'",
        "--db",
        str(db),
        "-f",
        "json",
    )
    from nasfilter.penalties import penalty_factor

    for row in json.loads(r.stdout):
        f = penalty_factor("hsdf", row["kb"] / 1000, mu=0.1, sigma=0.4)
        assert abs(row["pv"] - row["v"] * f) <= 1e-9 * row["v"]
    r = invoke(runner, "sql", "SELECT settings FROM runs", "--db", str(db), "-f", "json")
    settings = json.loads(json.loads(r.stdout)[0]["settings"])
    assert settings["penalty"]["penalty"] == "hsdf" and settings["penalty"]["mu"] == 0.1


def test_python_m_entry_point_and_help_does_not_import_torch() -> None:
    code = (
        "import sys, runpy; sys.argv=['nasfilter','--help'];\n"
        "try:\n runpy.run_module('nasfilter', run_name='__main__')\n"
        "except SystemExit as e: assert e.code in (0, None), e.code\n"
        "assert 'torch' not in sys.modules, 'torch imported by --help'\n"
        "assert 'duckdb' not in sys.modules, 'duckdb imported by --help'\n"
        "assert 'ray' not in sys.modules, 'ray imported by --help'\n"
        "assert 'rich.markdown' not in sys.modules, 'rich.markdown imported by --help'\n"
        "assert 'pygments' not in sys.modules, 'pygments imported by --help'\n"
    )
    assert "Usage" in python_c(code).stdout


def test_the_stand_ins_of_the_light_help_import_load_the_real_classes() -> None:
    """typer.rich_utils imported without rich.markdown / rich.traceback still renders
    Markdown and tracebacks (the stand-ins load the real classes), and the real modules
    stay importable."""
    code = (
        "import sys, io\n"
        "from nasfilter.cli import _import_typer_rich_utils_lightly\n"
        "_import_typer_rich_utils_lightly()\n"
        "import typer.rich_utils as ru\n"
        "assert 'rich.markdown' not in sys.modules and 'rich.traceback' not in sys.modules\n"
        "from rich.console import Console\n"
        "out = io.StringIO()\n"
        "Console(file=out, width=40).print(ru._make_rich_text(text='**bold** x', "
        "markup_mode='markdown'))\n"
        "assert 'bold x' in out.getvalue(), out.getvalue()\n"
        "import rich.markdown, rich.traceback\n"
        "assert type(ru.Markdown('y')) is rich.markdown.Markdown\n"
        "try:\n    1 / 0\nexcept ZeroDivisionError as e:\n"
        "    tb = ru.Traceback.from_exception(type(e), e, e.__traceback__)\n"
        "assert isinstance(tb, rich.traceback.Traceback)\n"
    )
    python_c(code)


def test_a_search_made_score_run_cannot_be_resumed_alone(runner: CliRunner, db: Path) -> None:
    r = invoke(
        runner,
        "search",
        "nats-sss",
        "--algo",
        "random",
        "--n",
        "5",
        "--repeats",
        "1",
        "--metric",
        "relu_count",
        "--db",
        str(db),
    )
    assert r.exit_code == 0, r.output
    r = invoke(runner, "sql", "UPDATE runs SET status = 'interrupted'", "--db", str(db))
    assert r.exit_code == 2  # read-only: nothing can be changed through `sql`
    import duckdb

    con = duckdb.connect(str(db))
    con.execute("UPDATE runs SET status = 'interrupted' WHERE kind = 'score'")
    (made,) = con.execute("SELECT run_id FROM runs WHERE kind = 'score'").fetchone()
    rows = con.execute("SELECT count(*) FROM scores").fetchone()[0]
    con.close()
    # `latest` names the newest score run a user started, never one a search made
    r = invoke(runner, "score", "--resume", "latest", "--db", str(db))
    assert r.exit_code == 3
    assert f"made by searches: {made}" in r.stderr and "Traceback" not in r.output
    # by its id, a search's run resumes its recorded list and adds nothing
    r = invoke(runner, "score", "--resume", str(made), "--db", str(db))
    assert r.exit_code == 0, r.output
    assert "0 architectures scored (5 already stored)" in r.stderr
    con = duckdb.connect(str(db))
    assert con.execute("SELECT count(*) FROM scores").fetchone()[0] == rows
    assert con.execute("SELECT count(*) FROM run_archs WHERE run_id = ?", [made]).fetchone() == (5,)
    # a search's run written by nasfilter 0.x recorded no list: it cannot be resumed alone
    con.execute(
        "UPDATE runs SET status = 'interrupted', settings = json_merge_patch(settings, "
        '\'{"explicit_archs": true, "archs": null}\') WHERE run_id = ?',
        [made],
    )
    con.execute("DELETE FROM scores WHERE run_id = ?", [made])
    con.close()
    r = invoke(runner, "score", "--resume", str(made), "--db", str(db))
    assert r.exit_code == 2
    assert "chosen by a search" in r.stderr and "Traceback" not in r.output


def test_spaces_lists_sizes_and_what_each_metric_needs(runner: CliRunner) -> None:
    r = invoke(runner, "spaces", "-f", "json")
    assert r.exit_code == 0
    rows = {x["space"]: x for x in json.loads(r.stdout)}
    assert rows["nats-tss"]["size"] == 15_625 and rows["nats-sss"]["size"] == 32_768
    needs = rows["nats-tss"]["needs"]
    groups = {what: names.split(", ") for names, what in (g.split(": ") for g in needs.split("; "))}
    assert {"relu_count", "size_kb", "params", "flops"} <= set(groups["nothing (analytic)"])
    assert "naswot" in groups["torch (networks built), input images (--data)"]
    assert "synflow" in groups["torch (networks built)"]  # data-free: no images needed
    assert groups["not available"] == ["peak_ram_kb"]  # µNAS's figure only


def test_cli_choices_are_the_library_choices() -> None:
    from nasfilter.cli.options import Algo, BnMode, MemoryFormat, PenaltyName, PopulationKind
    from nasfilter.penalties import PENALTIES
    from nasfilter.scoring.settings import BN_MODES, MEMORY_FORMATS
    from nasfilter.search.request import ALGORITHMS, POPULATIONS

    assert tuple(a.value for a in Algo) == ALGORITHMS
    assert tuple(p.value for p in PopulationKind) == POPULATIONS
    assert tuple(b.value for b in BnMode) == BN_MODES
    assert tuple(f.value for f in MemoryFormat) == MEMORY_FORMATS
    assert {p.value for p in PenaltyName} == set(PENALTIES)


def test_a_large_final_commit_is_announced_then_the_rate_comes_back(
    db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bar is full while DuckDB commits the last batch: the engine says so (and says
    when it is done); small commits say nothing."""
    from nasfilter import engine
    from nasfilter.store import Store

    told: list[str] = []
    with Store.open(db) as st:
        run = engine.start(st, engine.ScoreRequest(space="nats-tss", n=300, metrics="relu_count"))
        engine.execute(st, run, on_status=told.append)
    assert told == []  # 300 x 3 rows: well under STATUS_ROWS
    monkeypatch.setattr(engine, "STATUS_ROWS", 500)
    with Store.open(db) as st:
        run = engine.start(
            st, engine.ScoreRequest(space="nats-tss", n=300, seed=1, metrics="relu_count")
        )
        summary = engine.execute(st, run, on_status=told.append)
    assert told == [f"writing {summary.rows:,} rows", ""]
    assert summary.rows == 900

    from nasfilter.cli.progress import Bar

    bar = Bar("run", "arch", 10)
    try:
        bar.advance(10)
        bar.status("writing 900 rows")
        task = bar.progress.tasks[0]
        assert task.fields["rate"] == "writing 900 rows…"
        bar.status("")
        assert not task.fields["rate"].startswith("writing")
    finally:
        bar.stop()
