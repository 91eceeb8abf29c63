"""Zero-cost proxy benchmark (issue 10). Prints each figure beside its baseline.

    python bench/bench_proxies.py [--n 50] [--batch-size 64] [--metrics all]
                                  [--repeats 1] [--threads T] [--seed 0]
                                  [--memory-format channels_last|contiguous]

Cells: the first ``--n`` (<= 50) NAS-Bench-201 CIFAR-10 cells of
``bench/data/nb201_naslib_seconds.csv`` (NAS-Bench-Suite-Zero, with NASLib's recorded
seconds per proxy for the same cells; attribution in bench/data/README.md). Each network
is built once per cell (``torch.manual_seed(arch_seed)``, ``space.build``), as the engine
builds it; build time is printed separately and excluded from everything else. Inputs:
seeded N(0, 1) images of the CIFAR-10 shape (``nasfilter.data.synthetic_batch``) with
seeded random labels over the 10 classes, K = ``--batch-size``. CPU. Networks and inputs
are laid out in ``--memory-format`` (default ``channels_last``, as ``nasfilter score``
runs them), the floor included.

Figures, all measured in the same run on the same network objects:

1. floor: one plain forward + backward pass of the cross-entropy (training mode,
   gradients of every parameter) on a copy of the network: what a gradient proxy cannot
   avoid.
2. per metric, alone: a new ``ArchState`` per metric and cell, then ``compute_score``
   (the library call the engine makes), so each metric pays its whole cost: its fresh
   copy of the network (``copy.deepcopy``, made by ``ArchState``) and any pass it shares
   with others in a run. Beside it: the ratio to the floor of the same cell (median over
   cells; target <= 2x) and NASLib's recorded seconds for the same cells (median).
3. fresh copy: ``ArchState.fresh()`` (a ``copy.deepcopy`` of the pristine network) alone,
   which every ``fresh_network`` metric pays once; the suite pays it once per such metric.
4. the suite: every selected metric through ONE ``ArchState`` per cell (the engine's way:
   shared passes computed once), seconds per cell; target < 1 s at K = 64.

``--fresh scratch`` replaces ArchState's copies by a prototype of a cheaper scheme
(``ScratchState`` below, not library code): a metric's network copy is made only when the
metric first reads ``inp.model`` (metrics that only read a shared result never copy), and
it is one deep copy per dtype per cell, reset from the pristine network (weights and
buffers copied in place, ``.grad`` cleared, ``requires_grad`` and modes restored) instead of
a new ``copy.deepcopy``. ``--fresh deepcopy`` (default) is the library as it is.

``--repeats r`` times every figure r times per cell (interleaved) and keeps the minimum.
Medians are over cells. Times are wall-clock (``time.perf_counter``); the suite also
prints process CPU time, so that load from other processes is visible.
"""

from __future__ import annotations

import argparse
import copy
import csv
import math
import platform
import statistics
import time
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "nb201_naslib_seconds.csv"
ALL = (
    "grad_norm snip grasp fisher jacob_cov synflow plain l2_norm epe_nas zen ntk_cond "
    "linear_regions zico meco swap swap_reg az_expressivity az_progressivity az_trainability"
).split()
#: nasfilter name -> NASLib's column
NASLIB = {
    "grad_norm": "grad_norm",
    "snip": "snip",
    "grasp": "grasp",
    "fisher": "fisher",
    "jacob_cov": "jacov",
    "synflow": "synflow",
    "plain": "plain",
    "l2_norm": "l2_norm",
    "epe_nas": "epe_nas",
}
TARGET_RATIO = 2.0
TARGET_SUITE_S = 1.0


def cells(n: int) -> list[dict[str, str]]:
    with DATA.open(newline="") as f:
        rows = list(csv.DictReader(f))
    return rows[:n]


def best_of(repeats: int, fn: Any) -> tuple[float, Any]:
    best, out = math.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def scratch_state_class() -> Any:
    """A prototype (bench only) of a cheaper ``ArchState.fresh``: lazy, reset copies."""
    import torch

    from nasfilter.metrics.inputs import ArchState, MetricInput

    class LazyInput(MetricInput):
        @property  # type: ignore[override]
        def model(self) -> Any:
            if self._m is None:
                self._m = self._state.model_for(self.metric)  # type: ignore[attr-defined]
            return self._m

        @model.setter
        def model(self, value: Any) -> None:
            self._m = value

    class ScratchState(ArchState):
        def __init__(self, *a: Any, **kw: Any) -> None:
            super().__init__(*a, **kw)
            self._scratch: dict[Any, Any] = {}

        def fresh(self, dtype: Any = None) -> Any:
            held = self._scratch.get(dtype)
            if held is None:
                m = super().fresh(dtype)
                src = list(self.pristine.state_dict().values())
                dst = list(m.state_dict().values())
                flags = [p.requires_grad for p in self.pristine.parameters()]
                modes = [x.training for x in self.pristine.modules()]
                self._scratch[dtype] = (m, src, dst, flags, modes)
                return m
            m, src, dst, flags, modes = held
            with torch.no_grad():
                for d, s_ in zip(dst, src, strict=True):
                    d.copy_(s_)
            for p, f in zip(m.parameters(), flags, strict=True):
                p.grad = None
                p.requires_grad_(f)
            for x, t in zip(m.modules(), modes, strict=True):
                x.training = t
            return m

        def model_for(self, metric: Any) -> Any:
            if metric.needs_float64:
                return self.fresh(torch.float64)
            if metric.needs_fresh_network:
                return self.fresh()
            return self.pristine

        def input_for(self, metric: Any) -> Any:
            base = super().input_for  # checks data/labels; builds nothing below
            if metric.needs_data and self.inputs is None:
                return base(metric)
            return LazyInput(self, metric, None)

    return ScratchState


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=50)
    ap.add_argument("--batch-size", "-K", type=int, default=64)
    ap.add_argument("--metrics", default="all", help="comma-separated, or 'all'")
    ap.add_argument("--repeats", type=int, default=1)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--fresh", choices=("deepcopy", "scratch"), default="deepcopy")
    ap.add_argument(
        "--memory-format", choices=("channels_last", "contiguous"), default="channels_last"
    )
    args = ap.parse_args()

    import numpy as np
    import torch
    import torch.nn.functional as F

    from nasfilter.data import synthetic_batch
    from nasfilter.datasets import get_shape
    from nasfilter.engine import arch_seed
    from nasfilter.metrics import get_metric
    from nasfilter.metrics.inputs import ArchState, compute_score
    from nasfilter.metrics.probe import retain_freed_memory
    from nasfilter.metrics.registry import ScoreContext
    from nasfilter.spaces import get_space

    if args.threads:
        torch.set_num_threads(args.threads)
    retain_freed_memory()  # as the engine does on CPU
    names = ALL if args.metrics == "all" else [m.strip() for m in args.metrics.split(",")]
    metrics = [get_metric(n) for n in names]
    space, shape = get_space("nats-tss"), get_shape("cifar10")
    k = args.batch_size
    batch = synthetic_batch(k, args.seed)
    fmt = torch.channels_last if args.memory_format == "channels_last" else torch.contiguous_format
    x = torch.from_numpy(batch.images).contiguous(memory_format=fmt)
    y = torch.from_numpy(
        np.random.default_rng(args.seed).integers(0, shape.num_classes, size=k)
    ).long()
    rows = cells(min(args.n, 50))
    print(
        f"bench_proxies: {len(rows)} NATS-TSS cells, K={k}, CPU, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
        f"fresh copies: {args.fresh}, memory format: {args.memory_format}"
    )

    kind = ArchState if args.fresh == "deepcopy" else scratch_state_class()

    def state(net: Any) -> ArchState:
        p = sum(q.numel() for q in net.parameters()) / 1e3
        return kind(
            net,
            shape=shape,
            batch_size=k,
            device=torch.device("cpu"),
            memory_format=fmt,
            seed=args.seed,
            ctx=ScoreContext(dataset=shape, settings={"swap_mu": round(p), "swap_sigma": 1e6}),
            inputs=x,
            targets=y,
        )

    build_s: list[float] = []
    floor_s: list[float] = []
    copy_s: list[float] = []
    alone: dict[str, list[float]] = {n: [] for n in names}
    ratio: dict[str, list[float]] = {n: [] for n in names}
    suite_wall: list[float] = []
    suite_cpu: list[float] = []
    for i, row in enumerate(rows):
        arch = row["arch_str"]
        t = time.perf_counter()
        torch.manual_seed(arch_seed(args.seed, arch))
        net = space.build(arch, shape).to(memory_format=fmt)
        build_s.append(time.perf_counter() - t)
        work = copy.deepcopy(net)
        work.train()
        params = [p for p in work.parameters() if p.requires_grad]

        def floor() -> None:
            loss = F.cross_entropy(work(x), y)  # noqa: B023
            torch.autograd.grad(loss, params)  # noqa: B023

        floor_s.append(best_of(args.repeats, floor)[0])
        copy_s.append(best_of(args.repeats, lambda: state(net).fresh())[0])  # noqa: B023
        for m in metrics:
            dt, score = best_of(args.repeats, lambda: compute_score(m, state(net)))  # noqa: B023
            alone[m.name].append(dt)
            ratio[m.name].append(dt / floor_s[-1])

        def suite() -> None:
            st = state(net)  # noqa: B023
            for m in metrics:
                compute_score(m, st)

        c0 = time.process_time()
        dt, _ = best_of(args.repeats, suite)
        suite_cpu.append((time.process_time() - c0) / args.repeats)
        suite_wall.append(dt)
        print(
            f"  cell {i + 1:>2}/{len(rows)}: floor {floor_s[-1] * 1e3:7.0f} ms, "
            f"suite {dt:6.2f} s  {arch}",
            flush=True,
        )

    def med(v: list[float]) -> float:
        return statistics.median(v) if v else math.nan

    print()
    print(f"network build (excluded)      median {med(build_s) * 1e3:8.1f} ms")
    print(f"floor: forward+backward K={k:<3} median {med(floor_s) * 1e3:8.1f} ms")
    print(f"fresh copy (deepcopy)         median {med(copy_s) * 1e3:8.1f} ms")
    print()
    print(
        f"{'metric':<18} {'ms/arch':>9} {'mean':>9} {'x floor':>8} {'target':>7} "
        f"{'NASLib s':>9}  (median over cells; NASLib: its recorded seconds, same cells)"
    )
    naslib = {}
    for n in names:
        col = NASLIB.get(n)
        if col:
            naslib[n] = med([float(r[f"{col}_seconds"]) for r in rows])
    for n in names:
        r = med(ratio[n])
        ok = "met" if r <= TARGET_RATIO else "MISSED"
        nas = f"{naslib[n]:9.3f}" if n in naslib else f"{'-':>9}"
        print(
            f"{n:<18} {med(alone[n]) * 1e3:9.1f} {statistics.fmean(alone[n]) * 1e3:9.1f} "
            f"{r:8.2f} {ok:>7} {nas}"
        )
    print()
    s = med(suite_wall)
    print(
        f"suite ({len(names)} metrics, one ArchState per cell): median {s:.2f} s, "
        f"mean {statistics.fmean(suite_wall):.2f} s, max {max(suite_wall):.2f} s per cell "
        f"(process CPU median {med(suite_cpu):.2f} s); target < {TARGET_SUITE_S:.0f} s: "
        f"{'met' if s < TARGET_SUITE_S else 'MISSED'}"
    )
    print(
        f"  of which fresh copies: {sum(m.needs_fresh_network or m.needs_float64 for m in metrics)}"
        f" x {med(copy_s) * 1e3:.1f} ms"
    )


if __name__ == "__main__":
    main()
