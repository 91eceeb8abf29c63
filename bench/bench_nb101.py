"""NAS-Bench-101 benchmarks (issue 12). Prints each figure beside its baseline or target.

    python bench/bench_nb101.py [--baseline-vertices 6] [--hashes] [--records 200000]
    python bench/bench_nb101.py --only-cli [--repeat 3]

Each measurement runs in a fresh Python process (peak RSS is that process's), with its
own empty cache directory unless it measures the cache itself.

1. First enumeration of all 423,624 cells (pure numpy) and writing the cache
   (target <= 60 s, memory <= 1 GB), then loading it from the cache (target <= 3 s).
2. The original generator (google-research/nasbench ``scripts/generate_graphs.py``,
   re-implemented below from its code and ``lib/graph_util.py``: numpy matrices from
   every bitmask, ``is_full_dag``, every labeling, ``hash_module``, first graph of each
   hash kept; ``--verify_isomorphism`` off) beside ours, on the sub-spaces both can do in
   the same run (cells of up to 5 and up to ``--baseline-vertices`` vertices), with the
   ratio of the two. The issue quotes ~560 s for the original on the whole space here;
   ``--baseline-vertices 7`` measures that too (about ten minutes).
3. Whole-space analytic scoring: params, FLOPs and ReLU count of every cell through
   ``space.costs(identity)`` in a loop (what the engine calls per architecture), and in
   one call (``space.all_costs()``); then ``nasfilter score nb101 --all`` (target
   <= 20 s, process start included, enumeration cached) in a fresh process. With
   ``--only-cli``: the enumeration is cached first (not timed) and only that CLI figure
   is measured (``--repeat K``: K times, each into a fresh database).
4. Reading an official NB101 TFRecord file: a synthetic file of ``--records`` records in
   the genuine format (CRC-32C, JSON, base64 protobuf; the cells of the space, 3 repeats
   each, 108 epochs), read and aggregated by ``read_nb101``; MB/s and records/s, and the
   time that gives for nasbench_only108.tfrecord (1,270,872 records, ~499 MB).
5. With ``--hashes``: building the hash index (every cell's NAS-Bench-101 hash, needed by
   ``canonical(<hash>)``), once.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

CHILD_PRELUDE = """
import resource, sys, time
sys.path.insert(0, {root!r})
t0 = time.perf_counter()
def cpu():
    return time.process_time()
"""
CHILD_EPILOGUE = """
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"@@ {rss:.1f}")
"""


def child(code: str, cache: Path) -> tuple[list[str], float]:
    """Run ``code`` in a fresh interpreter with ``$NASFILTER_CACHE=cache``; returns its
    printed lines and its peak RSS (MiB)."""
    import os

    src = CHILD_PRELUDE.format(root=str(ROOT)) + textwrap.dedent(code) + CHILD_EPILOGUE
    env = {**os.environ, "NASFILTER_CACHE": str(cache)}
    p = subprocess.run([sys.executable, "-c", src], capture_output=True, text=True, env=env)
    if p.returncode:
        raise SystemExit(f"benchmark step failed:\n{p.stdout}\n{p.stderr}")
    lines = p.stdout.splitlines()
    rss = float(next(x for x in lines if x.startswith("@@ ")).split()[1])
    return [x for x in lines if not x.startswith("@@ ")], rss


# -- 1. enumeration and cache ---------------------------------------------------------------


def enumeration_and_cache(cache: Path) -> None:
    print("1. Enumeration of the whole space and its cache")
    out, rss = child(
        """
        from nasfilter.spaces.nb101 import enumeration
        t1, c1 = time.perf_counter(), cpu()
        t = enumeration.Table(on_notice=lambda m: None)
        print(len(t), time.perf_counter() - t1, t.cells_path.stat().st_size, cpu() - c1,
              time.perf_counter() - t0)
        """,
        cache,
    )
    n, secs, size, cpu, total = out[-1].split()
    print(
        f"   first enumeration + cache write: {float(secs):6.2f} s wall ({float(cpu):.2f} s CPU; "
        f"{float(total):.2f} s with imports) for {int(n):,} cells, "
        f"peak RSS {rss:.0f} MiB, cache file {int(size) / 2**20:.1f} MiB "
        "(target <= 60 s, <= 1 GB; original generator ~560 s per the issue)"
    )
    out, rss = child(
        """
        from nasfilter.spaces.nb101 import enumeration
        t1 = time.perf_counter()
        t = enumeration.Table(on_notice=print)
        print(len(t), time.perf_counter() - t1, time.perf_counter() - t0)
        """,
        cache,
    )
    n, secs, total = out[-1].split()
    print(
        f"   load from the cache (checksum verified): {float(secs):6.3f} s "
        f"({float(total):.2f} s with imports), peak RSS {rss:.0f} MiB (target <= 3 s)"
    )


# -- 2. the original generator, re-implemented ----------------------------------------------

BASELINE = """
import hashlib, itertools
import numpy as np

def gen_is_edge_fn(bits):
    def is_edge(x, y):
        if x >= y:
            return 0
        index = x + (y * (y - 1) // 2)
        return (bits >> index) % 2 == 1
    return np.vectorize(is_edge)

def is_full_dag(matrix):
    shape = np.shape(matrix)
    rows_bad = np.any(np.all(matrix[: shape[0] - 1, :] == 0, axis=1))
    cols_bad = np.any(np.all(matrix[:, 1:] == 0, axis=0))
    return (not rows_bad) and (not cols_bad)

def hash_module(matrix, labeling):
    vertices = np.shape(matrix)[0]
    in_edges = np.sum(matrix, axis=0).tolist()
    out_edges = np.sum(matrix, axis=1).tolist()
    hashes = [hashlib.md5(str(h).encode("utf-8")).hexdigest()
              for h in zip(out_edges, in_edges, labeling)]
    for _ in range(vertices):
        new_hashes = []
        for v in range(vertices):
            in_n = [hashes[w] for w in range(vertices) if matrix[w, v]]
            out_n = [hashes[w] for w in range(vertices) if matrix[v, w]]
            new_hashes.append(hashlib.md5(("".join(sorted(in_n)) + "|" + "".join(sorted(out_n))
                                           + "|" + hashes[v]).encode("utf-8")).hexdigest())
        hashes = new_hashes
    return hashlib.md5(str(sorted(hashes)).encode("utf-8")).hexdigest()

def generate(max_vertices, num_ops=3, max_edges=9):
    buckets = {}
    total = 0
    for vertices in range(2, max_vertices + 1):
        for bits in range(2 ** (vertices * (vertices - 1) // 2)):
            matrix = np.fromfunction(gen_is_edge_fn(bits), (vertices, vertices), dtype=np.int8)
            if not is_full_dag(matrix) or np.sum(matrix) > max_edges:
                continue
            for labeling in itertools.product(*[range(num_ops) for _ in range(vertices - 2)]):
                total += 1
                labeling = [-1] + list(labeling) + [-2]
                fingerprint = hash_module(matrix, labeling)
                if fingerprint not in buckets:
                    buckets[fingerprint] = (matrix.tolist(), labeling)
    return buckets, total
"""


def generator_side_by_side(max_vertices: int, cache: Path) -> None:
    print("2. The original generator (re-implemented) beside the numpy enumeration, same run")
    sizes = sorted({5, max_vertices})
    for v in sizes:
        out, rss_o = child(
            BASELINE
            + f"""
t1 = time.perf_counter()
buckets, total = generate({v})
print(len(buckets), total, time.perf_counter() - t1)
""",
            cache,
        )
        n_o, total, secs_o = out[-1].split()
        out, rss_n = child(
            f"""
            from nasfilter.spaces.nb101 import enumeration
            t1 = time.perf_counter()
            keys = enumeration.enumerate_keys({v})
            print(len(keys), time.perf_counter() - t1)
            """,
            cache,
        )
        n_n, secs_n = out[-1].split()
        assert n_o == n_n, (n_o, n_n)
        ratio = float(secs_o) / max(float(secs_n), 1e-9)
        print(
            f"   up to {v} vertices: {int(n_o):,} cells ({int(total):,} labeled graphs hashed): "
            f"original {float(secs_o):8.2f} s ({rss_o:.0f} MiB)   numpy "
            f"{float(secs_n):6.3f} s ({rss_n:.0f} MiB)   x{ratio:,.0f}"
        )


# -- 3. whole-space analytic scoring --------------------------------------------------------


def whole_space_costs(cache: Path) -> None:
    print("3. Whole-space analytic scoring: params, flops, relu_count of all 423,624 cells")
    out, rss = child(
        """
        from nasfilter.spaces import get_space
        sp = get_space("nb101")
        sp.unrank(0)  # the table, from the cache
        t1, c1 = time.perf_counter(), cpu()
        n = 0
        for arch in sp.enumerate():
            c = sp.costs(arch)
            c.params, c.flops, c.relu_count
            n += 1
        loop, loop_cpu = time.perf_counter() - t1, cpu() - c1
        t2 = time.perf_counter()
        arrays = sp.all_costs()
        bulk = time.perf_counter() - t2
        print(n, loop, bulk, loop_cpu)
        """,
        cache,
    )
    n, loop, bulk, loop_cpu = out[-1].split()
    print(
        f"   space.costs(identity) for every identity (enumerate + parse + costs): "
        f"{float(loop):6.2f} s wall ({float(loop_cpu):.2f} s CPU, "
        f"{float(loop) / int(n) * 1e6:.0f} us/cell), peak RSS {rss:.0f} MiB"
    )
    print(f"   space.all_costs() (numpy, one call):                          {float(bulk):6.2f} s")
    cli_score_all(cache)


def cli_score_all(cache: Path) -> None:
    """``nasfilter score nb101 --all`` in a fresh process, timed from outside (process
    start included), into a fresh database, with the enumeration already in ``cache``."""
    import os

    with tempfile.TemporaryDirectory() as d:
        db = Path(d) / "nb101.duckdb"
        env = {**os.environ, "NASFILTER_CACHE": str(cache)}
        t = time.perf_counter()
        r = subprocess.run(
            [sys.executable, "-m", "nasfilter", "score", "nb101", "--all", "--db", str(db)],
            capture_output=True,
            text=True,
            env=env,
        )
        wall = time.perf_counter() - t
        if r.returncode != 0:
            print(f"   `nasfilter score nb101 --all` failed: {r.stderr.strip()[-300:]}")
            return
        rows = [ln for ln in r.stderr.splitlines() if "completed" in ln]
        print(
            f"   `nasfilter score nb101 --all` (relu_count, params, flops, size_kb: "
            f"1,694,496 rows into a fresh DuckDB file, process start included): {wall:6.2f} s "
            f"(target <= 20 s once the enumeration is cached; database "
            f"{db.stat().st_size / 2**20:.0f} MiB)"
        )
        for ln in rows:
            print("     " + ln.strip())


# -- 4. TFRecord reading ---------------------------------------------------------------------


def tfrecord_reading(records: int, cache: Path) -> None:
    print(f"4. Reading an NB101 TFRecord file ({records:,} synthetic records, genuine format)")
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "synthetic.tfrecord"
        out, _ = child(
            f"""
            import base64, json, struct
            import numpy as np
            from nasfilter.spaces import get_space
            from nasfilter.truth.tfrecord import frame
            sp = get_space("nb101")
            def pbd(f, x): return bytes([f << 3 | 1]) + struct.pack("<d", x)
            def ev(e, v): return pbd(1, e) + pbd(2, 10.0 * e) + pbd(3, 1.0) + pbd(4, v) + pbd(5, v)
            def msg(b): return bytes([1 << 3 | 2, len(b)]) + b
            n_cells = -(-{records} // 3)
            idx = np.random.default_rng(0).choice(sp.size, n_cells, replace=False)
            with open({str(path)!r}, "wb") as f:
                for i in idx.tolist():
                    arch = sp.unrank(i)
                    spec = sp.spec(arch)
                    adj = "".join(str(x) for r in spec["matrix"] for x in r)
                    h = format(i, "032x")  # stand-in hashes: the hash check is skipped below
                    for r in range(3):
                        m = msg(ev(0.0, 0.1)) + msg(ev(54.0, 0.8)) + msg(ev(108.0, 0.9 + r / 100))
                        m += bytes([2 << 3]) + bytes([1])
                        rec = json.dumps([h, 108, adj, ",".join(spec["ops"]),
                                          base64.b64encode(m).decode()]).encode()
                        f.write(frame(rec))
            print(n_cells * 3)
            """,
            cache,
        )
        n = int(out[-1])
        size = path.stat().st_size
        out, rss = child(
            f"""
            from nasfilter.truth import nb101
            nb101._check_hashes = lambda *a: None  # stand-in hashes in this synthetic file
            t1, c1 = time.perf_counter(), cpu()
            ex = nb101.read_nb101({str(path)!r})
            print(len(ex.arch), time.perf_counter() - t1, cpu() - c1)
            """,
            cache,
        )
        cells, secs, cpu = out[-1].split()
        secs_f = float(secs)
        only108 = 1_270_872 / (n / secs_f)
        print(
            f"   {size / 2**20:.1f} MiB, {n:,} records, {int(cells):,} cells: {secs_f:.2f} s wall "
            f"({float(cpu):.2f} s CPU; {size / 2**20 / secs_f:.1f} MiB/s, {n / secs_f:,.0f} "
            f"records/s), peak RSS {rss:.0f} MiB; at that rate nasbench_only108 "
            f"(1,270,872 records) takes ~{only108:.0f} s"
        )


# -- 5. hash index ---------------------------------------------------------------------------


def hash_index(cache: Path) -> None:
    print("5. The hash index (every cell's NAS-Bench-101 hash), built once")
    out, rss = child(
        """
        from nasfilter.spaces.nb101 import enumeration
        t = enumeration.Table(on_notice=lambda m: None)
        t1, c1 = time.perf_counter(), cpu()
        h = t.hashes()
        print(len(h), time.perf_counter() - t1, len({bytes(r) for r in h}), cpu() - c1)
        """,
        cache,
    )
    n, secs, distinct, cpu = out[-1].split()
    print(
        f"   {int(n):,} hashes in {float(secs):.1f} s wall ({float(cpu):.1f} s CPU, "
        f"{float(secs) / int(n) * 1e6:.0f} us/cell), "
        f"{int(distinct):,} distinct, peak RSS {rss:.0f} MiB"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline-vertices", type=int, default=6, choices=(5, 6, 7))
    ap.add_argument("--records", type=int, default=200_000)
    ap.add_argument("--hashes", action="store_true", help="also build the hash index")
    ap.add_argument(
        "--only-cli",
        action="store_true",
        help="only `nasfilter score nb101 --all` (section 3's last figure), cache warmed first",
    )
    ap.add_argument("--repeat", type=int, default=1, help="with --only-cli: runs of it")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        cache = Path(d)
        t = time.perf_counter()
        if args.only_cli:
            child(
                "from nasfilter.spaces.nb101 import enumeration\n"
                "enumeration.Table(on_notice=lambda m: None)\n",
                cache,
            )
            print("3. `nasfilter score nb101 --all`, enumeration cached")
            for _ in range(max(1, args.repeat)):
                cli_score_all(cache)
            return
        enumeration_and_cache(cache)
        generator_side_by_side(args.baseline_vertices, cache)
        whole_space_costs(cache)
        tfrecord_reading(args.records, cache)
        if args.hashes:
            hash_index(cache)
        print(f"(benchmark wall time {time.perf_counter() - t:.0f} s)")


if __name__ == "__main__":
    main()
