"""Foundation benchmarks (issue 2). Prints each figure beside its baseline or target.

    python bench/bench_score.py [--archs 100] [--only-help]

1. Whole-space runs through the CLI into a fresh database (TSS 15,625; SSS 32,768) with
   relu_count, params, flops: wall time (target < 5 s each) and peak RSS, beside the
   peak RSS of a bare `nasfilter --version` process.
2. Per-architecture analytic relu_count vs building the network and counting with hooks
   (the dissertation's way), same architectures, same run (target >= 1000x).
3. `nasfilter --help` wall time (target < 0.5 s, torch not imported) beside `python -c pass`,
   and beside the same help without ``main()``'s light import of ``typer.rich_utils``.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = """
import resource, sys, time
t0 = time.perf_counter()
sys.argv = ["nasfilter", *sys.argv[1:]]
from nasfilter.cli import main
try:
    main()
except SystemExit as e:
    code = e.code or 0
else:
    code = 0
wall = time.perf_counter() - t0
rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(f"@@ {wall:.3f} {rss:.1f} {code}", file=sys.stderr)
"""


def run_cli(*args: str) -> tuple[float, float, float]:
    """(wall seconds measured outside, wall inside, peak RSS MiB) of one CLI process."""
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-c", CHILD, *args], capture_output=True, text=True)
    outer = time.perf_counter() - t0
    line = [x for x in p.stderr.splitlines() if x.startswith("@@ ")]
    if p.returncode or not line or line[-1].split()[3] != "0":
        raise SystemExit(f"nasfilter {' '.join(args)} failed:\n{p.stderr}")
    _, inner, rss, _ = line[-1].split()
    return outer, float(inner), float(rss)


def whole_space() -> None:
    print("1. Whole-space scoring through the CLI (relu_count, params, flops), fresh database")
    _, _, base_rss = run_cli("--version")
    print(f"   baseline: `nasfilter --version` process peak RSS {base_rss:.0f} MiB")
    with tempfile.TemporaryDirectory() as d:
        for space, n in (("nats-tss", 15_625), ("nats-sss", 32_768)):
            db = Path(d) / f"{space}.duckdb"
            outer, inner, rss = run_cli(
                "score", space, "--all", "--metrics", "relu_count,params,flops", "--db", str(db)
            )
            verdict = "OK" if outer < 5 else "OVER TARGET"
            print(
                f"   {space}: {n:,} architectures in {outer:.2f} s wall "
                f"(process start included; target < 5 s: {verdict}), "
                f"{n / outer:,.0f} arch/s, peak RSS {rss:.0f} MiB "
                f"(+{rss - base_rss:.0f} MiB over baseline)"
            )


def analytic_vs_hooks(n_archs: int) -> None:
    import torch

    from nasfilter.metrics.probe import relu_count as hook_relu_count
    from nasfilter.spaces import get_space
    from nasfilter.spaces.nats import network_costs, parse_cell

    print(f"2. relu_count per architecture: analytic vs build + hooks ({n_archs} per space)")
    torch.set_num_threads(2)
    for name in ("nats-tss", "nats-sss"):
        sp = get_space(name)
        archs = list(sp.sample(n_archs, seed=11))
        network_costs.cache_clear()
        parse_cell.cache_clear()
        t0 = time.perf_counter()
        fast = [sp.costs(a).relu_count for a in archs]
        t_fast = (time.perf_counter() - t0) / len(archs)
        t0 = time.perf_counter()
        slow = [hook_relu_count(sp.build(a, 10), (1, 3, 32, 32)) for a in archs]
        t_slow = (time.perf_counter() - t0) / len(archs)
        assert fast == slow, "analytic and measured counts differ"
        ratio = t_slow / t_fast
        verdict = "OK" if ratio >= 1000 else "BELOW TARGET"
        print(
            f"   {name}: analytic {t_fast * 1e6:,.1f} us/arch vs build+hooks "
            f"{t_slow * 1e3:,.2f} ms/arch -> {ratio:,.0f}x (target >= 1000x: {verdict}); "
            "counts identical"
        )


def help_time(repeats: int = 5) -> None:
    print(f"3. `nasfilter --help` wall time (median of {repeats})")
    exe = [sys.executable, "-m", "nasfilter", "--help"]
    check = (
        "import sys,runpy; sys.argv=['nasfilter','--help']\n"
        "try: runpy.run_module('nasfilter', run_name='__main__')\n"
        "except SystemExit: pass\n"
        "print('torch imported' if 'torch' in sys.modules else 'torch not imported',"
        " file=sys.stderr)"
    )

    def timed(cmd: list[str]) -> float:
        t0 = time.perf_counter()
        subprocess.run(cmd, capture_output=True, check=True)
        return time.perf_counter() - t0

    # the same help through typer alone, without main()'s light import of typer.rich_utils
    # (what --help cost before it): the baseline of that change, measured beside it
    heavy = [
        sys.executable, "-c",
        "import sys; sys.argv = ['nasfilter', '--help']\n"
        "from nasfilter.cli import app\n"
        "try: app()\nexcept SystemExit: pass",
    ]  # fmt: skip
    t_help = statistics.median(timed(exe) for _ in range(repeats))
    t_heavy = statistics.median(timed(heavy) for _ in range(repeats))
    t_base = statistics.median(timed([sys.executable, "-c", "pass"]) for _ in range(repeats))
    t_torch = timed([sys.executable, "-c", "import torch"])
    torch_state = (
        subprocess.run([sys.executable, "-c", check], capture_output=True, text=True)
        .stderr.strip()
        .splitlines()[-1]
    )
    verdict = "OK" if t_help < 0.5 else "OVER TARGET"
    print(
        f"   nasfilter --help {t_help:.3f} s (target < 0.5 s: {verdict}; {torch_state}) | "
        f"baseline `python -c pass` {t_base:.3f} s | `python -c 'import torch'` {t_torch:.3f} s"
    )
    print(
        f"   without the light import of typer.rich_utils (rich.markdown, rich.traceback, "
        f"pygments loaded): {t_heavy:.3f} s"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--archs", type=int, default=100, help="architectures per space in part 2")
    ap.add_argument("--only-help", action="store_true", help="part 3 only")
    args = ap.parse_args()
    if not args.only_help:
        whole_space()
        analytic_vs_hooks(args.archs)
    help_time()


if __name__ == "__main__":
    main()
