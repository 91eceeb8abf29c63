"""analyze: Kendall tau-b / Spearman rho in SQL against scipy (tied data, the ReLU count),
non-finite values, top-k, the CLI (table/csv/json, --plot, --show-sql) and errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from nasfilter.analysis.correlation import analyze_run, default_dataset
from nasfilter.errors import DataError, UsageError
from nasfilter.store import BatchWriter, Store
from nasfilter.truth import TruthBatch, write_truth
from nasfilter.truth.table import load_sample
from tests.conftest import invoke

TOL = 1e-9


def _rank_correlations(store: Store, table: str) -> dict[tuple[str, str], tuple]:
    rows = store.con.execute(
        f"SELECT x_name, y_name, n, kendall_tau_b, spearman_rho, x_distinct FROM "
        f"rank_correlations('SELECT * FROM {table}')"
    ).fetchall()
    return {(r[0], r[1]): r[2:] for r in rows}


def _insert_xy(st: Store, x_name: str, y_name: str, x, y) -> None:  # type: ignore[no-untyped-def]
    import pyarrow as pa

    n = len(x)
    t = pa.table(
        {
            "x_name": [x_name] * n,
            "y_name": [y_name] * n,
            "x": pa.array(np.asarray(x, dtype=float)),
            "y": pa.array(np.asarray(y, dtype=float)),
        }
    )
    st.con.register("_xy", t)
    st.con.execute("INSERT INTO xy SELECT * FROM _xy")
    st.con.unregister("_xy")


def _close(a: float | None, b: float) -> bool:
    if a is None:
        return math.isnan(b)
    return abs(a - b) <= TOL


def test_kendall_tau_b_and_spearman_equal_scipy_on_tied_data(db: Path) -> None:
    rng = np.random.default_rng(7)
    groups = {
        ("few", "acc"): (rng.integers(0, 4, 500), np.round(rng.normal(80, 5, 500), 1)),
        ("ties", "ties"): (rng.integers(0, 6, 800), rng.integers(0, 9, 800)),
        ("cont", "ties"): (rng.normal(size=300), rng.integers(0, 3, 300)),
        ("neg", "acc"): (-np.arange(50.0), np.arange(50.0) % 7),
        ("small", "two"): (np.array([1.0, 2.0]), np.array([2.0, 1.0])),
    }
    with Store.open(db) as st:
        st.con.execute("CREATE TABLE xy (x_name VARCHAR, y_name VARCHAR, x DOUBLE, y DOUBLE)")
        for (a, b), (x, y) in groups.items():
            _insert_xy(st, a, b, x, y)
        # non-finite values are left out, never replaced
        st.con.execute(
            "INSERT INTO xy VALUES ('few', 'acc', 'nan', 1), ('few', 'acc', '-inf', 2),"
            " ('few', 'acc', 3, 'inf'), ('few', 'acc', NULL, 4)"
        )
        got = _rank_correlations(st, "xy")
    assert set(got) == set(groups)
    for key, (x, y) in groups.items():
        n, tau, rho, distinct = got[key]
        assert n == len(x) and distinct == len(set(x.tolist()))
        assert _close(tau, stats.kendalltau(x, y, variant="b").statistic), key
        assert _close(rho, stats.spearmanr(x, y).statistic), key


def test_relu_count_over_tss_with_its_few_distinct_values(db: Path) -> None:
    from nasfilter.spaces import get_space

    tss = get_space("nats-tss")  # every one of the 15,625 cells
    costs = [tss.costs(a) for a in tss.enumerate()]
    relu = np.array([c.relu_count for c in costs], dtype=float)
    params = np.array([c.params for c in costs], dtype=float)
    n = len(relu)
    acc = np.round(60 + 30 * relu / relu.max() + np.random.default_rng(1).normal(0, 5, n), 1)
    assert n == 15_625 and len(set(relu.tolist())) == 7
    with Store.open(db) as st:
        st.con.execute("CREATE TABLE xy (x_name VARCHAR, y_name VARCHAR, x DOUBLE, y DOUBLE)")
        _insert_xy(st, "relu", "acc", relu, acc)
        _insert_xy(st, "relu", "params", relu, params)
        got = _rank_correlations(st, "xy")
    for name, y in (("acc", acc), ("params", params)):
        m, tau, rho, distinct = got[("relu", name)]
        assert m == n and distinct == 7
        assert abs(tau - stats.kendalltau(relu, y).statistic) <= TOL
        assert abs(rho - stats.spearmanr(relu, y).statistic) <= TOL


def test_degenerate_groups_give_null_not_numbers(db: Path) -> None:
    with Store.open(db) as st:
        st.con.execute(
            "CREATE TABLE xy AS SELECT 'c' AS x_name, 'y' AS y_name, 1.0 AS x,"
            " range::DOUBLE AS y FROM range(5)"
        )
        st.con.execute("INSERT INTO xy VALUES ('one', 'y', 1, 2)")
        got = _rank_correlations(st, "xy")
    assert got[("c", "y")][:3] == (5, None, None)  # constant x: scipy gives nan
    assert got[("one", "y")][:3] == (1, None, None)


# -- a run with truth, built through the store ---------------------------------------------------


def _make_run(
    st: Store, space: str, values: dict[str, tuple[bool, dict[str, float]]], params: dict[str, int]
) -> int:
    metrics = [
        {
            "name": m,
            "version": "1",
            "higher_is_better": hib,
            "needs_model": False,
            "needs_data": False,
            "needs_gradients": False,
            "path": "analytic",
            "description": m,
            "unit": "",
        }
        for m, (hib, _) in values.items()
    ]
    metrics.append(
        {
            "name": "params",
            "version": "1",
            "higher_is_better": False,
            "needs_model": False,
            "needs_data": False,
            "needs_gradients": False,
            "path": "analytic",
            "description": "params",
            "unit": "count",
        }
    )
    run = st.create_run(
        "score",
        space,
        {"space": space, "dataset_shape": {"name": "cifar10"}},
        0,
        len(params),
        "test",
        metrics,
    )
    w = BatchWriter(st, run)
    for pos, (arch, p) in enumerate(params.items()):
        w.add_architecture(space, arch, p, 0)
        w.add_score(arch, "params", pos, float(p), "ok", 0.0)
        for m, (_, vals) in values.items():
            v = vals[arch]
            status = "ok" if math.isfinite(v) else ("nan" if math.isnan(v) else "-inf")
            w.add_score(arch, m, pos, v, status, 0.0)
    w.flush()
    st.set_run_status(run, "completed")
    return run


@pytest.fixture
def sample_run(db: Path):  # type: ignore[no-untyped-def]
    """A nats-tss run over the sample's 724 cifar10 cells: relu_count (ties), a noisy
    continuous metric with NaN and -inf values, and params; truth from the shipped sample."""
    from nasfilter.spaces import get_space

    tss = get_space("nats-tss")
    with Store.open(db) as st:
        load_sample(st)
        truth = dict(
            st.con.execute(
                "SELECT arch, accuracy FROM truth WHERE dataset = 'cifar10-valid'"
            ).fetchall()
        )
        archs = sorted(truth)
        rng = np.random.default_rng(3)
        relu = {a: float(tss.costs(a).relu_count) for a in archs}
        noisy = {a: truth[a] + float(rng.normal(0, 5)) for a in archs}
        for a in archs[:9]:
            noisy[a] = float("nan")
        for a in archs[9:12]:
            noisy[a] = float("-inf")
        params = {a: tss.costs(a).params for a in archs}
        run = _make_run(
            st, "nats-tss", {"relu_count": (True, relu), "noisy": (True, noisy)}, params
        )
    return db, run, truth, relu, noisy, params


def test_analyze_run_matches_an_independent_computation(sample_run) -> None:
    db, run, truth, relu, noisy, params = sample_run
    with Store.open(db, read_only=True) as st:
        res = analyze_run(st, run, "CIFAR10-valid")
    assert res.dataset == "cifar10-valid" and res.split == "valid"
    assert res.archs_with_truth == 724 and res.best_accuracy == max(truth.values())
    by = {m.metric: m for m in res.metrics}
    assert set(by) == {"relu_count", "noisy", "params"}

    def check(m, vals, hib) -> None:  # type: ignore[no-untyped-def]
        arch = [a for a in sorted(vals) if math.isfinite(vals[a])]
        x = np.array([vals[a] for a in arch])
        acc = np.array([truth[a] for a in arch])
        size = np.array([params[a] for a in arch], dtype=float)
        assert m.n == len(arch) and m.with_truth == 724 and m.excluded == 724 - len(arch)
        assert m.distinct_values == len(set(x.tolist())) and m.ties == m.n - m.distinct_values
        assert abs(m.kendall_tau_acc - stats.kendalltau(x, acc).statistic) <= TOL
        assert abs(m.spearman_acc - stats.spearmanr(x, acc).statistic) <= TOL
        assert abs(m.kendall_tau_size - stats.kendalltau(x, size).statistic) <= TOL
        assert abs(m.spearman_size - stats.spearmanr(x, size).statistic) <= TOL
        sign = 1 if hib else -1
        assert m.kendall_tau_acc_directed == pytest.approx(sign * m.kendall_tau_acc, abs=0)
        assert m.spearman_size_directed == pytest.approx(sign * m.spearman_size, abs=0)
        best = max(truth.values())
        for k in (1, 10, 100):
            mean, top_best, tie_n, take, lo, hi = _expected_topk(
                [sign * vals[a] for a in arch], [truth[a] for a in arch], k
            )
            assert getattr(m, f"top{k}_mean_acc") == pytest.approx(mean, abs=1e-9)
            assert getattr(m, f"top{k}_best_acc") == pytest.approx(top_best, abs=1e-9)
            assert getattr(m, f"top{k}_gap") == pytest.approx(best - top_best, abs=1e-9)
            assert getattr(m, f"top{k}_tie_n") == tie_n and getattr(m, f"top{k}_tie_take") == take
            assert getattr(m, f"top{k}_tie_min_acc") == lo
            assert getattr(m, f"top{k}_tie_max_acc") == hi

    check(by["relu_count"], relu, True)
    check(by["noisy"], noisy, True)
    check(by["params"], {a: float(p) for a, p in params.items()}, False)
    assert by["noisy"].excluded == 12 and by["relu_count"].excluded == 0
    assert by["params"].kendall_tau_size == pytest.approx(1.0, abs=1e-12)

    pairs = {(p.a, p.b): p for p in res.pairs}
    assert set(pairs) == {
        ("noisy", "params"),
        ("noisy", "relu_count"),
        ("params", "relu_count"),
        ("accuracy", "size"),
    }
    fin = [a for a in sorted(noisy) if math.isfinite(noisy[a])]
    p = pairs[("noisy", "relu_count")]
    assert p.n == len(fin)
    assert (
        abs(
            p.kendall_tau
            - stats.kendalltau([noisy[a] for a in fin], [relu[a] for a in fin]).statistic
        )
        <= TOL
    )
    a_s = pairs[("accuracy", "size")]
    xs = sorted(truth)
    assert (
        abs(
            a_s.kendall_tau
            - stats.kendalltau([truth[a] for a in xs], [params[a] for a in xs]).statistic
        )
        <= TOL
    )
    names, tau = res.tau_matrix(directed=False)
    assert names == ["noisy", "params", "relu_count", "accuracy", "size"]
    assert tau[0][3] == by["noisy"].kendall_tau_acc and tau[3][0] == tau[0][3]
    assert tau[3][4] == a_s.kendall_tau and tau[2][2] == 1.0
    # direction applied: params (lower is better) enters as -params
    names, dtau = res.tau_matrix()
    assert dtau[1][3] == -tau[1][3] and dtau[1][4] == pytest.approx(-1.0, abs=1e-12)
    assert dtau[1][2] == -tau[1][2] and dtau[0][2] == tau[0][2]  # two higher-is-better
    assert dtau[3][4] == tau[3][4]  # accuracy vs size: no metric, no flip


def test_no_truth_and_default_dataset(sample_run) -> None:
    db, run, *_ = sample_run
    with Store.open(db, read_only=True) as st:
        # sample truth has three datasets: the run's cifar10 shape picks cifar10-valid
        assert default_dataset(st, run) == "cifar10-valid"
        with pytest.raises(DataError, match="has ground truth for the test split.*truth sample"):
            default_dataset(st, run, "test")
        with pytest.raises(DataError, match="cifar10, valid split.*It has truth for"):
            analyze_run(st, run, "cifar10")
        with pytest.raises(UsageError, match="Unknown dataset"):
            analyze_run(st, run, "svhn")


def test_macros_work_read_only_from_sql_and_python(sample_run, runner) -> None:
    db, run, *_ = sample_run
    r = invoke(
        runner,
        "sql",
        f"SELECT metric, n, excluded FROM analysis_summary({run}, "
        "'cifar10-valid', 'valid') ORDER BY metric",
        "--db",
        str(db),
        "-f",
        "csv",
    )
    assert r.exit_code == 0, r.output
    assert r.stdout.splitlines() == [
        "metric,n,excluded",
        "noisy,712,12",
        "params,724,0",
        "relu_count,724,0",
    ]
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            f"SELECT k, k_used FROM analysis_topk({run}, 'CIFAR10-VALID', "
            "'valid') WHERE metric = 'noisy' ORDER BY k"
        ).fetchall()
        assert rows == [(1, 1), (10, 10), (100, 100)]
        cov = con.execute(f"SELECT dataset, archs FROM truth_coverage({run})").fetchall()
        expect = con.execute(
            "SELECT t.dataset, count(*) FROM truth t JOIN (SELECT DISTINCT arch FROM scores"
            f" WHERE run_id = {run}) s USING (arch) GROUP BY 1"
        ).fetchall()
        assert sorted(cov) == sorted(expect) and ("cifar10-valid", 724) in cov
    finally:
        con.close()


def _expected_topk(
    score: list[float], acc: list[float], k: int
) -> tuple[float, float, int, int, float, float]:
    """Top k by score (higher first) with the tie group at the cut taken at random:
    expected mean and best accuracy (exact, by counting: the best of a random t-subset
    of a group sorted x_1 <= ... <= x_g is x_i with probability C(i-1, t-1) / C(g, t)),
    group size, how many it gives, and its accuracy range. Written from the definition,
    independently of the SQL."""
    order = sorted(range(len(score)), key=lambda i: -score[i])
    k = min(k, len(order))
    cut = score[order[k - 1]]
    above = [acc[i] for i in order if score[i] > cut]
    tie = sorted(acc[i] for i in order if score[i] == cut)
    g, t = len(tie), k - len(above)
    mean = (sum(above) + t * sum(tie) / g) / k
    m_above = max(above) if above else -math.inf
    total = math.comb(g, t)
    best = sum(
        max(m_above, x) * math.comb(i - 1, t - 1) / total
        for i, x in enumerate(tie, start=1)
        if i >= t
    )
    return mean, best, g, t, tie[0], tie[-1]


def test_topk_reports_the_tie_group_at_the_cut(db: Path) -> None:
    """No arbitrary member of a tie: expectations over the group, checked against an
    enumeration of every possible choice, and the group's size and range."""
    from itertools import combinations

    from nasfilter.spaces import get_space

    tss = get_space("nats-tss")
    cells = [a for a, _ in zip(tss.enumerate(), range(14), strict=False)]
    #           3 tie at the top, 9 below (the cut of k = 10 falls inside), 2 last
    values = [5.0] * 3 + [4.0] * 9 + [1.0] * 2
    accs = [50.0, 60.0, 91.0, 70.0, 72.5, 10.0, 88.0, 66.0, 93.0, 71.0, 69.0, 40.0, 99.0, 1.0]
    with Store.open(db) as st:
        run = _make_run(
            st,
            "nats-tss",
            {"m": (True, dict(zip(cells, values, strict=True)))},
            {c: 1000 + i for i, c in enumerate(cells)},
        )
        b = TruthBatch()
        for c, acc in zip(cells, accs, strict=True):
            b.add(c, "cifar100", "valid", acc)
        write_truth(st, "import", "nats-tss", "t", {}, b)
        m = {x.metric: x for x in analyze_run(st, run, "cifar100").metrics}["m"]

    def enumerate_choices(k: int) -> tuple[float, float]:
        k = min(k, len(values))
        order = sorted(range(len(values)), key=lambda i: -values[i])
        cut = values[order[k - 1]]
        above = [i for i in order if values[i] > cut]
        tie = [i for i in order if values[i] == cut]
        means, bests = [], []
        for pick in combinations(tie, k - len(above)):
            chosen = [accs[i] for i in above + list(pick)]
            means.append(sum(chosen) / k)
            bests.append(max(chosen))
        return sum(means) / len(means), sum(bests) / len(bests)

    for k in (1, 10, 100):
        mean, best = enumerate_choices(k)
        assert getattr(m, f"top{k}_mean_acc") == pytest.approx(mean, abs=1e-9)
        assert getattr(m, f"top{k}_best_acc") == pytest.approx(best, abs=1e-9)
        assert getattr(m, f"top{k}_gap") == pytest.approx(99.0 - best, abs=1e-9)
        assert _expected_topk(values, accs, k)[:2] == pytest.approx((mean, best), abs=1e-9)
    assert (m.top1_tie_n, m.top1_tie_take) == (3, 1)
    assert (m.top1_tie_min_acc, m.top1_tie_max_acc) == (50.0, 91.0)
    assert m.top1_mean_acc == pytest.approx(67.0) and m.top1_best_acc == pytest.approx(67.0)
    assert (m.top10_tie_n, m.top10_tie_take) == (9, 7)
    assert (m.top10_tie_min_acc, m.top10_tie_max_acc) == (10.0, 93.0)
    assert (m.top100_tie_n, m.top100_tie_take) == (2, 2)  # all 14: the last group whole
    assert m.top100_mean_acc == pytest.approx(sum(accs) / 14) and m.top100_best_acc == 99.0


def test_direction_is_applied_alike_in_both_tables(runner, db: Path) -> None:
    """params is lower-is-better: its top-k lists the smallest networks, and its printed
    tau against size is -1 (it prefers small networks), not +1."""
    assert invoke(runner, "score", "nats-tss", "--n", "300", "--db", str(db)).exit_code == 0
    assert invoke(runner, "truth", "sample", "nats-tss", "--db", str(db)).exit_code == 0
    r = invoke(runner, "analyze", "--db", str(db), "-f", "json")
    out = json.loads(r.stdout)
    by = {m["metric"]: m for m in out["metrics"]}
    p, rc = by["params"], by["relu_count"]
    assert p["kendall_tau_size"] == pytest.approx(1.0) and p["kendall_tau_size_directed"] == (
        pytest.approx(-1.0)
    )
    assert p["kendall_tau_acc_directed"] == -p["kendall_tau_acc"] < 0
    assert rc["kendall_tau_acc_directed"] == rc["kendall_tau_acc"] > 0
    r = invoke(runner, "analyze", "--db", str(db))
    assert r.exit_code == 0, r.output
    row = next(ln for ln in r.stdout.splitlines() if ln.startswith("│ params "))
    cells = [c.strip() for c in row.strip("│").split("│")]
    assert cells[4] == f"{p['kendall_tau_acc_directed']:+.4f}" and cells[6] == "-1.0000"
    assert "direction applied" in r.stdout


def test_no_truth_hint_names_what_exists_for_the_space(runner, db: Path) -> None:
    assert invoke(runner, "score", "nats-sss", "--n", "5", "--db", str(db)).exit_code == 0
    assert invoke(runner, "truth", "sample", "nats-tss", "--db", str(db)).exit_code == 0  # TSS only
    r = invoke(runner, "analyze", "--db", str(db))
    assert r.exit_code == 4 and len(r.stderr.strip().splitlines()) == 1
    assert "truth load nats-sss" in r.stderr and "truth import" in r.stderr
    assert "truth sample" not in r.stderr


def test_split_defaults_to_what_is_loaded(db: Path, runner) -> None:
    cells = [
        "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|skip_connect~0|+|none~0|none~1|+|none~0|none~1|none~2|",
        "|nor_conv_1x1~0|+|none~0|none~1|+|none~0|none~1|none~2|",
    ]
    with Store.open(db) as st:
        _make_run(
            st,
            "nats-tss",
            {"m": (True, dict(zip(cells, (1.0, 2.0, 3.0), strict=True)))},
            {c: 100 for c in cells},
        )
        b = TruthBatch()
        for c, acc in zip(cells, (50.0, 60.0, 70.0), strict=True):
            b.add(c, "cifar10", "test", acc)
        write_truth(st, "import", "nats-tss", "t", {}, b)
    r = invoke(runner, "analyze", "--db", str(db), "-f", "json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert (out["dataset"], out["split"]) == ("cifar10", "test")
    r = invoke(runner, "analyze", "--db", str(db))
    assert r.exit_code == 0 and "split: test" in r.stderr
    r = invoke(runner, "analyze", "--db", str(db), "--split", "valid")
    assert r.exit_code == 4 and "valid split" in r.stderr
    with Store.open(db) as st:  # with both splits loaded, valid is the default
        b = TruthBatch()
        b.add(cells[0], "cifar10-valid", "valid", 55.0)
        write_truth(st, "import", "nats-tss", "t", {}, b)
    out = json.loads(invoke(runner, "analyze", "--db", str(db), "-f", "json").stdout)
    assert (out["dataset"], out["split"]) == ("cifar10-valid", "valid")


# -- the CLI end to end ----------------------------------------------------------------------------


def test_cli_score_sample_analyze(runner, db: Path, tmp_path: Path) -> None:
    r = invoke(runner, "score", "nats-tss", "--n", "200", "--db", str(db))
    assert r.exit_code == 0, r.output
    r = invoke(runner, "analyze", "--db", str(db))
    assert r.exit_code == 4
    assert "has ground truth" in r.stderr and "nasfilter truth sample" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = invoke(runner, "truth", "sample", "nats-tss", "--db", str(db))
    assert r.exit_code == 0

    r = invoke(
        runner,
        "analyze",
        "--db",
        str(db),
        "--run",
        "1",
        "--dataset",
        "ImageNet16-120",
        "-f",
        "json",
        "--plot",
        str(tmp_path / "figs"),
        "--show-sql",
    )
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["run_id"] == 1 and out["dataset"] == "ImageNet16-120" and out["split"] == "valid"
    with Store.open(db, read_only=True) as st:
        n_truth = st.con.execute(
            "SELECT count(DISTINCT s.arch) FROM scores s JOIN truth t ON t.arch = s.arch"
            " AND t.dataset = 'ImageNet16-120' WHERE s.run_id = 1"
        ).fetchone()[0]
    assert out["archs_with_truth"] == n_truth > 0
    metrics = {m["metric"]: m for m in out["metrics"]}
    assert set(metrics) == {"relu_count", "params", "flops", "size_kb"}
    for m in metrics.values():
        for key in (
            "n",
            "ties",
            "kendall_tau_acc",
            "spearman_acc",
            "kendall_tau_size",
            "spearman_size",
            "top1_mean_acc",
            "top10_best_acc",
            "top100_gap",
        ):
            assert key in m
        assert m["n"] == n_truth
    assert metrics["params"]["kendall_tau_size"] == pytest.approx(1.0, abs=1e-12)
    assert {(p["a"], p["b"]) for p in out["pairs"]} >= {("flops", "params"), ("accuracy", "size")}
    assert "analysis_summary(1, 'ImageNet16-120', 'valid')" in r.stderr
    pngs = sorted(Path(p).name for p in out["plots"])
    assert len(pngs) == 5 and "run1_ImageNet16-120_valid_tau_heatmap.png" in pngs
    for p in out["plots"]:
        assert Path(p).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # default dataset (cifar10 shape -> cifar10-valid), table and csv
    r = invoke(runner, "analyze", "--db", str(db))
    assert r.exit_code == 0 and "Kendall tau-b" in r.stdout and "cifar10-valid" in r.stderr
    r = invoke(runner, "analyze", "--db", str(db), "-f", "csv", "-d", "cifar100")
    lines = r.stdout.splitlines()
    assert lines[0].startswith("metric,higher_is_better,with_truth,n,excluded")
    assert len(lines) == 5
    r = invoke(runner, "analyze", "--db", str(db), "-d", "mnist")
    assert r.exit_code == 2 and "Unknown dataset" in r.stderr
    r = invoke(runner, "analyze", "--db", str(db), "--split", "test")
    assert r.exit_code == 4 and "test split" in r.stderr


def test_log_axis_only_for_positive_values_spanning_two_decades() -> None:
    from nasfilter.analysis.plots import log_axis

    assert log_axis([1.0, 1000.0]) and log_axis([0.001, 0.5])
    assert not log_axis([1.0, 50.0]) and not log_axis([0.0, 1000.0])
    assert not log_axis([-5.0, 1000.0]) and not log_axis([])


def test_analyze_states_what_each_metric_was_computed_from(runner, db: Path) -> None:  # type: ignore[no-untyped-def]
    """Issue 10: every metric's τ comes with its data source (synthetic vs real images,
    data-free networks, the identity)."""
    import csv as _csv

    sample = Path(__file__).resolve().parents[1] / "nasfilter" / "sample_data" / "nb201_sample.csv"
    archs = [r["arch_str"] for r in _csv.DictReader(open(sample)) if r["dataset"] == "cifar10"]
    f = db.parent / "archs.txt"
    f.write_text("\n".join(archs[:12]))
    assert invoke(runner, "truth", "sample", "nats-tss", "--db", str(db)).exit_code == 0
    r = invoke(runner, "score", "nats-tss", "--archs", str(f), "--metrics",
               "relu_count,naswot,synflow", "--data", "synthetic", "-K", "8",
               "--db", str(db))  # fmt: skip
    assert r.exit_code == 0, r.output
    r = invoke(runner, "analyze", "--db", str(db), "-f", "json")
    by = {m["metric"]: m["inputs"] for m in json.loads(r.stdout)["metrics"]}
    assert by == {
        "relu_count": "identity", "params": "identity", "size_kb": "identity",
        "naswot": "synthetic images", "synflow": "data-free network",
    }  # fmt: skip
