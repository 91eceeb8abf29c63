"""Aggregate metrics (issue 11): the rank rule against an independent definition, the SQL
macro against the Python path, stored run values against recomputations from the
components' stored scores (SQL and numpy), resume, formula aggregates, and the
aggregates in score / top / analyze / search."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import rankdata
from typer.testing import CliRunner

from nasfilter import engine
from nasfilter.errors import UsageError
from nasfilter.metrics import get_metric, registry
from nasfilter.metrics.aggregate import Component, rank_values, register_aggregate
from nasfilter.store import Store
from tests.conftest import invoke

TOL = 1e-12


# -- an independent implementation of the documented rank rule ------------------------------
def _reference_ranks(values: list[float], sign: int) -> np.ndarray:
    """Ranks 1 (worst) .. n (best) from the definition in docs/metrics.md, by another
    route: the m NaN values share the lowest m ranks (average (1 + m) / 2); the others
    are scipy's average ranks of sign * value, shifted up by m."""
    v = np.array(values, dtype=float)
    nan = np.isnan(v)
    m = int(nan.sum())
    out = np.empty(len(v))
    out[nan] = (1 + m) / 2
    if (~nan).any():
        out[~nan] = rankdata(sign * v[~nan], method="average") + m
    return out


def _reference_aggregate(
    cols: dict[str, list[float]], comps: list[Component], form: str
) -> np.ndarray:
    n = len(next(iter(cols.values())))
    total = np.zeros(n)
    for c in comps:
        r = _reference_ranks(cols[c.metric], c.sign)
        total += c.weight * (np.log(r / n) if form == "log" else r / n)
    if form == "mean":
        total /= sum(c.weight for c in comps)
    return total


@pytest.fixture
def temp_aggregates() -> Iterator[list[str]]:
    """Aggregates over analytic components (fast runs), removed afterwards."""
    made = []
    register_aggregate(
        "t_rank_log",
        kind="rank",
        form="log",
        components=[("relu_count_live", 1.0, 1), ("params", 2.0, -1), ("flops", 0.5, 1)],
        description="test",
    )
    register_aggregate(
        "t_rank_mean",
        kind="rank",
        form="mean",
        components=[("relu_count", 1.0, 1), ("params", 3.0, 1)],
        description="test",
    )
    register_aggregate(
        "t_formula",
        kind="formula",
        components=["relu_count_live", "params", "l2_norm"],
        formula=lambda v: (
            np.log1p(v["relu_count_live"]) - 0.5 * np.log(v["params"]) + 0.01 * v["l2_norm"]
        ),
        formula_text="ln(1 + relu_count_live) - 0.5 ln(params) + 0.01 l2_norm",
        description="test",
    )
    made = ["t_rank_log", "t_rank_mean", "t_formula"]
    try:
        yield made
    finally:
        for name in made:
            registry._REGISTRY.pop(name, None)


def test_rank_rule_equals_an_independent_definition() -> None:
    rng = np.random.default_rng(3)
    n = 300
    cols = {
        "a": list(rng.integers(0, 7, n).astype(float)),  # heavy ties
        "b": list(rng.normal(size=n)),
        "c": list(np.round(rng.normal(size=n), 1)),
    }
    for i in rng.choice(n, 20, replace=False):
        cols["b"][i] = math.nan
    cols["c"][5], cols["c"][6], cols["c"][7] = math.inf, -math.inf, -math.inf
    comps = [Component("a", 1.0, 1), Component("b", 2.5, -1), Component("c", 0.5, 1)]
    for form in ("log", "mean"):
        from nasfilter.metrics.aggregate import Aggregate

        agg = Aggregate("rank", tuple(comps), form)
        got, statuses = rank_values(agg, cols)
        ref = _reference_aggregate(cols, comps, form)
        assert np.max(np.abs(np.array(got) - ref)) < TOL
        nan_rows = {i for i in range(n) if math.isnan(cols["b"][i])}
        assert {i for i, s in enumerate(statuses) if s != "ok"} == nan_rows
        assert all(statuses[i] == "nan component: b" for i in nan_rows)
    # AZ-NAS' own arithmetic on a small case: ranks (2.5, 2.5, 1) and (3, 2, 1)
    agg = Aggregate("rank", (Component("x"), Component("y", 2.0, -1)), "log")
    got, _ = rank_values(agg, {"x": [3.0, 3.0, math.nan], "y": [1.0, 2.0, 5.0]})
    assert got == pytest.approx([math.log(2.5 / 3), math.log(2.5 / 3) + 2 * math.log(2 / 3),
                                 math.log(1 / 3) + 2 * math.log(1 / 3)], abs=TOL)  # fmt: skip


def test_sql_macro_equals_the_python_path_on_the_same_population(db: Path) -> None:
    import pyarrow as pa

    rng = np.random.default_rng(11)
    n = 150
    cols = {"u": list(rng.integers(0, 5, n).astype(float)), "v": list(rng.normal(size=n))}
    cols["v"][3] = math.nan
    comps = (Component("u", 1.5, 1), Component("v", 1.0, -1))
    rows = {k: [] for k in ("arch", "component", "weight", "sign", "value", "form")}
    for c in comps:
        for i in range(n):
            row = (f"a{i}", c.metric, c.weight, c.sign, cols[c.metric][i], "mean")
            for k, x in zip(rows, row, strict=True):
                rows[k].append(x)
    from nasfilter.metrics.aggregate import Aggregate

    py, st = rank_values(Aggregate("rank", comps, "mean"), cols)
    with Store.open(db) as s:
        s.con.register("_in", pa.table(rows))
        s.con.execute("CREATE TABLE rank_in AS SELECT * FROM _in")
        got = dict(
            (a, (v, status))
            for a, v, status, _n in s.con.execute(
                "SELECT * FROM rank_aggregate_values('SELECT * FROM rank_in')"
            ).fetchall()
        )
    for i in range(n):  # the same arithmetic in the same order: equal to the last bit
        assert got[f"a{i}"] == (py[i], st[i])


def _stored(s: Store, run: int, metric: str) -> dict[str, tuple[float, str]]:
    return {
        a: (v, st)
        for a, v, st in s.con.execute(
            "SELECT arch, value, status FROM scores WHERE run_id = ? AND metric = ?", [run, metric]
        ).fetchall()
    }


def test_score_run_rank_aggregates_equal_recomputations_from_stored_scores(
    db: Path, temp_aggregates: list[str]
) -> None:
    req = engine.ScoreRequest(space="nats-tss", n=400, seed=2, metrics="t_rank_log,t_rank_mean")
    with Store.open(db) as s:
        run = engine.start(s, req)
        summary = engine.execute(s, run)
        assert summary.statuses["t_rank_log"] == {"ok": 400}
        recs = {r["metric"]: r for r in s.run_metrics(run)}
        assert recs["t_rank_log"]["path"] == "rank"
        for name in ("t_rank_log", "t_rank_mean"):
            agg = get_metric(name).aggregate
            assert agg is not None
            stored = _stored(s, run, name)
            archs = sorted(stored)
            comp = {c: _stored(s, run, c) for c in agg.names}
            # numpy, from the stored component scores, by the independent rank rule
            ref = _reference_aggregate(
                {c: [comp[c][a][0] for a in archs] for c in agg.names}, list(agg.components),
                agg.form,
            )  # fmt: skip
            assert np.max(np.abs(np.array([stored[a][0] for a in archs]) - ref)) < 1e-9
            # SQL: the shipped macro, recomputed now from the stored scores
            sql = dict(
                s.con.execute(
                    "SELECT arch, value FROM rank_aggregate(?, ?)", [run, name]
                ).fetchall()
            )
            assert all(sql[a] == stored[a][0] for a in archs)  # reproducible to the bit
        # the population is the run: 400 ranks, best value = 0 for a unique best in log form
        n = s.con.execute(
            "SELECT DISTINCT n FROM rank_aggregate(?, 't_rank_log')", [run]
        ).fetchall()
        assert n == [(400,)]


def _interrupt_after(k: int):  # type: ignore[no-untyped-def]
    seen = {"n": 0}

    def cb(n: int) -> None:
        seen["n"] += n
        if seen["n"] >= k:
            raise KeyboardInterrupt

    return cb


def test_resume_ranks_over_the_whole_run(db: Path, temp_aggregates: list[str]) -> None:
    req = engine.ScoreRequest(space="nats-tss", n=600, seed=4, metrics="t_rank_log")
    with Store.open(db) as s:
        run = engine.start(s, req)
        with pytest.raises(engine.RunInterrupted):
            engine.execute(s, run, on_progress=_interrupt_after(1), chunk_size=100,
                           batch_rows=100, flush_seconds=0.0)  # fmt: skip
        kept = s.con.execute(
            "SELECT count(DISTINCT arch) FROM scores WHERE run_id = ?", [run]
        ).fetchone()[0]
        assert 0 < kept < 600
        assert _stored(s, run, "t_rank_log") == {}  # written only once the run is complete
        summary = engine.execute(s, run)
        assert summary.archs_skipped == kept and summary.archs_scored == 600 - kept
        after = _stored(s, run, "t_rank_log")
        assert len(after) == 600
        other = engine.start(s, req)  # the same run, never interrupted
        engine.execute(s, other)
        again = _stored(s, other, "t_rank_log")
        assert after == again
        # a second resume of a complete run recomputes the same values
        engine.execute(s, run)
        assert _stored(s, run, "t_rank_log") == after


def test_formula_aggregate_is_per_architecture_in_both_paths(
    db: Path, temp_aggregates: list[str]
) -> None:
    """t_formula needs a network (l2_norm): the scorer computes it after its components;
    the stored value equals the formula of the stored component values (numpy)."""
    with Store.open(db) as s:
        run = engine.start(
            s, engine.ScoreRequest(space="nats-tss", n=6, seed=1, metrics="t_formula")
        )
        engine.execute(s, run)
        got = _stored(s, run, "t_formula")
        comp = {c: _stored(s, run, c) for c in ("relu_count_live", "params", "l2_norm")}
        for a, (v, st) in got.items():
            ref = (
                math.log1p(comp["relu_count_live"][a][0])
                - 0.5 * math.log(comp["params"][a][0])
                + 0.01 * comp["l2_norm"][a][0]
            )
            assert abs(v - ref) < 1e-9 and st == "ok"
        rec = {r["metric"]: r for r in s.run_metrics(run)}["t_formula"]
        meta = json.loads(rec["metadata"])
        assert rec["path"] == "aggregate" and meta["aggregate"]["formula"].startswith("ln(1 +")
        # the seconds of an aggregate row include its components' own seconds
        sec = s.con.execute(
            "SELECT a.seconds - (SELECT sum(c.seconds) FROM scores c WHERE c.run_id = a.run_id "
            "AND c.arch = a.arch AND c.metric IN ('relu_count_live', 'params', 'l2_norm')) "
            "FROM scores a WHERE a.run_id = ? AND a.metric = 't_formula'",
            [run],
        ).fetchall()
        assert all(0 <= d < 0.01 for (d,) in sec)


def test_aggregate_refusals_are_one_line(temp_aggregates: list[str]) -> None:
    import torch

    from nasfilter.metrics import compute
    from nasfilter.search import SearchRequest, plan_search
    from nasfilter.spaces import get_space

    with pytest.raises(UsageError, match="evolution compares one child at a time"):
        plan_search(SearchRequest("nats-tss", algo="evolution", metric="t_rank_log", n=5))
    with pytest.raises(UsageError, match="sum of log ranks"):
        plan_search(SearchRequest("nats-tss", metric="t_rank_log", penalty="gdf"))
    with pytest.raises(UsageError, match="cannot break ties"):
        plan_search(SearchRequest("nats-tss", metric="relu_count", tie_break="t_rank_log"))
    net = get_space("nats-tss").build(
        "|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|"
    )
    with pytest.raises(UsageError, match="ranks architectures within a population"):
        compute("t_rank_log", net, torch.zeros(2, 3, 32, 32))
    # a formula aggregate scores any module through compute (its components, its formula)
    v = compute("t_formula", net, torch.zeros(2, 3, 32, 32))
    l2 = compute("l2_norm", net, torch.zeros(2, 3, 32, 32))
    assert v == pytest.approx(math.log1p(40960) - 0.5 * math.log(316346) + 0.01 * l2, abs=1e-9)
    with pytest.raises(ValueError, match="is not a registered metric"):
        register_aggregate("t_bad", kind="rank", components=["nope"], description="x")
    registry._REGISTRY.pop("t_bad", None)


# -- the shipped aggregates on the command line ---------------------------------------------
def _sample_archs(n: int) -> list[str]:
    import csv

    from nasfilter.truth.table import sample_path

    with sample_path().open(newline="") as f:
        rows = [r["arch_str"] for r in csv.DictReader(f) if r["dataset"] == "cifar10"]
    return rows[:n]


@pytest.fixture(scope="module")
def scored(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int]:
    """One score run of 10 sample cells with both ensembles (K = 8, synthetic images),
    truth loaded: shared by the CLI tests below."""
    runner = CliRunner()
    tmp = tmp_path_factory.mktemp("ens")
    db = tmp / "e.duckdb"
    archs = tmp / "archs.txt"
    archs.write_text("\n".join(_sample_archs(10)) + "\n")
    r = invoke(runner, "truth", "sample", "nats-tss", "--db", str(db))
    assert r.exit_code == 0, r.output
    r = invoke(runner, "score", "nats-tss", "--archs", str(archs), "--metrics",
               "ensemble_free,ensemble", "-K", "8", "--data", "synthetic", "--device", "cpu",
               "--db", str(db))  # fmt: skip
    assert r.exit_code == 0, r.output
    return db, int(r.stdout.strip())


def test_score_stores_every_component_and_the_ensembles(scored: tuple[Path, int]) -> None:
    db, run = scored
    with Store.open(db, read_only=True) as s:
        recs = {r["metric"]: r for r in s.run_metrics(run)}
        for name in ("ensemble_free", "ensemble"):
            agg = get_metric(name).aggregate
            assert agg is not None
            assert set(agg.names) <= set(recs), name
            stored = _stored(s, run, name)
            assert len(stored) == 10
            comp = {c: _stored(s, run, c) for c in agg.names}
            archs = sorted(stored)
            if agg.kind == "rank":
                ref = _reference_aggregate(
                    {c: [comp[c][a][0] for a in archs] for c in agg.names},
                    list(agg.components), agg.form,
                )  # fmt: skip
                assert np.max(np.abs(np.array([stored[a][0] for a in archs]) - ref)) < 1e-9
        # ensemble_free reads no images: its components declare neither data nor labels
        free = get_metric("ensemble_free")
        assert not free.needs_data and not free.needs_labels


def test_top_and_analyze_take_an_ensemble(scored: tuple[Path, int]) -> None:
    db, run = scored
    runner = CliRunner()
    r = invoke(runner, "top", "--metric", "ensemble_free", "--k", "3", "--run", str(run),
               "--db", str(db), "-f", "json")  # fmt: skip
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    with Store.open(db, read_only=True) as s:
        best = sorted(_stored(s, run, "ensemble_free").values(), key=lambda x: -x[0])[:3]
    assert [x["ensemble_free"] for x in rows] == [v for v, _ in best]
    r = invoke(runner, "analyze", "--run", str(run), "--db", str(db), "-f", "json")
    assert r.exit_code == 0, r.output
    got = {m["metric"]: m for m in json.loads(r.stdout)["metrics"]}
    assert got["ensemble_free"]["n"] == 10 and got["ensemble"]["n"] == 10


def test_search_ranks_an_ensemble_within_the_candidates(scored: tuple[Path, int]) -> None:
    """random with --metric ensemble_free, and two-stage with it as either stage: the
    value of each candidate is the aggregate over the candidates the stage compared
    (recomputed here with numpy from the components' stored scores), the choice its best."""
    db, _ = scored
    runner = CliRunner()
    common = ["--population", "truth", "--dataset", "cifar10-valid", "-K", "8", "--data",
              "synthetic", "--device", "cpu", "--db", str(db), "-f", "json"]  # fmt: skip
    r = invoke(runner, "search", "nats-tss", "--n", "8", "--repeats", "1", "--metric",
               "ensemble_free", *common)  # fmt: skip
    assert r.exit_code == 0, r.output
    sid = json.loads(r.stdout)["search_run_id"]
    r = invoke(runner, "search", "nats-tss", "--algo", "two-stage", "--n", "8", "--keep", "0.5",
               "--repeats", "1", "--filter-metric", "relu_count", "--metric", "ensemble_free",
               *common)  # fmt: skip
    assert r.exit_code == 0, r.output
    sid2 = json.loads(r.stdout)["search_run_id"]
    agg = get_metric("ensemble_free").aggregate
    assert agg is not None
    with Store.open(db, read_only=True) as s:
        for search, stage, n in ((sid, "final", 8), (sid2, "final", 4)):
            cands = s.con.execute(
                "SELECT arch, value, score_run_id FROM search_candidates WHERE run_id = ? "
                "AND stage = ? ORDER BY step",
                [search, stage],
            ).fetchall()
            assert len(cands) == n
            archs = [a for a, _, _ in cands]
            comp = {}
            for c in agg.names:
                comp[c] = [
                    s.con.execute(
                        "SELECT value FROM scores WHERE run_id = ? AND arch = ? AND metric = ?",
                        [rid, a, c],
                    ).fetchone()[0]
                    for a, _, rid in cands
                ]
            ref = _reference_aggregate(comp, list(agg.components), agg.form)
            assert np.max(np.abs(np.array([v for _, v, _ in cands]) - ref)) < 1e-9
            choice = s.con.execute(
                "SELECT arch FROM search_choices WHERE run_id = ?", [search]
            ).fetchone()[0]
            assert choice == archs[int(np.argmax(ref))]


def test_the_shipped_ensembles_are_what_the_documented_procedure_selects() -> None:
    """bench/bench_ranking.py's selection, run on the cached sample scores
    (bench/data/nb201_sample_scores.parquet), chooses exactly the registered components,
    weights and signs: the choice is reproducible from the repository alone."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "bench" / "bench_ranking.py"
    spec = importlib.util.spec_from_file_location("bench_ranking", path)
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    rows = bench.sample_rows("cifar10")
    archs = [r["arch_str"] for r in rows]
    cols = bench.columns(bench.load_scores(bench.SCORES).get("cifar10", {}), archs)
    cols["relu_count_live"] = bench.live_counts(archs, "cifar10")
    acc = np.array([float(r["val_accuracy"]) for r in rows])
    train, _ = bench.split(len(acc))
    for name, pool in (("ensemble_free", bench.FREE_POOL), ("ensemble", bench.ALL_POOL)):
        chosen = bench.select(cols, acc, pool, train)
        agg = get_metric(name).aggregate
        assert agg is not None and agg.kind == "rank" and agg.form == "log"
        assert [(c.metric, c.weight, c.sign) for c in agg.components] == chosen, name


def test_the_documented_pandas_recomputation_gives_the_stored_values(
    scored: tuple[Path, int],
) -> None:
    """docs/metrics.md's pandas recipe, run as written (database path and run id set),
    equals the stored ensembles to the last bit."""
    pytest.importorskip("pandas", reason="the pandas recipe needs pandas (the dev extra)")
    import re

    db, run = scored
    doc = (Path(__file__).resolve().parents[1] / "docs" / "metrics.md").read_text()
    part = doc[doc.index("Recompute in pandas") :]
    code = re.search(r"```python\n(.*?)```", part, re.S)
    assert code is not None
    src = code.group(1)
    assert 'duckdb.connect("nasfilter.duckdb", read_only=True)' in src
    assert 'run, name = 1, "ensemble_free"' in src
    for name in ("ensemble_free", "ensemble"):
        ns: dict[str, Any] = {}
        exec(  # noqa: S102 - the documentation's own example
            src.replace('"nasfilter.duckdb"', repr(str(db))).replace(
                'run, name = 1, "ensemble_free"', f"run, name = {run}, {name!r}"
            ),
            ns,
        )
        ns["con"].close()
        got = ns["recomputed"]
        with Store.open(db, read_only=True) as s:
            stored = _stored(s, run, name)
        assert len(got) == len(stored) == 10
        assert {a: float(v) for a, v in got.items()} == {a: v for a, (v, _) in stored.items()}
