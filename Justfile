# nasfilter tasks. `just --list` shows them. (`just` is on PyPI as rust-just.)

python := "python3"

# Install nasfilter with its dev tools (CPU torch first: a bare torch pulls CUDA).
setup:
    {{python}} -m pip install torch==2.13.0
    {{python}} -m pip install -e '.[dev,ray]'

# Run the test suite.
test *args:
    {{python}} -m pytest {{args}}

# Lint, format check and type check.
lint:
    {{python}} -m ruff check nasfilter tests bench
    {{python}} -m ruff format --check nasfilter tests bench
    {{python}} -m mypy

# Format the code.
fmt:
    {{python}} -m ruff format nasfilter tests bench
    {{python}} -m ruff check --fix nasfilter tests bench

# Run the benchmarks (each prints its figures beside their baselines).
bench:
    {{python}} bench/bench_score.py
    {{python}} bench/bench_analyze.py
    {{python}} bench/bench_naswot.py --n 20
    {{python}} bench/bench_search.py --n 100
    {{python}} bench/bench_nb101.py
    {{python}} bench/bench_munas.py
    {{python}} bench/bench_proxies.py --n 10
    {{python}} bench/bench_distributed.py --n 40

# Score the whole TSS space and list the 20 best candidates under 200 kB.
demo db="demo.duckdb":
    nasfilter score nats-tss --all --db {{db}}
    nasfilter top --k 20 --max-kb 200 --db {{db}}
