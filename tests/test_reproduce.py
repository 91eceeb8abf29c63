"""reproduce: Experiments 1-5 end to end on the shipped sample, with tiny settings."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nasfilter.store import Store
from tests.conftest import invoke

PNG = b"\x89PNG\r\n\x1a\n"
TINY = ["--ns", "5,1000", "--repeats", "2", "--exp1-n", "6", "--batch-size", "8", "--device", "cpu"]


def _table(md: str, header_start: str) -> list[list[str]]:
    """Rows of the Markdown table whose header starts with ``header_start``."""
    lines = md.splitlines()
    i = next(k for k, ln in enumerate(lines) if ln.startswith(header_start))
    rows = []
    for ln in lines[i + 2 :]:
        if not ln.startswith("|"):
            break
        rows.append([c.strip() for c in ln.strip("|").split("|")])
    return rows


def test_reproduce_on_the_shipped_sample(runner: CliRunner, db: Path, tmp_path: Path) -> None:
    out = tmp_path / "rep"
    r = invoke(
        runner,
        "reproduce",
        "--space",
        "nats-tss",
        "--dataset",
        "cifar10",
        "--out",
        str(out),
        *TINY,
        "--db",
        str(db),
    )
    assert r.exit_code == 0, r.output
    report = out / "report.md"
    assert r.stdout.strip() == f"Wrote {report}"
    md = report.read_text()
    assert "the sample shipped for nats-tss" in md and "724 architectures" in md
    assert "synthetic" in md and "N = 1000 skipped" in md
    for png in (
        "exp2_random_search.png",
        "exp3_penalties.png",
        "exp3_penalized_scores.png",
        "exp4_penalized_search.png",
        "run1_cifar10-valid_valid_naswot.png",
        "run1_cifar10-valid_valid_relu_count.png",
    ):
        p = out / png
        assert p.read_bytes()[:8] == PNG and p.stat().st_size > 5000, png
        assert f"]({png})" in md
    for link in re.findall(r"\]\(([^)]+\.png)\)", md):
        assert (out / link).exists()

    with Store.open(db, read_only=True) as s:
        from nasfilter.analysis.correlation import analyze_run

        # Exp. 1: the tau in the report is analyze_run's, over 6 archs with truth
        res = analyze_run(s, 1, "cifar10-valid", "valid")
        rows = {row[0]: row for row in _table(md, "| metric | n | Kendall")}
        assert set(rows) >= {"relu_count", "naswot"}
        for m in res.metrics:
            if m.metric in ("relu_count", "naswot"):
                assert rows[m.metric][1] == "6"
                assert float(rows[m.metric][2]) == pytest.approx(m.kendall_tau_acc, abs=1e-3)
        # Exp. 2: each row's accuracy and size are the stored search's mean +- std
        t6 = _table(md, "| N | metric | search run")
        searches = [row for row in t6 if row[1] in ("relu_count", "naswot")]
        assert [row[1] for row in searches] == ["relu_count", "naswot"]
        for row in searches:
            run_id = int(row[2])
            algo, metric, n, pop = s.con.execute(
                "SELECT algo, metric, n, population FROM searches WHERE run_id = ?", [run_id]
            ).fetchone()
            assert (algo, metric, n, pop) == ("random", row[1], 5, "truth")
            acc_m, acc_s, size_m = s.con.execute(
                "SELECT avg(accuracy), stddev_samp(accuracy), avg(size_kb) FROM search_choices "
                "WHERE run_id = ?",
                [run_id],
            ).fetchone()
            assert row[3] == f"{acc_m:.2f} ± {acc_s:.2f}"
            assert row[4].startswith(f"{size_m:.1f}")
        saved = [row for row in t6 if row[1] == "time saved by relu_count"]
        assert len(saved) == 1 and saved[0][5].endswith("faster")
        # Exp. 4: four penalties per metric, the unpenalized rows are Exp. 2's searches
        t7 = _table(md, "| metric | penalty | search run")
        assert [(row[0], row[1]) for row in t7] == [
            (m, p) for m in ("relu_count", "naswot") for p in ("none", "gdf", "hsdf", "rdf")
        ]
        assert t7[0][2] == searches[0][2] and t7[4][2] == searches[1][2]
        for row in t7[1:4] + t7[5:]:
            pen = s.con.execute(
                "SELECT penalty, mu, sigma FROM searches WHERE run_id = ?", [int(row[2])]
            ).fetchone()
            assert pen == (row[1], 0.2, 0.4)
        # Exp. 5: the filters of issue 11 at N = 5 (1000 skipped); relu_count and naswot
        # are Exp. 2's searches, the others their own random searches of the same N
        from nasfilter.experiments.run import FILTERS

        t8 = _table(md, "| N | filter | search run")
        assert [(row[0], row[1]) for row in t8] == [("5", m) for m in FILTERS]
        assert FILTERS[-2:] == ("ensemble_free", "ensemble")
        assert [row[2] for row in t8[:2]] == [searches[0][2], searches[1][2]]
        for row in t8[2:]:
            algo, metric, n = s.con.execute(
                "SELECT algo, metric, n FROM searches WHERE run_id = ?", [int(row[2])]
            ).fetchone()
            assert (algo, metric, n) == ("random", row[1], 5)
            acc_m, acc_s = s.con.execute(
                "SELECT avg(accuracy), stddev_samp(accuracy) FROM search_choices WHERE run_id = ?",
                [int(row[2])],
            ).fetchone()
            assert row[3] == f"{acc_m:.2f} ± {acc_s:.2f}"
        assert (
            s.con.execute(
                "SELECT count(*) FROM runs WHERE kind = 'search' AND status <> 'completed'"
            ).fetchone()[0]
            == 0
        )

    # again: Exp. 1's score run and every score are reused, every search time is summed
    r = invoke(
        runner,
        "reproduce",
        "--space",
        "nats-tss",
        "--dataset",
        "cifar10",
        "--out",
        str(out),
        *TINY,
        "--db",
        str(db),
    )
    assert r.exit_code == 0, r.output
    assert "Exp. 1: reusing score run 1." in r.stderr
    md2 = report.read_text()
    t6 = _table(md2, "| N | metric | search run")
    assert all(row[7] == "2 summed" for row in t6 if row[1] in ("relu_count", "naswot"))


def test_reproduce_without_truth_still_reports(runner: CliRunner, db: Path, tmp_path: Path) -> None:
    out = tmp_path / "sss"
    r = invoke(
        runner,
        "reproduce",
        "--space",
        "nats-sss",
        "--dataset",
        "cifar100",
        "--out",
        str(out),
        "--ns",
        "4",
        "--repeats",
        "2",
        "--exp1-n",
        "4",
        "--batch-size",
        "8",
        "--device",
        "cpu",
        "--db",
        str(db),
    )
    assert r.exit_code == 0, r.output
    md = (out / "report.md").read_text()
    assert "no ground truth for nats-sss on cifar100" in md
    assert "Not available: no ground truth" in md
    assert (out / "exp3_penalties.png").read_bytes()[:8] == PNG
    assert (out / "exp4_penalized_search.png").exists()
    t6 = _table(md, "| N | metric | search run")
    assert t6[0][3] == "n/a"  # no accuracy without truth, but size and time are there
    assert t6[0][4] != "n/a" and t6[0][5] != "n/a"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--ns", "a,b"], "--ns must be comma-separated integers"),
        (["--ns", "0"], "--ns needs at least one N >= 1"),
        (["--repeats", "0"], "--repeats must be at least 1"),
        (["--space", "nope"], "Unknown search space 'nope'"),
        (["--dataset", "mnist"], "Unknown dataset 'mnist'"),
        (["--sigma", "-1"], "sigma must be finite and > 0"),
        (["--batch-size", "1"], "--batch-size must be at least 2"),
    ],
)
def test_reproduce_bad_input(runner: CliRunner, db: Path, tmp_path: Path, args, message) -> None:  # type: ignore[no-untyped-def]
    r = invoke(runner, "reproduce", "--out", str(tmp_path / "x"), *args, "--db", str(db))
    assert r.exit_code == 2, r.output
    assert r.stderr.startswith("Error: ") and message in r.stderr
    assert not (tmp_path / "x").exists()
