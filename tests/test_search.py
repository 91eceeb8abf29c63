"""Search: the three algorithms, penalties in search and top, reuse and time sources, the
stored tables (recomputed with SQL), and the CLI's errors."""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nasfilter import engine
from nasfilter.penalties import penalized
from nasfilter.search import SearchRequest, keep_count, run_search
from nasfilter.search.population import Population
from nasfilter.spaces import get_space
from nasfilter.store import Store
from tests.conftest import invoke

TSS = get_space("nats-tss")
SSS = get_space("nats-sss")


@pytest.fixture
def store(db: Path):  # type: ignore[no-untyped-def]
    s = Store.open(db)
    yield s
    s.close()


def _cands(store: Store, run_id: int, repeat: int, stage: str = "final") -> list[dict]:
    cur = store.con.execute(
        "SELECT * FROM search_candidates WHERE run_id = ? AND repeat = ? AND stage = ? "
        "ORDER BY step",
        [run_id, repeat, stage],
    )
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, r, strict=True)) for r in cur.fetchall()]


def _params(a: str) -> int:
    return TSS.costs(a).params if "|" in a else SSS.costs(a).params


def _best(archs: list[str], value, higher: bool = True, tie: str = "first") -> str:  # type: ignore[no-untyped-def]
    """Independent argmax with the documented tie-breaks: the first drawn (default),
    fewer or more params then first drawn."""
    sign = -1.0 if higher else 1.0
    extra = {
        "first": lambda a: 0,
        "smallest": lambda a: _params(a),
        "largest": lambda a: -_params(a),
    }[tie]
    order = {a: i for i, a in enumerate(archs)}
    return min(archs, key=lambda a: (sign * value(a), extra(a), order[a]))


def _hamming(space, a: str, b: str) -> int:  # type: ignore[no-untyped-def]
    return sum(x != y for x, y in zip(space.digits(a), space.digits(b), strict=True))


# --- the space API used by mutation --------------------------------------------------------


@pytest.mark.parametrize(("space", "n_neigh"), [(TSS, 24), (SSS, 35)])
def test_neighbours_and_mutate_change_exactly_one_position(space, n_neigh) -> None:  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    for idx in rng.choice(space.size, 40, replace=False):
        a = space.unrank(int(idx))
        nb = space.neighbours(a)
        assert len(nb) == len(set(nb)) == n_neigh and a not in nb
        for b in nb:
            assert space.canonical(b) == b and _hamming(space, a, b) == 1
        for _ in range(10):
            c = space.mutate(a, rng)
            assert c in nb
    # one TSS position is one edge: exactly one (op, input) of the genotype differs
    a = TSS.unrank(777)
    for b in TSS.neighbours(a):
        ea = [e for node in TSS.parse(a) for e in node]
        eb = [e for node in TSS.parse(b) for e in node]
        assert sum(x != y for x, y in zip(ea, eb, strict=True)) == 1
    for b in SSS.neighbours("8:16:24:32:64"):
        assert sum(x != y for x, y in zip(SSS.parse(b), (8, 16, 24, 32, 64), strict=True)) == 1


def test_restricted_population_mutation_is_nearest_member() -> None:
    members = [TSS.unrank(i) for i in range(0, TSS.size, 37)]
    pop = Population(TSS, members, "test")
    rng = np.random.default_rng(1)
    for a in members[:30]:
        c = pop.mutate(a, rng)
        assert c in members and c != a
        d = _hamming(TSS, a, c)
        assert d == min(_hamming(TSS, a, m) for m in members if m != a)


def test_keep_count_is_exact_ceil() -> None:
    assert keep_count(0.1, 10) == 1
    assert keep_count(0.1, 30) == 3
    assert keep_count(0.07, 100) == 7  # 0.07 * 100 == 7.000000000000001 in floating point
    assert keep_count(0.14, 50) == 7  # 7.000000000000001 too
    assert keep_count(0.15, 20) == 3
    assert keep_count(0.001, 10) == 1
    assert keep_count(1.0, 7) == 7
    assert keep_count(0.25, 10) == 3


# --- random ----------------------------------------------------------------------------------


def test_random_picks_argmax_among_exactly_the_sampled_set(store: Store) -> None:
    res = run_search(store, SearchRequest("nats-tss", algo="random", n=50, repeats=3, seed=4))
    assert [r.repeat for r in res.repeats] == [1, 2, 3]
    for r in res.repeats:
        cands = _cands(store, res.run_id, r.repeat)
        sample = list(TSS.sample(50, 4 + r.repeat - 1))  # = `nasfilter score --n 50 --seed 4+r-1`
        assert [c["arch"] for c in cands] == sample
        # stored values are the analytic ReLU counts, and the choice is their argmax
        for c in cands:
            assert c["value"] == TSS.costs(c["arch"]).relu_count == c["rank_value"]
            row = store.con.execute(
                "SELECT value FROM scores WHERE run_id = ? AND arch = ? AND metric = ?",
                [c["score_run_id"], c["arch"], "relu_count"],
            ).fetchone()
            assert row[0] == c["value"]
        assert r.arch == _best(sample, lambda a: TSS.costs(a).relu_count)
        assert r.value == TSS.costs(r.arch).relu_count
        assert r.params == TSS.costs(r.arch).params and r.size_kb == r.params / 1000
        assert r.accuracy is None and r.evaluations == 50


def test_random_lower_is_better_metric_picks_the_minimum(store: Store) -> None:
    res = run_search(
        store, SearchRequest("nats-sss", algo="random", n=40, repeats=1, metric="flops", seed=2)
    )
    sample = list(SSS.sample(40, 2))
    assert res.repeats[0].arch == min(
        sample, key=lambda a: (SSS.costs(a).flops, SSS.costs(a).params, a)
    )


def test_random_penalized_picks_argmax_of_metric_times_penalty(store: Store) -> None:
    req = SearchRequest(
        "nats-tss", algo="random", n=200, repeats=2, penalty="rdf", mu=0.1, sigma=0.1, seed=9
    )
    res = run_search(store, req)
    plain = run_search(store, SearchRequest("nats-tss", algo="random", n=200, repeats=2, seed=9))
    assert res.settings["rank_by"] == "relu_count_rdf"
    assert res.settings["penalty"]["mu"] == 0.1 and res.settings["penalty"]["penalty"] == "rdf"

    def pen(a: str) -> float:
        c = TSS.costs(a)
        return float(penalized(c.relu_count, c.params / 1e6, "rdf", 0.1, 0.1))

    for r, p in zip(res.repeats, plain.repeats, strict=True):
        sample = list(TSS.sample(200, 9 + r.repeat - 1))
        assert r.arch == _best(sample, pen)
        assert r.rank_value == pytest.approx(pen(r.arch), rel=1e-12)
        assert r.size_kb < p.size_kb  # the penalty moved the choice to a smaller network
    row = store.con.execute(
        "SELECT penalty, mu, sigma, rank_by FROM searches WHERE run_id = ?", [res.run_id]
    ).fetchone()
    assert row == ("rdf", 0.1, 0.1, "relu_count_rdf")


# --- two-stage -------------------------------------------------------------------------------


def test_two_stage_scores_naswot_on_exactly_ceil_keep_n(store: Store) -> None:
    req = SearchRequest(
        "nats-sss",
        algo="two-stage",
        n=20,
        repeats=2,
        keep=0.15,
        data="synthetic",
        batch_size=8,
        device="cpu",
        seed=1,
    )
    res = run_search(store, req)
    assert res.settings["keep"] == 3 and res.settings["metric"] == "naswot"
    score_runs: set[int] = set()
    for r in res.repeats:
        first = _cands(store, res.run_id, r.repeat, "filter")
        final = _cands(store, res.run_id, r.repeat, "final")
        sample = list(SSS.sample(20, 1 + r.repeat - 1))
        assert [c["arch"] for c in first] == sample
        assert all(c["metric"] == "relu_count" for c in first)
        top3 = sorted(sample, key=lambda a: (-SSS.costs(a).relu_count, SSS.costs(a).params, a))[:3]
        assert [c["arch"] for c in final] == top3
        assert all(c["metric"] == "naswot" for c in final)
        vals = {c["arch"]: c["value"] for c in final}
        assert r.arch == max(top3, key=lambda a: (vals[a], -SSS.costs(a).params))
        assert r.evaluations == 23
        score_runs.update(c["score_run_id"] for c in final)
    # NASWOT was computed for exactly the kept architectures, nothing else
    n_naswot = store.con.execute(
        "SELECT count(*) FROM scores WHERE metric = 'naswot' AND list_contains(?, run_id)",
        [sorted(score_runs)],
    ).fetchone()[0]
    kept = {c["arch"] for r in res.repeats for c in _cands(store, res.run_id, r.repeat, "final")}
    assert n_naswot == len(kept)
    assert store.con.execute("SELECT count(*) FROM scores WHERE metric = 'naswot'").fetchone()[
        0
    ] == len(kept)


# --- evolution -------------------------------------------------------------------------------


def test_evolution_mutates_one_position_ages_out_and_is_deterministic(
    store: Store, tmp_path: Path
) -> None:
    req = SearchRequest(
        "nats-tss", algo="evolution", n=60, repeats=2, ea_population=10, ea_sample=3, seed=3
    )
    res = run_search(store, req)
    for r in res.repeats:
        cands = _cands(store, res.run_id, r.repeat)
        assert len(cands) == 60 == r.evaluations
        init = [c["arch"] for c in cands[:10]]
        assert init == list(TSS.sample(10, 3 + r.repeat - 1))
        assert all(c["parent"] is None for c in cands[:10])
        for i, c in enumerate(cands[10:], start=10):
            assert TSS.canonical(c["arch"]) == c["arch"]
            assert _hamming(TSS, c["parent"], c["arch"]) == 1
            window = cands[i - 10 : i]  # aging: the population is the last P evaluations
            wa = [w["arch"] for w in window]
            assert c["parent"] in wa

            # the parent won a tournament of 3 window positions: at least 2 other positions
            # rank no better than it (ties: the oldest wins; its own duplicates included)
            keys = [(-w["rank_value"], j) for j, w in enumerate(window)]
            pk = min(k for k, w in zip(keys, window, strict=True) if w["arch"] == c["parent"])
            assert sum(1 for k in keys if k >= pk) - 1 >= 2
        # the choice: the best value, ties to the first evaluated
        best = min(cands, key=lambda c: (-c["rank_value"], c["step"]))
        assert r.arch == best["arch"]
        # a child already evaluated in this repeat keeps its value, with no new scoring
        seen: set[str] = set()
        for c in cands:
            assert (c["source"] == "repeat") == (c["arch"] in seen)
            seen.add(c["arch"])
    with Store.open(tmp_path / "other.duckdb") as other:
        again = run_search(other, req)
        assert [r.arch for r in again.repeats] == [r.arch for r in res.repeats]
        for r in res.repeats:
            assert [c["arch"] for c in _cands(other, again.run_id, r.repeat)] == [
                c["arch"] for c in _cands(store, res.run_id, r.repeat)
            ]


def test_evolution_on_truth_population_stays_inside(store: Store) -> None:
    from nasfilter.truth import accuracy_of
    from nasfilter.truth.table import load_sample

    load_sample(store)
    acc = accuracy_of(store, "nats-tss", "cifar10-valid", "valid")
    res = run_search(
        store,
        SearchRequest(
            "nats-tss",
            algo="evolution",
            n=40,
            repeats=1,
            dataset="cifar10-valid",
            population="truth",
        ),
    )
    assert res.settings["split"] == "valid" and res.settings["population_size"] == len(acc)
    cands = _cands(store, res.run_id, 1)
    assert all(c["arch"] in acc for c in cands)
    for c in cands[10:]:
        d = _hamming(TSS, c["parent"], c["arch"])
        assert d == min(_hamming(TSS, c["parent"], m) for m in acc if m != c["parent"])
    assert res.repeats[0].accuracy == acc[res.repeats[0].arch]


# --- reuse and time sources ------------------------------------------------------------------


def _stored_seconds(store: Store, run_id: int, archs: list[str], metric: str) -> float:
    rows = dict(
        store.con.execute(
            "SELECT arch, seconds FROM scores WHERE run_id = ? AND metric = ?", [run_id, metric]
        ).fetchall()
    )
    return sum(rows[a] for a in archs)


def test_reuse_and_time_source_labels(store: Store) -> None:
    first = run_search(store, SearchRequest("nats-tss", n=30, repeats=1, seed=0))
    r0 = first.repeats[0]
    assert (r0.time_source, r0.scored, r0.stored, r0.summed_seconds) == ("measured", 30, 0, 0.0)
    assert r0.seconds == r0.measured_seconds > 0
    score_run = _cands(store, first.run_id, 1)[0]["score_run_id"]

    again = run_search(store, SearchRequest("nats-tss", n=30, repeats=1, seed=0))
    a0 = again.repeats[0]
    assert (a0.time_source, a0.scored, a0.stored, a0.measured_seconds) == ("summed", 0, 30, 0.0)
    cands = _cands(store, again.run_id, 1)
    assert {c["score_run_id"] for c in cands} == {score_run}
    assert {c["source"] for c in cands} == {"stored"}
    expected = _stored_seconds(store, score_run, [c["arch"] for c in cands], "relu_count")
    assert a0.seconds == pytest.approx(expected, rel=1e-12, abs=0)
    assert a0.arch == r0.arch and a0.value == r0.value

    # half of seed 7's sample is already in a score run: that repeat is mixed
    sample = list(TSS.sample(30, 7))
    rid = engine.start(
        store, engine.ScoreRequest("nats-tss", archs=sample[:15], metrics="relu_count")
    )
    engine.execute(store, rid)
    mixed = run_search(store, SearchRequest("nats-tss", n=30, repeats=1, seed=7)).repeats[0]
    assert (mixed.time_source, mixed.scored, mixed.stored) == ("mixed", 15, 15)
    assert mixed.summed_seconds == pytest.approx(
        _stored_seconds(store, rid, sample[:15], "relu_count"), rel=1e-12, abs=0
    )
    assert mixed.seconds == pytest.approx(mixed.measured_seconds + mixed.summed_seconds)

    # --no-reuse scores again; different settings (bytes per parameter) are not reused
    fresh = run_search(store, SearchRequest("nats-tss", n=30, repeats=1, seed=0, reuse=False))
    assert fresh.repeats[0].time_source == "measured" and fresh.repeats[0].stored == 0
    other = run_search(
        store, SearchRequest("nats-tss", n=30, repeats=1, seed=0, bytes_per_param=2.0)
    )
    assert other.repeats[0].time_source == "measured"
    assert other.repeats[0].size_kb == 2 * r0.size_kb


def test_naswot_reuse_needs_the_same_batch(store: Store) -> None:
    def run(k: int):  # type: ignore[no-untyped-def]
        return run_search(
            store,
            SearchRequest(
                "nats-sss",
                n=3,
                repeats=1,
                metric="naswot",
                data="synthetic",
                batch_size=k,
                device="cpu",
                seed=11,
            ),
        ).repeats[0]

    a, b, c = run(8), run(8), run(10)
    assert (a.time_source, b.time_source, c.time_source) == ("measured", "summed", "measured")
    assert b.value == a.value and b.arch == a.arch
    # relu_count computed from a built network (model path) is not reused by an analytic run
    d = run_search(store, SearchRequest("nats-sss", n=3, repeats=1, seed=11)).repeats[0]
    assert d.time_source == "measured"


# --- everything stored: recompute with SQL ---------------------------------------------------


def test_summary_recomputed_with_sql(runner: CliRunner, db: Path) -> None:
    r = invoke(runner, "truth", "sample", "nats-tss", "--db", str(db))
    assert r.exit_code == 0, r.output
    args = [
        "search",
        "nats-tss",
        "--algo",
        "random",
        "--n",
        "20",
        "--repeats",
        "4",
        "--dataset",
        "cifar10-valid",
        "--population",
        "truth",
        "--penalty",
        "gdf",
        "--seed",
        "5",
        "--db",
        str(db),
        "-f",
        "json",
    ]
    invoke(runner, *args[:-2], "--repeats", "2", "--seed", "6")  # some scores to reuse
    r = invoke(runner, *args)
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    run_id = out["search_run_id"]
    assert set(out["repeats"][0]) >= {
        "arch",
        "relu_count",
        "relu_count_gdf",
        "params",
        "size_kb",
        "accuracy",
        "seconds",
        "time_source",
    }
    with Store.open(db, read_only=True) as s:
        q = s.con.execute
        # the summary, from search_choices
        row = q(
            "SELECT avg(accuracy), stddev_samp(accuracy), avg(size_kb), "
            "stddev_samp(size_kb), avg(seconds), stddev_samp(seconds), count(*) "
            "FROM search_choices WHERE run_id = ?",
            [run_id],
        ).fetchone()
        sm = out["summary"]
        for got, want in zip(
            row[:6],
            [
                sm["accuracy"]["mean"],
                sm["accuracy"]["std"],
                sm["size_kb"]["mean"],
                sm["size_kb"]["std"],
                sm["seconds"]["mean"],
                sm["seconds"]["std"],
            ],
            strict=True,
        ):
            assert got == pytest.approx(want, rel=1e-9)
        assert row[6] == 4 == sm["repeats"]
        # each choice, from the candidates: argmax of the penalized value
        choices = q(
            """
            SELECT c.repeat, c.arch FROM search_candidates c WHERE run_id = ?
            QUALIFY row_number() OVER (PARTITION BY repeat
                ORDER BY rank_value DESC, step) = 1 ORDER BY repeat""",
            [run_id],
        ).fetchall()
        assert [a for _, a in choices] == [x["arch"] for x in out["repeats"]]
        # rank_value = value x gdf(size_kb / 1000; 0.2, 0.4), value as stored in scores
        bad = q(
            """
            SELECT count(*) FROM search_candidates c
            JOIN scores s ON s.run_id = c.score_run_id AND s.arch = c.arch
                AND s.metric = c.metric
            WHERE c.run_id = ? AND (s.value <> c.value OR abs(c.rank_value - c.value *
                CASE WHEN c.size_kb / 1000 <= 0.2 THEN 1
                     ELSE exp(-0.5 * pow((c.size_kb / 1000 - 0.2) / 0.4, 2)) END)
                > 1e-9 * c.value)""",
            [run_id],
        ).fetchone()[0]
        assert bad == 0
        assert (
            q("SELECT count(*) FROM search_candidates WHERE run_id = ?", [run_id]).fetchone()[0]
            == 80
        )
        # accuracy from the truth table, times from the candidates
        rows = q(
            """
            WITH agg AS (
                SELECT repeat,
                    coalesce(sum(seconds) FILTER (source = 'stored'), 0) AS summed,
                    sum(seconds) FILTER (source <> 'repeat') AS score_s,
                    count(*) FILTER (source = 'stored') AS n_stored,
                    count(*) FILTER (source = 'scored') AS n_scored
                FROM search_candidates WHERE run_id = $1 GROUP BY repeat)
            SELECT ch.repeat, ch.accuracy, t.accuracy, ch.seconds,
                ch.measured_seconds + a.summed, ch.summed_seconds, a.summed,
                ch.score_seconds, a.score_s, ch.time_source,
                CASE WHEN a.n_stored = 0 THEN 'measured' WHEN a.n_scored = 0 THEN 'summed'
                    ELSE 'mixed' END
            FROM search_choices ch
            JOIN agg a USING (repeat)
            JOIN truth t ON t.space = 'nats-tss' AND t.arch = ch.arch
                AND t.dataset = 'cifar10-valid' AND t.split = 'valid'
            WHERE ch.run_id = $1 ORDER BY ch.repeat""",
            [run_id],
        ).fetchall()
        assert len(rows) == 4
        for rep, acc, truth, secs, secs2, summed, summed2, ss, ss2, ts, ts2 in rows:
            assert acc == truth == out["repeats"][rep - 1]["accuracy"]
            assert secs == pytest.approx(secs2, rel=1e-12)
            assert summed == pytest.approx(summed2, rel=1e-12, abs=1e-15)
            assert ss == pytest.approx(ss2, rel=1e-12)
            assert ts == ts2 == out["repeats"][rep - 1]["time_source"]
        assert {x["time_source"] for x in out["repeats"]} >= {"mixed"} or {
            x["time_source"] for x in out["repeats"]
        } >= {"summed"}
        kind, status = q("SELECT kind, status FROM runs WHERE run_id = ?", [run_id]).fetchone()
        assert (kind, status) == ("search", "completed")


# --- CLI -------------------------------------------------------------------------------------


def test_cli_table_and_csv_show_penalty_and_summary(
    runner: CliRunner, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "300")  # rich wraps tables to the terminal width
    r = invoke(
        runner,
        "search",
        "nats-sss",
        "--n",
        "30",
        "--repeats",
        "3",
        "--penalty",
        "hsdf",
        "--mu",
        "0.05",
        "--db",
        str(db),
    )
    assert r.exit_code == 0, r.output
    assert "hsdf(mu=0.05 MB, sigma=0.4 MB)" in r.stdout
    assert "relu_count_hsdf" in r.stdout and "Mean ± std over 3 repeats" in r.stdout
    assert "measured" in r.stderr
    r = invoke(runner, "search", "--show", "latest", "--db", str(db), "-f", "csv")
    assert r.exit_code == 0, r.output
    rows = list(csv.reader(io.StringIO(r.stdout)))
    # one header per column; the repeats only, numbered from 1 (as on stderr)
    assert rows[0] == [
        "repeat",
        "arch",
        "metric",
        "value",
        "rank_by",
        "rank_value",
        "params",
        "size_kb",
        "accuracy",
        "seconds",
        "time_source",
    ]
    assert [x[0] for x in rows[1:]] == ["1", "2", "3"]
    assert {x[2] for x in rows[1:]} == {"relu_count"} and {x[4] for x in rows[1:]} == {
        "relu_count_hsdf"
    }
    sizes = [float(x[7]) for x in rows[1:4]]
    # the summary goes to stderr, not into the CSV
    assert (
        f"size_kb: mean {np.mean(sizes)}" in r.stderr.replace("\n", " ")
        or "size_kb: mean" in r.stderr
    )


def test_cli_csv_headers_are_unique_whatever_the_metric(runner: CliRunner, db: Path) -> None:
    """Regression: --metric params gave the CSV header `params,params`."""
    r = invoke(
        runner, "search", "nats-sss", "--n", "5", "--repeats", "2", "--metric", "params",
        "--db", str(db), "-f", "csv",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    header = next(csv.reader(io.StringIO(r.stdout)))
    assert len(header) == len(set(header))
    rows = list(csv.DictReader(io.StringIO(r.stdout)))
    assert [x["repeat"] for x in rows] == ["1", "2"]
    assert all(
        x["metric"] == "params"
        and x["value"] == x["params"].split(".")[0]
        or float(x["value"]) == float(x["params"])
        for x in rows
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (
            ["nats-tss", "--algo", "annealing"],
            2,
            "Error: Invalid value for '--algo': 'annealing' is not one of 'random', "
            "'two-stage', 'evolution'. Try 'nasfilter search -h' for help.",
        ),
        (["nats-tss", "--n", "20000"], 2, "--n 20000 is larger than the nats-tss space"),
        (["nats-tss", "--n", "0"], 2, "--n must be at least 1"),
        (
            ["nats-tss", "--algo", "two-stage", "--keep", "0", "--data", "synthetic"],
            2,
            "--keep must be a fraction in (0, 1] (got 0.0)",
        ),
        (
            ["nats-tss", "--algo", "two-stage", "--keep", "1.5", "--data", "synthetic"],
            2,
            "--keep must be a fraction in (0, 1] (got 1.5)",
        ),
        (["nats-tss", "--population", "truth"], 2, "--population truth needs --dataset"),
        (
            ["nats-tss", "--algo", "two-stage", "--metric", "relu_count"],
            2,
            "--filter-metric and --metric are both relu_count.",
        ),
        (["nats-tss", "--dataset", "mnist"], 2, "Unknown dataset 'mnist'"),
        (["nats-tss", "--metric", "params", "--penalty", "gdf"], 2, "params is lower-is-better"),
        (["nats-tss", "--penalty", "box"], 2, "'box' is not one of 'gdf', 'hsdf', 'rdf'"),
        (["nats-tss", "--penalty", "gdf", "--sigma", "0"], 2, "sigma must be finite and > 0"),
        (["nats-tss", "--metric", "naswot"], 2, "naswot needs input images"),
        (["nats-tss", "--metric", "zenith"], 2, "Unknown metric 'zenith'"),
        (["nats-tss", "--algo", "evolution", "--ea-sample", "11"], 2, "--ea-sample must be"),
        (
            ["nats-tss", "--dataset", "cifar10-valid", "--population", "truth"],
            4,
            "No ground truth for nats-tss on cifar10-valid (valid)",
        ),
        (["nats-xyz"], 2, "Unknown search space 'nats-xyz'"),
    ],
)
def test_cli_errors_one_line_and_exit_code(
    runner: CliRunner, db: Path, args, code, message
) -> None:  # type: ignore[no-untyped-def]
    r = invoke(runner, "search", *args, "--db", str(db))
    assert r.exit_code == code, r.output
    assert message in r.stderr
    assert r.stderr.startswith("Error: ") and r.stdout == ""
    if db.exists():
        with Store.open(db, read_only=True) as s:
            assert s.con.execute("SELECT count(*) FROM runs").fetchone()[0] == 0


def test_cli_n_larger_than_truth_population(runner: CliRunner, db: Path) -> None:
    invoke(runner, "truth", "sample", "nats-tss", "--db", str(db))
    r = invoke(
        runner,
        "search",
        "nats-tss",
        "--n",
        "1000",
        "--dataset",
        "cifar10-valid",
        "--population",
        "truth",
        "--db",
        str(db),
    )
    assert r.exit_code == 2
    assert (
        "Error: --n 1000 is larger than the population (724 architectures of nats-tss with "
        "cifar10-valid valid truth), which has 724 architectures."
    ) in r.stderr
    r = invoke(runner, "search", "--show", "1", "--db", str(db))
    assert r.exit_code == 2  # no run 1 (truth loads are not runs): a usage error
    invoke(runner, "score", "nats-tss", "--n", "5", "--db", str(db))
    r = invoke(runner, "search", "--show", "1", "--db", str(db))
    assert r.exit_code == 2 and "Run 1 is a score run, not a search." in r.stderr


# --- top --penalty ---------------------------------------------------------------------------


def test_top_penalty_ranks_by_metric_times_penalty(runner: CliRunner, db: Path) -> None:
    r = invoke(runner, "score", "nats-tss", "--n", "300", "--seed", "2", "--db", str(db))
    assert r.exit_code == 0, r.output
    r = invoke(
        runner,
        "top",
        "--k",
        "6",
        "--penalty",
        "gdf",
        "--mu",
        "0.1",
        "--sigma",
        "0.2",
        "--max-kb",
        "500",
        "--db",
        str(db),
        "-f",
        "json",
    )
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert list(rows[0]) == [
        "arch",
        "relu_count_gdf",
        "relu_count",
        "factor",
        "status",
        "params",
        "size_kb",
        "penalty",
    ]
    sample = [a for a in TSS.sample(300, 2) if TSS.costs(a).params / 1000 <= 500]

    def pen(a: str) -> float:
        c = TSS.costs(a)
        return float(penalized(c.relu_count, c.params / 1e6, "gdf", 0.1, 0.2))

    order = {a: i for i, a in enumerate(TSS.sample(300, 2))}  # draw order: ties to the first
    want = sorted(sample, key=lambda a: (-pen(a), order[a]))[:6]
    assert [x["arch"] for x in rows] == want
    for x in rows:
        assert x["relu_count_gdf"] == pytest.approx(pen(x["arch"]), rel=1e-12)
        assert x["relu_count_gdf"] == pytest.approx(x["relu_count"] * x["factor"], rel=1e-12)
        assert x["penalty"] == "gdf(mu=0.1, sigma=0.2)"
        assert 0 < x["factor"] <= 1
    plain = json.loads(invoke(runner, "top", "--k", "1", "--db", str(db), "-f", "json").stdout)
    assert plain[0]["size_kb"] > rows[0]["size_kb"]
    r = invoke(runner, "top", "--k", "3", "--penalty", "hsdf", "--db", str(db))
    assert r.exit_code == 0
    assert "relu_count x hsdf(size; mu=0.2 MB, sigma=0.4 MB)" in r.stdout
    r = invoke(runner, "top", "--metric", "params", "--penalty", "gdf", "--db", str(db))
    assert r.exit_code == 2 and "params is lower-is-better" in r.stderr
    r = invoke(runner, "top", "--penalty", "nope", "--db", str(db))
    assert r.exit_code == 2 and "'nope' is not one of 'gdf', 'hsdf', 'rdf'" in r.stderr
    r = invoke(runner, "top", "--penalty", "gdf", "--mu", "-1", "--db", str(db))
    assert r.exit_code == 2 and "mu must be finite and >= 0" in r.stderr


def test_top_penalty_on_a_penalized_score_run_is_refused(runner: CliRunner, db: Path) -> None:
    r = invoke(runner, "score", "nats-sss", "--n", "20", "--penalty", "gdf", "--db", str(db))
    assert r.exit_code == 0, r.output
    r = invoke(runner, "top", "--metric", "relu_count_gdf", "--penalty", "gdf", "--db", str(db))
    assert r.exit_code == 2 and "already size-penalized" in r.stderr
    # the stored penalized rows and the on-the-fly ranking agree
    stored = json.loads(
        invoke(
            runner, "top", "--metric", "relu_count_gdf", "--k", "5", "--db", str(db), "-f", "json"
        ).stdout
    )
    fly = json.loads(
        invoke(runner, "top", "--penalty", "gdf", "--k", "5", "--db", str(db), "-f", "json").stdout
    )
    assert [x["arch"] for x in stored] == [x["arch"] for x in fly]
    for a, b in zip(stored, fly, strict=True):
        assert math.isclose(a["relu_count_gdf"], b["relu_count_gdf"], rel_tol=1e-12)


def test_interrupted_search_keeps_finished_repeats(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from nasfilter.engine import RunInterrupted
    from nasfilter.search import runner

    real = runner.ALGORITHM_FUNCS["random"]

    def flaky(ctx):  # type: ignore[no-untyped-def]
        if ctx.repeat == 3:
            raise KeyboardInterrupt
        return real(ctx)

    monkeypatch.setitem(runner.ALGORITHM_FUNCS, "random", flaky)
    with pytest.raises(RunInterrupted) as e:
        run_search(store, SearchRequest("nats-tss", n=10, repeats=4))
    assert e.value.exit_code == 130
    assert "search run 1 keeps 2 of 4 repeats" in str(e.value)
    assert store.get_run(1)["status"] == "interrupted"
    assert store.con.execute("SELECT count(*) FROM search_choices").fetchone()[0] == 2
    res = runner.read_search(store, 1)
    assert len(res.repeats) == 2 and "is interrupted: 2 of 4 repeats stored" in res.notes[0]


def test_the_summary_formats_each_quantity_with_its_own_decimals() -> None:
    """An aggregate's mean of -0.29 beside params' 2,217,066: not "-0"."""
    from nasfilter.cli.search import summary_cells

    rows = [
        ("ensemble_free", -0.2876820724517809, None, 1),
        ("params", 2217066.0, None, 1),
        ("seconds", 22.4, 1.25, 3),
        ("accuracy", math.nan, None, 0),
    ]
    assert summary_cells(rows) == [
        ("ensemble_free", "-0.2877", "", 1),
        ("params", "2,217,066", "", 1),
        ("seconds", "22.40", "1.25", 3),
        ("accuracy", "nan", "", 0),
    ]
