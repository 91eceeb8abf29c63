"""NASWOT benchmarks (issue 3). Prints each figure beside its baseline or target.

    python bench/bench_naswot.py [--n 100] [--batch-size 128] [--repeats 2]
                                 [--memory-n 1000] [--memory-every 100]

1. Per-architecture NASWOT time over the same ``--n`` NATS-TSS cells (seeded sample),
   K = 128, CPU: ``nasfilter.metrics.naswot(model, inputs)`` (the probe, the code path
   the CLI runs) beside a straightforward reference that does what the original
   repository (BayesWatch/nas-without-training) does: a forward hook per ``nn.ReLU``
   adding ``x @ x.t()`` and ``(1 - x) @ (1 - x.t())`` into a numpy K, then
   ``np.linalg.slogdet``. Same run, same weights, same batch; nasfilter's side runs as
   ``nasfilter score`` does, on the network and batch laid out channels-last (the default
   ``--memory-format``), the reference on the NCHW network, as the original repository
   does; both floors (plain forward, each layout) are printed. Exactness is checked with
   the probe on the reference's NCHW network (identical K_H); the channels-last score's
   difference (float rounding of the convolutions) is printed. Network build time is
   excluded from both. Each architecture is timed
   ``--repeats`` times per variant, interleaved (ABBA order), and the minimum is kept, so
   load from other processes hits both alike. The plain forward pass (no observation)
   is timed the same way: the floor both share. Target: >= 1.5x faster, identical scores
   (relative difference < 1e-9; singular cells are -inf in both).
   ``--allocator engine`` (default) first applies, for the whole process and so for both
   sides, the malloc setting ``nasfilter score`` uses on CPU
   (``nasfilter.metrics.probe.retain_freed_memory``: no page-fault churn between passes);
   ``--allocator default`` keeps glibc's defaults (both sides page-fault).
2. Peak memory of a ``--memory-n``-architecture run of the real CLI command
   ``nasfilter score nats-tss --n N --metrics naswot,relu_count --data synthetic`` in a
   child process: RSS now and peak RSS printed every ``--memory-every`` architectures,
   so a flat line shows that nothing accumulates.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

TARGET_SPEEDUP = 1.5


# -- 1. time per architecture --------------------------------------------------------------
def reference_naswot(network: Any, x: Any) -> tuple[float, Any]:
    """What nas-without-training's score_networks.py does (its counting forward hook and
    ``hooklogdet``), without its extra Jacobian pass: (log|K|, K)."""
    import numpy as np
    import torch

    batch_size = x.shape[0]
    network.K = np.zeros((batch_size, batch_size))

    def counting_forward_hook(module, inp, out):  # type: ignore[no-untyped-def]
        if isinstance(inp, tuple):
            inp = inp[0]
        inp = inp.view(inp.size(0), -1)
        x = (inp > 0).float()
        K = x @ x.t()
        K2 = (1.0 - x) @ (1.0 - x.t())
        network.K = network.K + K.cpu().numpy() + K2.cpu().numpy()

    handles = [
        m.register_forward_hook(counting_forward_hook)
        for m in network.modules()
        if isinstance(m, torch.nn.ReLU)
    ]
    network.train()  # the repository never calls eval(): batch statistics
    try:
        with torch.no_grad():
            network(x)
    finally:
        for h in handles:
            h.remove()
    sign, logdet = np.linalg.slogdet(network.K)
    k = network.K
    del network.K
    return (float(logdet) if sign != 0 else -math.inf), k


def plain_forward(network: Any, x: Any) -> None:
    import torch

    network.train()
    with torch.no_grad():
        network(x)


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


def per_arch_time(n: int, batch_size: int, seed: int, repeats: int, data: str,
                  data_dir: str | None) -> bool:  # fmt: skip
    import numpy as np
    import torch

    from nasfilter.data import load_batch
    from nasfilter.engine import arch_seed
    from nasfilter.metrics import naswot
    from nasfilter.metrics.probe import ModelProbe, _int_mm_works
    from nasfilter.spaces import get_space

    space = get_space("nats-tss")
    archs = [space.unrank(int(i)) for i in space.sample_indices(n, seed)]
    x = torch.from_numpy(load_batch(data, batch_size, seed, data_dir=data_dir).images)
    print(
        f"1. NASWOT per architecture: {n} nats-tss cells (seed {seed}), K = {batch_size}, "
        f"{data} batch, CPU, {torch.get_num_threads()} torch threads, min of {repeats} "
        "interleaved repeats, build time excluded"
    )
    gram = "int8 torch._int_mm" if _int_mm_works(x.device) else "float32 mm"
    print(
        f"   probe Gram products: {gram} (CPU capability {torch.backends.cpu.get_cpu_capability()})"
    )
    t_ref, t_new, t_fwd, t_fwd_cl, rel, ratios = [], [], [], [], [], []
    cl_rel: list[float] = []
    x_cl = x.contiguous(memory_format=torch.channels_last)
    singular = same_kernel = reused = calls = 0
    t0 = time.perf_counter()
    for i, arch in enumerate(archs):
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(arch_seed(seed, arch))
            net = space.build(arch, 10)
        # what `nasfilter score` runs: the same weights laid out channels-last
        net_cl = copy.deepcopy(net).to(memory_format=torch.channels_last)
        plain_forward(net, x)  # warm-up: first use of each layer shape
        plain_forward(net_cl, x_cl)
        best = {k: math.inf for k in ("ref", "new", "fwd", "fwd_cl")}
        res: dict[str, Any] = {}
        fns = {
            "ref": partial(reference_naswot, net, x),
            "new": partial(naswot, net_cl, x_cl),
            "fwd": partial(plain_forward, net, x),
            "fwd_cl": partial(plain_forward, net_cl, x_cl),
        }
        order = ("ref", "new", "fwd", "fwd_cl")
        for r in range(repeats):
            for name in order if r % 2 == 0 else order[::-1]:
                dt, res[name] = timed(fns[name])
                best[name] = min(best[name], dt)
        ref_score, ref_k = res["ref"]
        new_score = naswot(net, x)  # the probe on the reference's own layout: exact
        cl_rel.append(
            0.0
            if res["new"] == new_score
            else abs(res["new"] - new_score) / max(abs(new_score), 1e-300)
        )
        probe = ModelProbe(net, x, want_kernel=True)
        same_kernel += bool(np.array_equal(probe.kernel().numpy(), ref_k))
        reused += probe.reused_calls()
        calls += probe.relu_calls()
        if math.isinf(ref_score) or math.isinf(new_score):
            singular += 1
            rel.append(0.0 if ref_score == new_score else math.inf)
        else:
            rel.append(abs(new_score - ref_score) / abs(ref_score))
        t_ref.append(best["ref"])
        t_new.append(best["new"])
        t_fwd.append(best["fwd"])
        t_fwd_cl.append(best["fwd_cl"])
        ratios.append(best["ref"] / best["new"])
        if (i + 1) % 10 == 0:
            print(
                f"   {i + 1:4d}/{n}  reference {1e3 * sum(t_ref) / len(t_ref):7.1f} ms/arch  "
                f"nasfilter {1e3 * sum(t_new) / len(t_new):7.1f} ms/arch  "
                f"({time.perf_counter() - t0:.0f} s)",
                flush=True,
            )
    ref_ms, new_ms, fwd_ms, fwd_cl_ms = (1e3 * sum(t) / n for t in (t_ref, t_new, t_fwd, t_fwd_cl))
    speedup = sum(t_ref) / sum(t_new)
    max_rel = max(rel)
    print(f"   reference (original repo's hooks + np.linalg.slogdet): {ref_ms:8.1f} ms/arch")
    print(f"   nasfilter.metrics.naswot (ModelProbe, channels-last):  {new_ms:8.1f} ms/arch")
    print(f"   plain forward pass, nothing observed (NCHW floor):     {fwd_ms:8.1f} ms/arch")
    print(f"   plain forward pass, nothing observed (NHWC floor):     {fwd_cl_ms:8.1f} ms/arch")
    print(
        f"   speed-up {speedup:.2f}x (target >= {TARGET_SPEEDUP}x); per-architecture ratio "
        f"median {statistics.median(ratios):.2f}x, min {min(ratios):.2f}x, max {max(ratios):.2f}x"
    )
    print(
        f"   observation overhead over its forward: reference {ref_ms - fwd_ms:.1f} ms/arch, "
        f"nasfilter {new_ms - fwd_cl_ms:.1f} ms/arch "
        f"({reused}/{calls} ReLU calls reused a Gram product)"
    )
    print(
        f"   scores: max relative difference {max_rel:.2e} (target < 1e-9); "
        f"K_H identical for {same_kernel}/{n}; singular (-inf in both) {singular} "
        "(the probe on the reference's NCHW network)"
    )
    print(
        f"   channels-last vs NCHW score (float rounding of the convolutions): max relative "
        f"difference {max(cl_rel):.2e}"
    )
    ok = speedup >= TARGET_SPEEDUP and max_rel < 1e-9 and same_kernel == n
    print(f"   {'PASS' if ok else 'FAIL'}")
    return ok


# -- 2. memory of a long CLI run -------------------------------------------------------------
CHILD = r"""
import os, resource, sys, time
every = int(sys.argv[1])
import nasfilter.engine as engine
real_execute = engine.execute
t0 = time.perf_counter()

def rss_mib():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")

def execute(store, run_id, on_progress=None, **kw):
    done = 0
    def progress(k):
        nonlocal done
        if on_progress:
            on_progress(k)
        before, done = done, done + k
        if done // every > before // every:
            peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
            print(f"@@ {done} {time.perf_counter() - t0:.1f} {rss_mib():.1f} {peak:.1f}",
                  file=sys.stderr, flush=True)
    return real_execute(store, run_id, on_progress=progress, **kw)

engine.execute = execute
sys.argv = ["nasfilter", *sys.argv[2:]]
from nasfilter.cli import main
main()
"""


def memory_run(n: int, every: int, batch_size: int, data: str, data_dir: str | None) -> bool:
    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "mem.duckdb"
        args = ["score", "nats-tss", "--n", str(n), "--metrics", "naswot,relu_count",
                "--data", data, "-K", str(batch_size), "--device", "cpu",
                "--db", str(db)]  # fmt: skip
        if data_dir:
            args += ["--data-dir", data_dir]
        print(f"2. Memory of `nasfilter {' '.join(args[:-2])}` (child process)")
        print("      archs   seconds   RSS now MiB   peak RSS MiB")
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            [sys.executable, "-c", CHILD, str(every), *args],
            stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        )  # fmt: skip
        assert proc.stderr is not None
        marks: list[tuple[int, float, float, float]] = []
        tail: list[str] = []
        for line in proc.stderr:
            if line.startswith("@@ "):
                done, secs, rss, peak = line.split()[1:]
                marks.append((int(done), float(secs), float(rss), float(peak)))
                row = f"{int(done):8d} {float(secs):9.1f} {float(rss):13.0f} {float(peak):14.0f}"
                print(f"   {row}", flush=True)
            elif line.strip():
                tail = (tail + [line.rstrip()])[-8:]
        code = proc.wait()
        wall = time.perf_counter() - t0
    if code != 0:
        print(f"   FAIL: exit code {code}: " + " | ".join(tail))
        return False
    at = next((i for i, t in enumerate(tail) if "completed" in t), len(tail))
    for line in tail[at:]:  # the summary line and its per-status counts
        print(f"   {line.strip()}")
    if len(marks) >= 2:
        peaks = [m[3] for m in marks]
        print(
            f"   {n} architectures in {wall:.0f} s ({wall / n:.2f} s/arch); peak RSS "
            f"{peaks[0]:.0f} MiB after {marks[0][0]}, {peaks[-1]:.0f} MiB after {marks[-1][0]} "
            f"(growth {peaks[-1] - peaks[0]:+.0f} MiB)"
        )
    return True


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--n", type=int, default=100, help="TSS cells timed (default 100)")
    ap.add_argument("--batch-size", "-K", type=int, default=128)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--repeats", type=int, default=2, help="timings per variant and arch")
    ap.add_argument("--data", default="synthetic")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    ap.add_argument("--memory-n", type=int, default=0,
                    help="architectures of the CLI memory run (0: skip; issue: 1000)")  # fmt: skip
    ap.add_argument("--memory-every", type=int, default=100)
    ap.add_argument("--allocator", choices=("engine", "default"), default="engine",
                    help="engine: glibc keeps freed memory, as `nasfilter score` sets it "
                    "(retain_freed_memory), for both sides; default: glibc's defaults")  # fmt: skip
    ap.add_argument("--skip-time", action="store_true", help="only the memory run")
    a = ap.parse_args()

    import torch

    if a.threads:
        torch.set_num_threads(a.threads)
        os.environ["OMP_NUM_THREADS"] = str(a.threads)  # for the child process
    from nasfilter.metrics.probe import retain_freed_memory

    if a.allocator == "engine":
        retained = retain_freed_memory()
    else:
        os.environ["NASFILTER_KEEP_FREED_MEMORY"] = "0"  # also for the child process
        retained = False
    print(
        f"nasfilter NASWOT bench: {platform.processor() or platform.machine()}, "
        f"{os.cpu_count()} CPUs, torch {torch.__version__}, python {platform.python_version()}; "
        f"allocator: {'freed memory kept (as the engine runs)' if retained else 'glibc default'}"
    )
    ok = True
    if not a.skip_time:
        ok &= per_arch_time(a.n, a.batch_size, a.seed, a.repeats, a.data, a.data_dir)
    if a.memory_n:
        ok &= memory_run(a.memory_n, a.memory_every, a.batch_size, a.data, a.data_dir)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
