"""Distributed scoring benchmark (issue 15). Prints each figure beside the 1-process
baseline measured in the same run.

    python bench/bench_distributed.py [--n 200] [--batch-size 32] [--workers 2]
                                      [--shape cifar10] [--gpu]

NASWOT over the same ``--n`` NATS-TSS cells (the seeded sample of seed 0), synthetic
32x32 inputs, batch ``--batch-size`` (K; default 32, not NASWOT's usual 128, so that the
five runs take a few minutes on a busy 2-core machine: ``--batch-size 128`` for the
full-size figures), each variant in its own child process with its own fresh database,
one after the other:

1. baselines: one process, the in-process path of ``nasfilter score``, with one torch
   thread (a) and with torch's default number of threads, one per core (b: what
   ``nasfilter score`` does today);
2. ``--workers W`` local worker processes (one torch thread each);
3. Ray with W actors (one CPU and one torch thread each) on a private Ray instance that
   the run starts on this machine (loopback only, no dashboard).

For 2 and 3: start-up (Ray's start, the workers' imports and scorers), the scoring time
(first chunk sent to last result), per architecture, the speed-up over the baseline, and
the overhead per architecture: the time workers were ready but not scoring (waiting for
the driver, the last chunks' imbalance), summed over workers, divided by the
architectures; target: below 5% of the scoring time. The stored values of the three runs
are compared bit for bit.

``--gpu``: on a machine with a CUDA device, the same NASWOT run with one process on the
GPU, then Ray with W actors sharing that one GPU (``--gpus-per-worker 1/W``). Without a
CUDA device the GPU figures are not measured (and the script says so).

The machine is shared: the load average before and after is printed beside the figures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

TARGET_OVERHEAD = 0.05

CHILD = r"""
import json, sys, time
from nasfilter import engine
from nasfilter.scoring.backends import BackendSpec, open_backend
from nasfilter.scoring.settings import RunSettings
from nasfilter.store import Store

db, kind, workers, n, k, shape, device, gpus, threads = sys.argv[1:10]
workers, n, k, gpus, threads = int(workers), int(n), int(k), float(gpus), int(threads)
t0 = time.perf_counter()
s = Store.open(db)
run = engine.start(s, engine.ScoreRequest(
    "nats-tss", n=n, metrics="naswot", data="synthetic", shape=shape, batch_size=k,
    device=device))
settings = RunSettings.from_json(s.get_run(run)["settings"])
s.release()
out = {"run": run}
if kind == "inprocess":
    import torch
    if threads:
        torch.set_num_threads(threads)
    out["threads"] = torch.get_num_threads()
    t = time.perf_counter()
    summary = engine.execute(s, run)
    out["scoring"] = time.perf_counter() - t
else:
    spec = BackendSpec.make("ray" if kind == "ray" else "local", workers=workers,
                            gpus_per_worker=gpus if kind == "ray" else None, device=device)
    t = time.perf_counter()
    backend = open_backend(spec, settings, wait_all=True)
    out["startup"] = time.perf_counter() - t
    t = time.perf_counter()
    summary = engine.execute(s, run, backend=backend)
    out["execute"] = time.perf_counter() - t
    out["stats"] = backend.stats.as_dict()
    out["overhead_per_arch"] = backend.stats.overhead_per_arch()
    out["workers"] = backend.workers()
    backend.close()
out["status"] = summary.status
out["archs"] = summary.archs_scored
out["total"] = time.perf_counter() - t0
s.close()
print("@@ " + json.dumps(out))
"""


def child(db: Path, kind: str, workers: int, args: argparse.Namespace, device: str,
          gpus: float = 0.0, threads: int = 0) -> dict[str, Any]:  # fmt: skip
    """One run in a child process (``threads``: torch threads of an in-process run; 0:
    torch's default)."""
    argv = [str(db), kind, str(workers), str(args.n), str(args.batch_size), args.shape, device]
    env = dict(os.environ)
    if threads:
        env["OMP_NUM_THREADS"] = str(threads)
    t = time.perf_counter()
    p = subprocess.run(
        [sys.executable, "-c", CHILD, *argv, str(gpus), str(threads)],
        capture_output=True,
        text=True,
        env=env,
    )
    wall = time.perf_counter() - t
    line = [x for x in p.stdout.splitlines() if x.startswith("@@ ")]
    if p.returncode or not line:
        raise SystemExit(f"{kind} run failed:\n{p.stderr[-3000:]}")
    out = json.loads(line[-1][3:])
    out["process"] = wall
    return out


def values(db: Path, run: int) -> dict[tuple[str, str], tuple[Any, str]]:
    import struct

    from nasfilter.store import Store

    with Store.open(db, read_only=True) as st:
        rows = st.con.execute(
            "SELECT arch, metric, value, status FROM scores WHERE run_id = ?", [run]
        ).fetchall()
    return {(a, m): (struct.pack("<d", v), s) for a, m, v, s in rows}


def ms(x: float) -> str:
    return f"{1000 * x:,.1f} ms"


def report_pool(name: str, r: dict[str, Any], bases: dict[str, float], n: int) -> None:
    """A pool's figures, each beside the baselines (``bases``: label -> s/arch)."""
    st = r["stats"]
    scoring = st["wall_seconds"]
    per = scoring / n
    over = r["overhead_per_arch"]
    ready = st["worker_seconds"]
    frac = (ready - st["busy_seconds"]) / ready if ready else float("nan")
    verdict = "OK" if frac < TARGET_OVERHEAD else "OVER TARGET"
    devices = sorted({w.get("device", "?") for w in r["workers"]})
    beside = "; ".join(f"{lab} {ms(b)}/arch: {b / per:.2f}x" for lab, b in bases.items())
    print(
        f"   {name}: scoring {scoring:.1f} s = {ms(per)}/arch (baseline {beside}); "
        f"start-up {r['startup']:.1f} s; each worker {ms(st['busy_seconds'] / n)} busy per arch"
    )
    print(
        f"      overhead {ms(over)}/arch = {100 * frac:.1f}% of worker time (target < "
        f"{100 * TARGET_OVERHEAD:.0f}%: {verdict}); {st['chunks']} chunks, "
        f"{st['retried']} retried; devices {', '.join(devices)}; process wall "
        f"{r['process']:.1f} s (baseline {r['base_process']:.1f} s)"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=200, help="NATS-TSS cells")
    ap.add_argument("--batch-size", "-K", type=int, default=32, help="NASWOT batch K")
    ap.add_argument("--workers", type=int, default=2, help="local processes / Ray actors")
    ap.add_argument("--shape", default="cifar10", help="dataset shape (cifar10: 32x32)")
    ap.add_argument("--gpu", action="store_true", help="also measure on a CUDA device")
    args = ap.parse_args()
    n, w = args.n, args.workers
    print(
        f"NASWOT over {n} NATS-TSS cells, synthetic {args.shape} inputs, K = {args.batch_size}, "
        f"CPU, {os.cpu_count()} cores; load average before: "
        f"{', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    with tempfile.TemporaryDirectory() as d:
        dbs = {k: Path(d) / f"{k}.duckdb" for k in ("1t", "default", "processes", "ray")}
        bases: dict[str, float] = {}
        runs: dict[str, dict[str, Any]] = {}
        for key, threads, label in (("1t", 1, "a"), ("default", 0, "b")):
            r = child(dbs[key], "inprocess", 1, args, "cpu", threads=threads)
            runs[key] = r
            bases[f"({label}) {r['threads']} thread{'s' if r['threads'] > 1 else ''}"] = (
                r["scoring"] / n
            )
            print(
                f"1{label}. baseline, 1 process, {r['threads']} torch thread(s): {n} archs "
                f"scored in {r['scoring']:.1f} s = {ms(r['scoring'] / n)}/arch; process wall "
                f"{r['process']:.1f} s"
            )
        for i, (kind, label) in enumerate(
            (("processes", f"{w} local worker processes"), ("ray", f"Ray, {w} actors")), start=2
        ):
            r = child(dbs[kind], kind, w, args, "cpu")
            r["base_process"] = runs["default"]["process"]
            runs[kind] = r
            print(f"{i}. {label}:")
            report_pool(label, r, bases, n)
        ref = values(dbs["1t"], runs["1t"]["run"])
        same = all(values(dbs[k], runs[k]["run"]) == ref for k in ("default", "processes", "ray"))
        print(
            f"   stored values of the four runs bit for bit equal: {'yes' if same else 'NO'} "
            f"({len(ref):,} values each)"
        )
        gpu_figures(args, d)
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


def gpu_figures(args: argparse.Namespace, d: str) -> None:
    import torch

    if not args.gpu or not torch.cuda.is_available():
        why = "no CUDA device here" if args.gpu else "pass --gpu on a machine with a CUDA device"
        print(f"4. GPU (one device, {args.workers} Ray actors sharing it): not measured ({why}).")
        return
    n, w = args.n, args.workers
    base = child(Path(d) / "gpu-local.duckdb", "inprocess", 1, args, "cuda")
    base_per = base["scoring"] / n
    print(
        f"4. GPU {torch.cuda.get_device_name(0)}: baseline 1 process: {n} archs in "
        f"{base['scoring']:.1f} s = {ms(base_per)}/arch"
    )
    r = child(Path(d) / "gpu-ray.duckdb", "ray", w, args, "cuda", gpus=1.0 / w)
    r["base_process"] = base["process"]
    report_pool(f"Ray, {w} actors at {1.0 / w:g} GPU each", r, {"1 process": base_per}, n)


if __name__ == "__main__":
    main()
