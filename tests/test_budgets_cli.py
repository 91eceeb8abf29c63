"""Budgets everywhere: `top` and `search` with --max-kb, --max-ram-kb, --max-macs and the
µNAS presets, on the munas space; a clear message where a space lacks a figure."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from nasfilter.budgets import get_budget
from nasfilter.spaces import get_space
from nasfilter.store import Store
from tests.conftest import invoke

MUNAS = get_space("munas")


def _score(runner: CliRunner, db: Path, n: int = 600) -> None:
    r = invoke(runner, "score", "munas", "--n", str(n), "--seed", "4", "--metrics",
               "relu_count,macs,peak_ram_kb", "--db", str(db))  # fmt: skip
    assert r.exit_code == 0, r.output


def test_top_applies_every_bound_and_shows_the_bounded_figures(runner: CliRunner, db: Path) -> None:
    _score(runner, db)
    r = invoke(runner, "top", "--k", "1000", "--max-kb", "75", "--max-ram-kb", "75",
               "--max-macs", "30000000", "--db", str(db), "-f", "json")  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    # independent: the sample's analytic figures, filtered here
    want = set()
    for a in MUNAS.sample(600, 4):
        c = MUNAS.costs(a)
        if c.params / 1000 <= 75 and c.extra["peak_ram_kb"] <= 75 and c.extra["macs"] <= 3e7:
            want.add(a)
    assert 0 < len(want) < 600
    assert {x["arch"] for x in rows} == want
    for x in rows:
        assert x["size_kb"] <= 75 and x["peak_ram_kb"] <= 75 and x["macs"] <= 3e7
    vals = [x["relu_count"] for x in rows]
    assert vals == sorted(vals, reverse=True)
    # the preset gives the same bounds as munas-cifar10's
    b = get_budget("munas-cifar10")
    assert (b.max_kb, b.max_ram_kb, b.max_macs) == (75, 75, 30_000_000)
    r2 = invoke(runner, "top", "--k", "1000", "--budget", "munas-cifar10", "--db", str(db),
                "-f", "json")  # fmt: skip
    assert r2.exit_code == 0 and json.loads(r2.stdout) == rows


def test_a_bound_the_space_or_run_lacks_is_one_line(runner: CliRunner, db: Path) -> None:
    invoke(runner, "score", "nats-tss", "--n", "20", "--db", str(db))
    r = invoke(runner, "top", "--max-ram-kb", "75", "--db", str(db))
    assert r.exit_code == 2
    assert "nats-tss space has no peak_ram_kb figure" in r.stderr and "works for: munas" in r.stderr
    invoke(runner, "score", "munas", "--n", "20", "--db", str(db))  # default metrics
    r = invoke(runner, "top", "--max-macs", "1e6", "--db", str(db))
    assert r.exit_code == 2 and "Run 2 has no macs" in r.stderr
    r = invoke(runner, "top", "--budget", "munas-moon", "--db", str(db))
    assert r.exit_code == 2 and "Unknown budget 'munas-moon'" in r.stderr
    r = invoke(runner, "top", "--max-ram-kb", "-3", "--db", str(db))
    assert r.exit_code == 2 and "--max-ram-kb must be a positive number" in r.stderr


def test_search_under_a_budget_scores_only_feasible_architectures(
    runner: CliRunner, db: Path
) -> None:
    r = invoke(runner, "search", "munas", "--algo", "evolution", "--n", "60", "--repeats", "2",
               "--budget", "munas-mnist", "--db", str(db), "-f", "json")  # fmt: skip
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    b = get_budget("munas-mnist")
    assert out["settings"]["budget"]["name"] == "munas-mnist"
    mnist = MUNAS.shape("mnist")
    with Store.open(db, read_only=True) as st:
        cands = [a for (a,) in st.con.execute("SELECT arch FROM search_candidates").fetchall()]
        shapes = {
            json.loads(s)["dataset_shape"]["name"]
            for (s,) in st.con.execute("SELECT settings FROM runs WHERE kind = 'score'").fetchall()
        }
    assert len(cands) == 120 and shapes == {"mnist"}  # scored at the budget's shape
    for a in set(cands):
        c = MUNAS.costs(a, mnist)
        assert c.params / 1000 <= b.max_kb and c.extra["peak_ram_kb"] <= b.max_ram_kb
        assert c.extra["macs"] <= b.max_macs
    r = invoke(runner, "search", "nats-tss", "--max-macs", "1e6", "--db", str(db))
    assert r.exit_code == 2 and "has no macs figure" in r.stderr
