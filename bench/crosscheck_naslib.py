"""Cross-check of the data-free proxies against NASLib's values on the shipped
NAS-Bench-201 sample (issue 10). Prints each figure beside NASLib's.

    python bench/crosscheck_naslib.py [--dataset cifar10] [--n 0] [--batch-size 64]
        [--metrics synflow,l2_norm,zen,meco,linear_regions,az_expressivity,
                   az_progressivity,az_trainability] [--seed 0] [--out FILE.csv]

For every cell of ``nasfilter/sample_data/nb201_sample.csv`` with ``--dataset`` (724
CIFAR-10 cells; ``--n N``: the first N), nasfilter builds the network once at that
dataset's shape (``torch.manual_seed(arch_seed)``, ``space.build``) and computes the
data-free proxies through ``ArchState``/``compute_score`` (the engine's call), without any
image batch (these metrics make their own inputs; K = ``--batch-size`` for the Gaussian
ones). Then, on the same cells:

- Spearman ρ and Kendall τ-b of each metric with NASLib's ``val_accuracy``, beside the
  same statistics of NASLib's own value of that proxy (``synflow``, ``l2_norm``), and the
  check |ρ_nasfilter - ρ_NASLib| <= 0.03;
- Spearman ρ and Kendall τ between nasfilter's and NASLib's per-architecture values.

NASLib's synflow is the natural log of the synflow sum, and 0 where the sum is 0 (its
``zerocost.py``); nasfilter stores ln as well and -inf for a zero sum. Ranks: -inf and
NASLib's 0 are both below every other value, so "all cells" ranks them alike; "finite"
leaves those cells out of both. NASLib computed its values on its own network code and
initialisation (NASLib's NAS-Bench-201 graph, its own random weights): per-architecture
values are not expected to be equal, only to rank alike.

``--out`` writes one row per cell (arch, accuracy, NASLib's values, nasfilter's values).
"""

from __future__ import annotations

import argparse
import csv
import math
import time
from pathlib import Path

SAMPLE = Path(__file__).resolve().parents[1] / "nasfilter" / "sample_data" / "nb201_sample.csv"
DEFAULT = "synflow,l2_norm,zen,meco,linear_regions,az_expressivity,az_progressivity,az_trainability"
NASLIB = {"synflow": "synflow", "l2_norm": "l2_norm"}
SHAPES = {"cifar10": "cifar10", "cifar100": "cifar100", "ImageNet16-120": "imagenet16-120"}
TOLERANCE = 0.03


def stats(a: list[float], b: list[float]) -> tuple[float, float, int]:
    """(Spearman ρ, Kendall τ-b, n) over the pairs where both are not NaN (±inf kept)."""
    from scipy.stats import kendalltau, spearmanr

    pairs = [(x, y) for x, y in zip(a, b, strict=True) if not (math.isnan(x) or math.isnan(y))]
    if len(pairs) < 3:
        return math.nan, math.nan, len(pairs)
    xs, ys = zip(*pairs, strict=True)
    return float(spearmanr(xs, ys)[0]), float(kendalltau(xs, ys)[0]), len(pairs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="cifar10", choices=sorted(SHAPES))
    ap.add_argument("--n", type=int, default=0, help="first N cells (0: all)")
    ap.add_argument("--batch-size", "-K", type=int, default=64)
    ap.add_argument("--metrics", default=DEFAULT)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()

    import torch

    from nasfilter.datasets import get_shape
    from nasfilter.engine import arch_seed
    from nasfilter.metrics import get_metric
    from nasfilter.metrics.inputs import ArchState, compute_score
    from nasfilter.metrics.registry import ScoreContext
    from nasfilter.spaces import get_space

    if args.threads:
        torch.set_num_threads(args.threads)
    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    metrics = [get_metric(n) for n in names]
    for m in metrics:
        if m.needs_data or m.needs_labels:
            raise SystemExit(f"{m.name} reads the batch: not a data-free metric")
    with SAMPLE.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["dataset"] == args.dataset]
    if args.n:
        rows = rows[: args.n]
    space, shape = get_space("nats-tss"), get_shape(SHAPES[args.dataset])
    ours: dict[str, list[float]] = {n: [] for n in names}
    statuses: dict[str, dict[str, int]] = {n: {} for n in names}
    seconds: dict[str, float] = {n: 0.0 for n in names}
    t0 = time.perf_counter()
    for i, row in enumerate(rows):
        seed = arch_seed(args.seed, row["arch_str"])
        torch.manual_seed(seed)
        net = space.build(row["arch_str"], shape)
        st = ArchState(
            net,
            shape=shape,
            batch_size=args.batch_size,
            device=torch.device("cpu"),
            seed=seed,
            ctx=ScoreContext(dataset=shape),
        )
        for m in metrics:
            t = time.perf_counter()
            s = compute_score(m, st)
            seconds[m.name] += time.perf_counter() - t
            ours[m.name].append(s.value)
            statuses[m.name][s.status] = statuses[m.name].get(s.status, 0) + 1
        if (i + 1) % 50 == 0 or i + 1 == len(rows):
            print(f"  {i + 1}/{len(rows)} cells, {time.perf_counter() - t0:.0f} s", flush=True)

    acc = [float(r["val_accuracy"]) for r in rows]
    print()
    print(
        f"{len(rows)} NAS-Bench-201 cells ({args.dataset}), nasfilter seed {args.seed}, "
        f"K = {args.batch_size} for Gaussian inputs; statistics against val_accuracy"
    )
    print(
        f"{'metric':<17} {'cells':>5} {'ρ ours':>8} {'ρ NASLib':>9} {'|Δρ|':>6} {'check':>6} "
        f"{'τ ours':>7} {'τ NASLib':>9} {'ρ ours~NASLib':>14} {'τ ours~NASLib':>14}  statuses"
    )
    for n in names:
        v = ours[n]
        st_txt = ", ".join(f"{k}: {c}" for k, c in sorted(statuses[n].items()))
        rho, tau, cnt = stats(v, acc)
        if n in NASLIB:
            ref = [float(r[NASLIB[n]]) for r in rows]
            if n == "synflow":  # NASLib's 0 for a zero sum is our -inf: rank both lowest
                ref = [-math.inf if x == 0.0 else x for x in ref]
            variants = [("all", v, ref)]
            fin = [i for i in range(len(v)) if math.isfinite(v[i]) and math.isfinite(ref[i])]
            if len(fin) < len(v):
                variants.append(("finite", [v[i] for i in fin], [ref[i] for i in fin]))
            for label, vv, rr in variants:
                aa = acc if label == "all" else [acc[i] for i in fin]
                rho, tau, cnt = stats(vv, aa)
                rho_n, tau_n, _ = stats(rr, aa)
                rho_x, tau_x, _ = stats(vv, rr)
                d = abs(rho - rho_n)
                print(
                    f"{n + ('' if label == 'all' else ' (finite)'):<17} {cnt:>5} {rho:8.3f} "
                    f"{rho_n:9.3f} {d:6.3f} {'ok' if d <= TOLERANCE else 'FAIL':>6} "
                    f"{tau:7.3f} {tau_n:9.3f} {rho_x:14.3f} {tau_x:14.3f}  {st_txt}"
                )
        else:
            print(
                f"{n:<17} {cnt:>5} {rho:8.3f} {'-':>9} {'-':>6} {'-':>6} {tau:7.3f} "
                f"{'-':>9} {'-':>14} {'-':>14}  {st_txt}"
            )
    for col in ("params", "flops"):
        rho, tau, cnt = stats([float(r[col]) for r in rows], acc)
        label = "NASLib " + col
        print(f"{label:<17} {cnt:>5} {'-':>8} {rho:9.3f} {'':>13} {'-':>7} {tau:9.3f}")
    print()
    print("seconds per cell: " + ", ".join(f"{n} {seconds[n] / len(rows):.3f}" for n in names))
    if args.out:
        with args.out.open("w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["arch_str", "val_accuracy", *[f"naslib_{c}" for c in NASLIB], *names])
            for i, r in enumerate(rows):
                w.writerow(
                    [r["arch_str"], r["val_accuracy"], *[r[c] for c in NASLIB.values()]]
                    + [ours[n][i] for n in names]
                )


if __name__ == "__main__":
    main()
