"""Search benchmarks (issue 5). Prints each figure beside its baseline.

    python bench/bench_search.py [--n 1000] [--b-n 724] [--batch-size 128] [--data synthetic]
                                 [--data-dir DIR] [--device auto] [--skip-a] [--skip-b]

(a) ``random`` search with relu_count against NASWOT at N (default 1000) on the same
    architectures (same seed), in the same process, reuse off: wall time of the scoring
    (measured) and the sum of the stored per-architecture seconds, their ratio and the
    time saved. Baseline: the dissertation reports a speed-up of at most 52%.
(b) ``two-stage`` (relu_count on all, NASWOT on the top 10%) against plain NASWOT on the
    shipped CIFAR-10 sample as the population (N = 724, cifar10-valid validation accuracy):
    time and the chosen architecture's accuracy. Baselines: the best and the mean accuracy
    of the population, and relu_count alone. The two-stage search reuses the NASWOT scores
    plain NASWOT just stored (its NASWOT time is their summed per-architecture seconds)
    unless --no-reuse.

(c) ``evolution`` against ``random`` search with relu_count at the same N (default 1000),
    one repeat each, in the same process, reuse off (issue 9's target: evolution within 3x
    of random). Before the scorer seam, evolution went through a full engine round trip per
    child (~40 s at N = 1000 against ~1 s for random).
(d) the tie-break rule of random search with relu_count on the shipped CIFAR-10 sample as
    the population (cifar10-valid validation accuracy): mean ± std accuracy of the choice
    over --d-repeats repeats (default 50) for each rule (first, smallest, largest) and each
    N of --d-ns (default 100, 500, 724 = the whole population: N = 1000 does not fit the
    724 architectures of the sample). Baseline: the population's mean and best accuracy.

Inputs are synthetic (seeded Gaussian images) unless --data cifar10 --data-dir DIR is given;
the output says which.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def _search(store, **kw):  # type: ignore[no-untyped-def]
    from nasfilter.search import SearchRequest, run_search

    t = time.perf_counter()
    res = run_search(store, SearchRequest(**kw))
    return res, time.perf_counter() - t


def bench_a(args: argparse.Namespace, db: Path) -> None:
    from nasfilter.store import Store

    data = args.data or "synthetic"
    print(
        f"(a) random search, {args.space}, N={args.n}, 1 repeat, seed {args.seed}; NASWOT "
        f"on {data} inputs, K={args.batch_size}, device {args.device}; reuse off"
    )
    with Store.open(db) as store:
        relu, relu_wall = _search(
            store,
            space=args.space,
            algo="random",
            n=args.n,
            repeats=1,
            metric="relu_count",
            seed=args.seed,
            reuse=False,
        )
        nw, nw_wall = _search(
            store,
            space=args.space,
            algo="random",
            n=args.n,
            repeats=1,
            metric="naswot",
            seed=args.seed,
            data=data,
            data_dir=args.data_dir,
            batch_size=args.batch_size,
            device=args.device,
            reuse=False,
        )
        same = store.con.execute(
            "SELECT count(*) FROM (SELECT arch FROM search_candidates WHERE run_id = ? "
            "INTERSECT SELECT arch FROM search_candidates WHERE run_id = ?)",
            [relu.run_id, nw.run_id],
        ).fetchone()[0]
    r, w = relu.repeats[0], nw.repeats[0]
    print(f"    same architectures in both searches: {same} of {args.n}")
    for name, x, wall in (("relu_count", r, relu_wall), ("naswot", w, nw_wall)):
        print(
            f"    {name:<10}  search time {x.seconds:10.4f} s ({x.time_source}; whole "
            f"run_search call {wall:.3f} s)  Σ per-arch scoring {x.score_seconds:10.5f} s  "
            f"choice {x.size_kb:.1f} kB"
        )
    print(
        f"    NASWOT / relu_count: x{w.seconds / r.seconds:,.0f} (search time), "
        f"x{w.score_seconds / r.score_seconds:,.0f} (Σ per-arch scoring)"
    )
    print(
        f"    time saved by relu_count: {100 * (w.seconds - r.seconds) / w.seconds:.3f}% "
        f"(search time), {100 * (w.score_seconds - r.score_seconds) / w.score_seconds:.4f}%"
        " (Σ per-arch)"
    )
    print(
        "    baseline: the dissertation reports a speed-up of at most 52% for relu_count over "
        "NASWOT"
    )


def bench_b(args: argparse.Namespace, db: Path) -> None:
    from nasfilter.store import Store
    from nasfilter.truth import accuracy_of
    from nasfilter.truth.table import load_sample

    data = args.data or "synthetic"
    with Store.open(db) as store:
        load_sample(store)
        acc = accuracy_of(store, "nats-tss", "cifar10-valid", "valid")
        n = min(args.b_n, len(acc)) if args.b_n else len(acc)
        print(
            f"(b) two-stage vs plain NASWOT on the shipped CIFAR-10 sample: population = the "
            f"{len(acc)} architectures with cifar10-valid validation accuracy, N={n}"
            + (" (the whole population)" if n == len(acc) else f" (seed {args.seed})")
            + ", 1 repeat; "
            f"NASWOT on {data} inputs"
            + (" (no CIFAR-10 given)" if data == "synthetic" else "")
            + f", K={args.batch_size}, device {args.device}"
        )
        common = dict(
            space="nats-tss",
            algo="random",
            n=n,
            repeats=1,
            seed=args.seed,
            dataset="cifar10-valid",
            population="truth",
        )
        nw_kw = dict(
            data=data, data_dir=args.data_dir, batch_size=args.batch_size, device=args.device
        )
        plain, plain_wall = _search(store, **common, metric="naswot", **nw_kw, reuse=False)
        two, two_wall = _search(
            store,
            **{**common, "algo": "two-stage"},
            metric="naswot",
            keep=0.1,
            **nw_kw,
            reuse=not args.no_reuse,
        )
        relu, relu_wall = _search(store, **common, metric="relu_count", reuse=False)
        store_archs = [
            a
            for (a,) in store.con.execute(
                "SELECT arch FROM search_candidates WHERE run_id = ?", [plain.run_id]
            ).fetchall()
        ]
    best = max(acc.values())
    mean = sum(acc.values()) / len(acc)
    p, t, r = plain.repeats[0], two.repeats[0], relu.repeats[0]
    keep = two.settings["keep"]
    print(f"    baseline: best accuracy in the population {best:.2f}%, mean {mean:.2f}%")
    if n < len(acc):
        sampled = [acc[a] for a in store_archs]
        print(
            f"    baseline: best accuracy among the {n} sampled {max(sampled):.2f}%, "
            f"mean {sum(sampled) / n:.2f}%"
        )
    rows = (
        ("plain NASWOT", p, f"NASWOT on all {n}"),
        ("two-stage", t, f"relu_count on {n}, NASWOT on the top {keep}"),
        ("relu_count only", r, f"relu_count on {n}"),
    )
    for name, x, what in rows:
        print(
            f"    {name:<15} accuracy {x.accuracy:6.2f}%  size {x.size_kb:7.1f} kB  time "
            f"{x.seconds:9.3f} s ({x.time_source}: measured {x.measured_seconds:.3f} s + "
            f"summed {x.summed_seconds:.3f} s)  [{what}]"
        )
    print(
        f"    two-stage / plain NASWOT time: {t.seconds / p.seconds:.3f} "
        f"(time saved {100 * (p.seconds - t.seconds) / p.seconds:.1f}%); accuracy "
        f"{t.accuracy - p.accuracy:+.2f} points"
    )
    print(
        f"    wall of the run_search calls: plain {plain_wall:.1f} s, two-stage "
        f"{two_wall:.1f} s, relu_count {relu_wall:.2f} s"
    )


def bench_c(args: argparse.Namespace, db: Path) -> None:
    from nasfilter.store import Store

    print(
        f"(c) evolution vs random search, {args.space}, relu_count, N={args.n}, 1 repeat, reuse off"
    )
    with Store.open(db) as store:
        rnd, rnd_wall = _search(
            store, space=args.space, algo="random", n=args.n, repeats=1, seed=args.seed,
            reuse=False,
        )  # fmt: skip
        evo, evo_wall = _search(
            store, space=args.space, algo="evolution", n=args.n, repeats=1, seed=args.seed,
            reuse=False,
        )  # fmt: skip
    print(
        f"    random     run_search {rnd_wall:8.3f} s  (repeat time {rnd.repeats[0].seconds:.3f} s)"
    )
    print(
        f"    evolution  run_search {evo_wall:8.3f} s  (repeat time {evo.repeats[0].seconds:.3f} s)"
    )
    print(
        f"    evolution / random: x{evo_wall / rnd_wall:.2f} (target: at most x3; before the "
        "scorer seam ~40 s vs ~1 s, x40)"
    )


def bench_d(args: argparse.Namespace, db: Path) -> None:
    import statistics

    from nasfilter.store import Store
    from nasfilter.truth import accuracy_of
    from nasfilter.truth.table import load_sample

    ns = [int(x) for x in args.d_ns.split(",")]
    with Store.open(db) as store:
        load_sample(store)
        acc = accuracy_of(store, "nats-tss", "cifar10-valid", "valid")
        vals = list(acc.values())
        print(
            f"(d) random search by relu_count on the shipped sample ({len(acc)} architectures "
            f"with cifar10-valid validation accuracy), {args.d_repeats} repeats per cell, "
            f"seed {args.seed}: accuracy of the choice (%), mean ± std [min, max]"
        )
        print(f"    baseline: population mean {statistics.mean(vals):.2f}%, best {max(vals):.2f}%")
        for n in ns:
            n = min(n, len(acc))
            for rule in ("first", "smallest", "largest"):
                res, wall = _search(
                    store, space="nats-tss", algo="random", n=n, repeats=args.d_repeats,
                    seed=args.seed, dataset="cifar10-valid", population="truth",
                    tie_break=rule,
                )  # fmt: skip
                a = [r.accuracy for r in res.repeats]
                print(
                    f"    N={n:<4} --tie-break {rule:<8}  {statistics.mean(a):6.2f} ± "
                    f"{statistics.stdev(a):4.2f}  [{min(a):.2f}, {max(a):.2f}]  "
                    f"(search run {res.run_id}, {wall:.1f} s)"
                )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1000, help="N of benchmark (a)")
    ap.add_argument("--space", default="nats-tss", help="space of benchmark (a)")
    ap.add_argument(
        "--b-n", type=int, default=None, help="N of benchmark (b) (default: the whole sample, 724)"
    )
    ap.add_argument("--batch-size", type=int, default=128)
    ap.add_argument("--data", default=None, help="NASWOT inputs (default: synthetic)")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--no-reuse",
        action="store_true",
        help="(b): score NASWOT again for "
        "two-stage instead of reusing plain NASWOT's stored scores",
    )
    ap.add_argument("--d-repeats", type=int, default=50, help="repeats of benchmark (d)")
    ap.add_argument("--d-ns", default="100,500,724", help="N of benchmark (d)")
    ap.add_argument("--skip-a", action="store_true")
    ap.add_argument("--skip-b", action="store_true")
    ap.add_argument("--skip-c", action="store_true")
    ap.add_argument("--skip-d", action="store_true")
    args = ap.parse_args(argv)
    print(f"nasfilter bench_search: {' '.join(sys.argv[1:]) or '(defaults)'}")
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as d:
        if not args.skip_a:
            bench_a(args, Path(d) / "a.duckdb")
        if not args.skip_b:
            bench_b(args, Path(d) / "b.duckdb")
        if not args.skip_c:
            bench_c(args, Path(d) / "c.duckdb")
        if not args.skip_d:
            bench_d(args, Path(d) / "d.duckdb")
    print(f"total {time.perf_counter() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
