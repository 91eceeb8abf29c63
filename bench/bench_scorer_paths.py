"""How the Scorer's per-architecture paths cost on the CPU. Prints each figure beside its
baseline, measured in the same run on the same architectures.

    python bench/bench_scorer_paths.py [--n 30] [--threads 2] [--parts 1,2,3,4]

Two choices of ``nasfilter.scoring.scorer.Scorer`` are timed, each against the
alternative it replaced (wall ms per architecture over ``--n`` seeded NATS-TSS cells,
CIFAR-10 shape, after one warm-up architecture; ``Scorer.map``, as the engine calls it):

1. building networks in turn on the CPU (``prefetch`` off, the default there) against a
   background build thread one architecture ahead (``prefetch`` on, the accelerator
   default), for ``ensemble_free`` at K = 16 and NASWOT at K = 128 (synthetic batch);
2. lending the pristine network to a ``fresh_network`` metric (``lend`` on, the default)
   against a deep copy per architecture (``lend`` off), for ``ensemble_free`` at K = 16.

Two ways the proxies compute, each against the form it replaced (the metric alone, as the
Scorer calls it, on each cell's channels-last network lent to it; K = 16, CIFAR-10
shape; ms per architecture):

3. MeCo's ~175 correlation spectra per cell batched by shape (``min_corr_eigs`` over all
   maps at the end) against one map at a time (``meco._PENDING_BYTES = 0``: every map's
   spectrum as soon as its hook has it, the reference's way);
4. AZ-NAS: one backward pass over cells whose graphs are kept separate against one
   backward pass per cell (the same network seen through ``extract_cell_features``,
   which takes the per-cell path); spectra and SVDs batched in both.

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


def proxy_forms(archs: list[str]) -> None:
    import torch
    from torch import nn

    from nasfilter.datasets import get_shape
    from nasfilter.metrics import get_metric
    from nasfilter.metrics.inputs import ArchState, compute_score
    from nasfilter.metrics.measures import meco
    from nasfilter.metrics.registry import ScoreContext
    from nasfilter.scoring.settings import arch_seed
    from nasfilter.spaces import get_space

    sp, shape = get_space("nats-tss"), get_shape("cifar10")
    cl = torch.channels_last

    class PerCell(nn.Module):
        """The same network; AZ-NAS reads its features through extract_cell_features."""

        def __init__(self, net: nn.Module) -> None:
            super().__init__()
            self.net = net

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.net(x)  # type: ignore[no-any-return]

        def extract_cell_features(self, x: torch.Tensor) -> list[torch.Tensor]:
            feats = [self.net.stem(x)]
            for cell in self.net.cells:
                feats.append(cell(feats[-1]))
            return feats

    nets = []
    for a in archs:
        torch.manual_seed(arch_seed(0, a))
        nets.append(sp.build(a, shape).to(memory_format=cl))

    def one(metric: str, net: nn.Module, seed: int) -> float:
        # as the Scorer does: one ArchState per architecture, the network lent (no copy)
        state = ArchState(
            net, shape=shape, batch_size=16, device=torch.device("cpu"), seed=seed,
            ctx=ScoreContext(dataset=shape), memory_format=cl, lend=True,
            rebuild=lambda: net,
        )  # fmt: skip
        return compute_score(get_metric(metric), state).value

    def timed(metric: str, wrap: Any = None) -> tuple[float, list[float]]:
        models = [wrap(n) if wrap else n for n in nets]
        one(metric, models[0], 0)  # warm-up
        t = time.perf_counter()
        vals = [one(metric, m, arch_seed(0, a)) for m, a in zip(models, archs, strict=True)]
        return (time.perf_counter() - t) / len(nets), vals

    t_new, v_new = timed("meco")
    held = meco._PENDING_BYTES
    meco._PENDING_BYTES = 0
    try:
        t_old, v_old = timed("meco")
    finally:
        meco._PENDING_BYTES = held
    print("3. MeCo's correlation spectra: batched by shape vs one map at a time")
    print(
        f"   meco           K = 1    batched {1e3 * t_new:7.1f} ms/arch   one at a time "
        f"{1e3 * t_old:7.1f} ms/arch   ratio {t_old / t_new:.2f}x   "
        f"values equal: {v_new == v_old}"
    )
    t_new, v_new = timed("az_expressivity")
    t_old, v_old = timed("az_expressivity", PerCell)
    print("4. AZ-NAS: one backward pass for all cells vs one per cell")
    print(
        f"   az_nas pass    K = 16   one     {1e3 * t_new:7.1f} ms/arch   per cell     "
        f"{1e3 * t_old:7.1f} ms/arch   ratio {t_old / t_new:.2f}x   "
        f"values equal: {same([[(0, v, '')] for v in v_new], [[(0, v, '')] for v in v_old])}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=30)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--parts", default="1,2,3,4", help="which parts to run, e.g. 3,4")
    args = ap.parse_args()
    parts = {int(p) for p in args.parts.split(",")}

    import torch

    from nasfilter.spaces import get_space

    torch.set_num_threads(args.threads)
    sp = get_space("nats-tss")
    archs = [sp.unrank(int(i)) for i in sp.sample_indices(args.n, 0)]
    print(
        f"bench_scorer_paths: {len(archs)} nats-tss cells (seed 0), CPU, "
        f"{torch.get_num_threads()} torch threads, torch {torch.__version__}"
    )
    if 3 in parts or 4 in parts:
        proxy_forms(archs)
    if 1 not in parts and 2 not in parts:
        return
    print("1. building networks: in turn (CPU default) vs a build thread one ahead")
    for metric, k in (("ensemble_free", 16), ("naswot", 128)) if 1 in parts else ():
        t_in, v_in = run(metric, k, archs, prefetch=False)
        t_th, v_th = run(metric, k, archs, prefetch=True)
        print(
            f"   {metric:<14} K = {k:<3}  in turn {1e3 * t_in:7.1f} ms/arch   "
            f"build thread {1e3 * t_th:7.1f} ms/arch   ratio {t_th / t_in:.2f}x   "
            f"values equal: {same(v_in, v_th)}"
        )
    if 2 not in parts:
        return
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
