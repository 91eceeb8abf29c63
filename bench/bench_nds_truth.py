"""Benchmark: loading an NDS design-space file, streamed, against reading it whole.

Writes a synthetic file in NDS's layout (a list of records with per-epoch and
per-iteration training curves, NaN losses included; the networks are seeded samples of
the space), then, each in a fresh process, times and measures the peak resident memory
of

- nasfilter: ``load_nds`` (streaming reader, validation, one DuckDB transaction; the
  process has imported nasfilter, DuckDB and pyarrow and opened the store before), and
- the baseline: ``json.load`` of the whole file and 100 - test_ep_top1[-1] per record,
  as NASWOT's ``nasspace.NDS`` reads these files,

and prints the time and the peak resident memory before and after the load of both
(``ru_maxrss``), beside the file's size. Streaming, the growth should stay flat as the
file grows (``--records``); reading it whole, it grows with the file.

    python bench/bench_nds_truth.py [--space nds-darts] [--records 5000] [--iters 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD_NASFILTER = """
import resource, sys, time
import pyarrow
from nasfilter.store import Store
from nasfilter.truth.nds import load_nds
from nasfilter.spaces import get_space
get_space(sys.argv[3])
with Store.open(sys.argv[2]) as st:
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    t = time.perf_counter()
    s = load_nds(st, sys.argv[3], sys.argv[1])
    t = time.perf_counter() - t
print(t, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, s.rows)
"""

CHILD_BASELINE = """
import json, resource, sys, time
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t = time.perf_counter()
with open(sys.argv[1]) as f:
    data = json.load(f)
if isinstance(data, dict):
    data = data["top"] + data["mid"]
acc = [100.0 - r["test_ep_top1"][-1] for r in data]
t = time.perf_counter() - t
print(t, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, len(acc))
"""


def write_file(path: Path, space_name: str, records: int, iters: int, seed: int) -> None:
    import numpy as np

    from nasfilter.spaces import get_space

    space = get_space(space_name)
    rng = np.random.default_rng(seed)
    nets = space.sample(records, seed)
    epochs = 100
    with open(path, "w", encoding="utf-8") as f:
        f.write("[")
        for i, arch in enumerate(nets):
            test = (rng.uniform(5, 40) + 60 * np.exp(-np.arange(epochs) / 10)).round(3)
            loss = (2.3 * np.exp(-np.arange(epochs) / 20)).round(3).tolist()
            loss[int(rng.integers(epochs))] = float("nan")
            rec = {
                "job_id": i,
                "rng_seed": 1,
                "exp_mem": 811.2,
                "params": 1_000_000 + i,
                "flops": 100_000_000 + i,
                "net": json.loads(arch),
                "optim": {"base_lr": 0.1, "wd": 0.0005, "max_ep": epochs},
                "act_mem": 402.1,
                "prec_time": {"train_fw_bw": 0.059, "test_fw": 0.012},
                "iter_time": 0.061,
                "min_test_top1": float(test.min()),
                "train_ep_loss": loss,
                "train_ep_top1": (test * 0.8).round(3).tolist(),
                "test_ep_top1": test.tolist(),
                "train_it_loss": rng.uniform(0, 2.3, iters).round(4).tolist(),
                "train_it_top1": rng.uniform(0, 90, iters).round(3).tolist(),
            }
            f.write(("," if i else "") + json.dumps(rec))
        f.write("]")


def run(code: str, *args: str) -> tuple[float, float, float, int]:
    """(seconds, peak RSS before the load, peak RSS after it (MB), rows) of a child."""
    out = subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, check=True
    )
    t, before_kb, after_kb, rows = out.stdout.split()
    return float(t), float(before_kb) / 1024, float(after_kb) / 1024, int(rows)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--space", default="nds-darts")
    ap.add_argument("--records", type=int, default=5000)
    ap.add_argument("--iters", type=int, default=1000, help="per-iteration curve points")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "nds.json"
        t0 = time.perf_counter()
        write_file(path, args.space, args.records, args.iters, args.seed)
        size = path.stat().st_size
        print(
            f"file: {args.records:,} {args.space} records, {size / 1e6:,.1f} MB "
            f"(written in {time.perf_counter() - t0:.1f} s)"
        )
        db = str(Path(tmp) / "b.duckdb")
        t_nf, b_nf, a_nf, rows = run(CHILD_NASFILTER, str(path), db, args.space)
        t_bl, b_bl, a_bl, n = run(CHILD_BASELINE, str(path))
    row = "{:<33} {:6.2f} s  {:6,.0f} -> {:6,.0f} MB  {:,} {}"
    print(f"{'':<33} {'time':>8}  peak RSS before -> after the load")
    print(row.format("nasfilter load_nds (streamed):", t_nf, b_nf, a_nf, rows, "rows"))
    print(row.format("baseline json.load (whole file):", t_bl, b_bl, a_bl, n, "records"))
    print(f"python {platform.python_version()}, {platform.machine()}, {os.cpu_count()} CPUs")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
