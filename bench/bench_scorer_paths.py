"""How the Scorer's per-architecture paths cost on the CPU. Prints each figure beside its
baseline, measured in the same run on the same architectures.

    python bench/bench_scorer_paths.py [--n 30] [--threads 2]

Two choices of ``nasfilter.scoring.scorer.Scorer`` are timed, each against the
alternative it replaced (wall ms per architecture over ``--n`` seeded NATS-TSS cells,
CIFAR-10 shape, after one warm-up architecture; ``Scorer.map``, as the engine calls it):

1. building networks in turn on the CPU (``prefetch`` off, the default there) against a
   background build thread one architecture ahead (``prefetch`` on, the accelerator
   default), for ``ensemble_free`` at K = 16 and NASWOT at K = 128 (synthetic batch);
2. lending the pristine network to a ``fresh_network`` metric (``lend`` on, the default)
   against a deep copy per architecture (``lend`` off), for ``ensemble_free`` at K = 16.

Every variant must store the same values (checked: 'values equal').
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any


def run(metric: str, k: int, archs: list[str], **attrs: Any) -> tuple[float, list[Any]]:
    from nasfilter.scoring.scorer import Scorer
    from nasfilter.scoring.settings import RunSettings

    data = "synthetic" if metric == "naswot" else None
    s = RunSettings.make("nats-tss", metric, batch_size=k, device="cpu", data=data)
    with Scorer(s) as sc:
        for name, value in attrs.items():
            setattr(sc, name, value)
        sc.score(archs[0])  # warm-up
        t = time.perf_counter()
        rows = [[(n, v, st) for n, v, st, _ in r.rows] for r in sc.map(enumerate(archs))]
        return (time.perf_counter() - t) / len(archs), rows


def same(a: list[Any], b: list[Any]) -> bool:
    def key(v: float) -> Any:
        return "nan" if isinstance(v, float) and math.isnan(v) else v

    return [[(n, key(v), s) for n, v, s in r] for r in a] == [
        [(n, key(v), s) for n, v, s in r] for r in b
    ]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()

    import torch

    from nasfilter.spaces import get_space

    torch.set_num_threads(args.threads)
    sp = get_space("nats-tss")
    archs = [sp.unrank(int(i)) for i in sp.sample_indices(args.n, 0)]
    print(
        f"bench_scorer_paths: {len(archs)} nats-tss cells (seed 0), CPU, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    print("1. building networks: in turn (CPU default) vs a build thread one ahead")
    for metric, k in (("ensemble_free", 16), ("naswot", 128)):
        t_in, v_in = run(metric, k, archs, prefetch=False)
        t_th, v_th = run(metric, k, archs, prefetch=True)
        print(
            f"   {metric:<14} K = {k:<3}  in turn {1e3 * t_in:7.1f} ms/arch   "
            f"build thread {1e3 * t_th:7.1f} ms/arch   ratio {t_th / t_in:.2f}x   "
            f"values equal: {same(v_in, v_th)}"
        )
    print("2. fresh_network metrics: the pristine network lent vs a deep copy")
    t_lend, v_lend = run("ensemble_free", 16, archs, lend=True)
    t_copy, v_copy = run("ensemble_free", 16, archs, lend=False)
    print(
        f"   ensemble_free  K = 16   lent    {1e3 * t_lend:7.1f} ms/arch   "
        f"deep copy    {1e3 * t_copy:7.1f} ms/arch   ratio {t_copy / t_lend:.2f}x   "
        f"values equal: {same(v_lend, v_copy)}"
    )


if __name__ == "__main__":
    main()
