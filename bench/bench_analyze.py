"""Benchmark: `analyze` over a full space, against scipy on the same data.

Scores every architecture of a space (default nats-sss: 32,768) with the default analytic
metrics, gives each one a synthetic accuracy (a noisy function of its params, rounded to
0.01 % so that it has ties, as real accuracies do), then times

- nasfilter's analysis (``analyze_run``: the SQL macros of migration 003), and
- the baseline: ``scipy.stats.kendalltau`` (tau-b) and ``spearmanr`` for the same pairs,
  in the same process, on the same data read back from the store,

and prints both times and the largest difference between the two sets of numbers.

    python bench/bench_analyze.py [--space nats-sss] [--n N] [--repeat 3]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import sys
import tempfile
import time
from pathlib import Path


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="nats-sss")
    ap.add_argument("--n", type=int, default=None, help="architectures (default: all)")
    ap.add_argument("--repeat", type=int, default=3, help="timed repetitions (best is shown)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import duckdb
    import numpy as np
    import scipy
    from scipy import stats

    from nasfilter import engine
    from nasfilter.analysis.correlation import analyze_run
    from nasfilter.spaces import get_space
    from nasfilter.store import Store
    from nasfilter.truth import TruthBatch, write_truth

    space = get_space(args.space)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.duckdb"
        store = Store.open(db)
        t0 = time.perf_counter()
        req = engine.ScoreRequest(space=space.name, n=args.n, all=args.n is None, seed=args.seed)
        run_id = engine.start(store, req, command="bench_analyze")
        summary = engine.execute(store, run_id)
        t_score = time.perf_counter() - t0

        # synthetic truth: accuracy rises with log params, plus noise; 0.01 % resolution
        rng = np.random.default_rng(args.seed)
        archs, params = zip(
            *store.con.execute(
                "SELECT arch, value FROM scores WHERE run_id = ? AND metric = 'params'"
                " ORDER BY arch",
                [run_id],
            ).fetchall(),
            strict=True,
        )
        lp = np.log(np.asarray(params, dtype=float))
        acc = np.round(60 + 5 * (lp - lp.mean()) / lp.std() + rng.normal(0, 4, len(lp)), 2)
        acc = np.clip(acc, 0, 100)
        batch = TruthBatch()
        for a, v in zip(archs, acc, strict=True):
            batch.add(a, "cifar10-valid", "valid", float(v))
        write_truth(store, "import", space.name, "bench-synthetic", {"synthetic": True}, batch)

        # nasfilter: best of --repeat
        t_ours = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            res = analyze_run(store, run_id, "cifar10-valid", "valid")
            t_ours.append(time.perf_counter() - t)

        # baseline: scipy on the same data, same pairs
        rows = store.con.execute(
            "SELECT s.metric, s.arch, s.value, t.accuracy FROM scores s JOIN truth t "
            "ON t.arch = s.arch AND t.space = ? AND t.dataset = 'cifar10-valid' "
            "AND t.split = 'valid' WHERE s.run_id = ? ORDER BY s.metric, s.arch",
            [space.name, run_id],
        ).fetchall()
        data: dict[str, dict[str, float]] = {}
        truth: dict[str, float] = {}
        for m, a, v, y in rows:
            data.setdefault(m, {})[a] = v
            truth[a] = y
        order = sorted(truth)
        cols = {m: np.array([d[a] for a in order]) for m, d in data.items()}
        cols["accuracy"] = np.array([truth[a] for a in order])
        cols["size"] = cols["params"]
        pairs = [(m, "accuracy") for m in data] + [(m, "size") for m in data]
        names = sorted(data)
        pairs += [(a, b) for i, a in enumerate(names) for b in names[i + 1 :]]
        pairs += [("accuracy", "size")]
        t_base = []
        for _ in range(args.repeat):
            t = time.perf_counter()
            ref = {}
            for a, b in pairs:
                x, y = cols[a], cols[b]
                ok = np.isfinite(x) & np.isfinite(y)
                ref[(a, b)] = (
                    stats.kendalltau(x[ok], y[ok]).statistic,
                    stats.spearmanr(x[ok], y[ok]).statistic,
                )
            t_base.append(time.perf_counter() - t)

        ours = {}
        for m in res.metrics:
            ours[(m.metric, "accuracy")] = (m.kendall_tau_acc, m.spearman_acc)
            ours[(m.metric, "size")] = (m.kendall_tau_size, m.spearman_size)
        for p in res.pairs:
            ours[(p.a, p.b)] = (p.kendall_tau, p.spearman_rho)
        dtau = max(abs(ours[k][0] - ref[k][0]) for k in ref if not math.isnan(ref[k][0]))
        drho = max(abs(ours[k][1] - ref[k][1]) for k in ref if not math.isnan(ref[k][1]))
        store.close()

    n = len(order)
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} CPUs, Python "
        f"{platform.python_version()}, duckdb {duckdb.__version__}, scipy {scipy.__version__}"
    )
    print(
        f"space {space.name}: {n:,} architectures scored ({summary.rows:,} rows) in "
        f"{t_score:.1f} s; metrics: {', '.join(names)}"
    )
    print(f"correlations per analysis: {len(pairs)} (tau-b and rho each), plus top-k")
    print(
        f"nasfilter analyze_run (SQL): {min(t_ours):.3f} s  (best of {args.repeat}; "
        f"all: {', '.join(f'{t:.3f}' for t in t_ours)})"
    )
    print(
        f"scipy kendalltau+spearmanr : {min(t_base):.3f} s  (best of {args.repeat}; "
        f"same pairs, same data, no top-k)"
    )
    print(f"max |tau_sql - tau_scipy| = {dtau:.2e}, max |rho_sql - rho_scipy| = {drho:.2e}")
    return 0 if dtau < 1e-9 and drho < 1e-9 else 1


if __name__ == "__main__":
    sys.exit(main())
