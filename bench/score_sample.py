"""Score the shipped NAS-Bench-201 sample with nasfilter's metrics and cache the values
(issue 11): the data behind the ensembles' selection and bench/bench_ranking.py.

    OMP_NUM_THREADS=1 python bench/score_sample.py --dataset cifar10 \
        --metrics synflow,meco,l2_norm [--batch-size 64] [--n 0] [--seed 0] \
        [--out bench/data/nb201_sample_scores.parquet]

For every cell of ``nasfilter/sample_data/nb201_sample.csv`` with ``--dataset``
(NASLib's names: ``cifar10``, ``cifar100``, ``ImageNet16-120``; ``--n N``: the first N in
file order), the cell is scored through ``nasfilter.scoring.scorer.Scorer`` with the
settings a ``nasfilter score nats-tss`` run would have: run seed ``--seed`` (each
network seeded by ``arch_seed(seed, arch)``), the dataset's shape, batch size K =
``--batch-size``, BatchNorm mode ``batch``, the CPU, and ``--data synthetic`` (seeded
Gaussian images, seeded random labels: there are no real images on the machine this was
made on) when a metric reads images. Metrics that make their own inputs (data-free) do not
depend on ``--data``; their values are what any run with these settings stores.

Rows are added to ``--out`` (Parquet, zstd; long format), the file rewritten every 25
cells and at the end, so an interrupted run keeps what it computed; a row already in the
file (same dataset, cell, metric, K, seed) is not computed again. Columns: ``dataset``
(NASLib's name), ``arch``, ``metric``, ``batch_size``, ``seed``, ``inputs`` (``none``: the
metric reads no images; ``synthetic``), ``value`` (NaN and ±inf kept), ``status``,
``seconds``
(the metric's standalone time for the cell on this CPU: its own time plus building the
network and the shared forward pass where it used them; ``ArchResult.standalone_seconds``).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "nasfilter" / "sample_data" / "nb201_sample.csv"
OUT = ROOT / "bench" / "data" / "nb201_sample_scores.parquet"
SHAPES = {"cifar10": "cifar10", "cifar100": "cifar100", "ImageNet16-120": "imagenet16-120"}
COLS = ("dataset", "arch", "metric", "batch_size", "seed", "inputs", "value", "status", "seconds")


def sample_cells(dataset: str, n: int = 0) -> list[dict[str, str]]:
    with SAMPLE.open(newline="") as f:
        rows = [r for r in csv.DictReader(f) if r["dataset"] == dataset]
    return rows[:n] if n else rows


def read_rows(path: Path) -> list[tuple]:  # type: ignore[type-arg]
    """The cached rows (tuples in COLS order); none when the file does not exist."""
    if not path.exists():
        return []
    import pyarrow.parquet as pq

    t = pq.read_table(path).to_pydict()
    return list(zip(*(t[c] for c in COLS), strict=True))


def write_rows(path: Path, rows: list[tuple]) -> None:  # type: ignore[type-arg]
    """Rewrite the cache (sorted, so the file does not depend on the order of runs)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = sorted(rows, key=lambda r: (r[0], r[2], r[3], r[4], r[1]))
    cols = list(zip(*rows, strict=True)) if rows else [[] for _ in COLS]
    types = (pa.string(), pa.string(), pa.string(), pa.int32(), pa.int32(), pa.string())
    types += (pa.float64(), pa.string(), pa.float64())
    t = pa.table({c: pa.array(list(v), ty) for c, v, ty in zip(COLS, cols, types, strict=True)})
    tmp = path.with_suffix(".tmp")
    pq.write_table(t, tmp, compression="zstd")
    tmp.replace(path)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="cifar10", choices=sorted(SHAPES))
    ap.add_argument("--metrics", required=True)
    ap.add_argument("--batch-size", "-K", type=int, default=64)
    ap.add_argument("--n", type=int, default=0, help="first N cells (0: all)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()

    import torch

    from nasfilter.metrics import get_metric
    from nasfilter.scoring.scorer import Scorer
    from nasfilter.scoring.settings import RunSettings

    torch.set_num_threads(1)
    names = [m.strip() for m in args.metrics.split(",") if m.strip()]
    metrics = [get_metric(n) for n in names]
    reads = any(m.needs_data or m.needs_labels for m in metrics)
    settings = RunSettings.make(
        "nats-tss",
        names,
        seed=args.seed,
        data="synthetic" if reads else None,
        shape=SHAPES[args.dataset],
        batch_size=args.batch_size,
        device="cpu",
    )
    inputs = {m.name: ("synthetic" if m.needs_data or m.needs_labels else "none") for m in metrics}
    rows = read_rows(args.out)
    done = {(r[0], r[1], r[2], r[3], r[4]) for r in rows}
    cells = sample_cells(args.dataset, args.n)
    k, seed = args.batch_size, args.seed
    todo = [
        c
        for c in cells
        if any((args.dataset, c["arch_str"], n, k, seed) not in done for n in names)
    ]
    print(
        f"score_sample: {args.dataset}, {len(cells)} cells, {len(todo)} to score, "
        f"metrics {', '.join(names)}, K={args.batch_size}, seed {args.seed}",
        flush=True,
    )
    t0 = time.perf_counter()
    with Scorer(settings) as scorer:
        for i, c in enumerate(todo):
            res = scorer.score(c["arch_str"], i)
            for n in names:
                if (args.dataset, c["arch_str"], n, k, seed) in done:
                    continue
                v, st = res.value(n)
                rows.append(
                    (args.dataset, c["arch_str"], n, k, seed, inputs[n], float(v), st)
                    + (round(res.standalone_seconds(n), 6),)
                )
            if (i + 1) % 25 == 0 or i + 1 == len(todo):
                write_rows(args.out, rows)
                el = time.perf_counter() - t0
                print(
                    f"  {i + 1}/{len(todo)} cells, {el:.0f} s ({el / (i + 1):.2f} s/cell)",
                    flush=True,
                )
    sys.exit(0)


if __name__ == "__main__":
    main()
