"""Distributed scoring (issue 15): local worker processes and a real local Ray cluster.

The cluster is started once for the module with ``ray.init`` on the loopback address
(127.0.0.1), dashboard off, usage reporting off, two CPUs; nothing is mocked: actors are
real processes, killed with SIGKILL. The reference for every value is a local run in
this process with the same settings: scores must be bitwise equal whatever the backend.
Tests that need Ray skip (saying why) when it is not installed; CI installs it.
"""

from __future__ import annotations

import importlib.util
import math
import os
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from nasfilter import engine
from nasfilter.errors import RunInterrupted
from nasfilter.scoring.backends import BACKENDS, Backend, BackendSpec, open_backend
from nasfilter.scoring.settings import RunSettings
from nasfilter.store import Store
from tests.conftest import invoke

pytestmark = pytest.mark.usefixtures("one_torch_thread")

N, K = 16, 16  # NASWOT on 16 TSS cells, a batch of 16 synthetic 16x16 images
METRICS, SHAPE = "naswot", "imagenet16-120"
HAS_RAY = importlib.util.find_spec("ray") is not None
needs_ray = pytest.mark.skipif(
    not HAS_RAY, reason="ray is not installed (pip install 'nasfilter[ray]'; CI installs it)"
)


def request(n: int = N, metrics: str = METRICS) -> engine.ScoreRequest:
    return engine.ScoreRequest(
        "nats-tss", n=n, metrics=metrics, data="synthetic", shape=SHAPE, batch_size=K
    )


def stored(db: Path, run: int) -> dict[tuple[str, str], tuple[bytes, str, int]]:
    """(arch, metric) -> (the value's 8 bytes, status, position) of a run."""
    with Store.open(db, read_only=True) as st:
        rows = st.con.execute(
            "SELECT arch, metric, value, status, position FROM scores WHERE run_id = ?", [run]
        ).fetchall()
    return {(a, m): (struct.pack("<d", v), s, p) for a, m, v, s, p in rows}


def run_settings(db: Path, run: int) -> dict[str, Any]:
    with Store.open(db, read_only=True) as st:
        return st.get_run(run)["settings"]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie (exited, not yet reaped) is not alive
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def wait_gone(pids: list[int], seconds: float = 20.0) -> list[int]:
    deadline = time.monotonic() + seconds
    left = [p for p in pids if alive(p)]
    while left and time.monotonic() < deadline:
        time.sleep(0.1)
        left = [p for p in left if alive(p)]
    return left


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, int, dict[Any, Any]]:
    """A local in-process run of the settings every test uses."""
    db = tmp_path_factory.mktemp("distributed") / "reference.duckdb"
    with Store.open(db) as st:
        run = engine.start(st, request())
        engine.execute(st, run)
    values = stored(db, run)
    assert len(values) == N * 3  # naswot, params, size_kb
    return db, run, values


@pytest.fixture(scope="module")
def cluster() -> Iterator[str]:
    """A real Ray cluster on 127.0.0.1 for this module; yields its GCS address. It
    declares 4 CPUs (Ray's resources are logical) so that a second driver can start its
    own actors while the module's are idle."""
    if not HAS_RAY:
        pytest.skip("ray is not installed (pip install 'nasfilter[ray]'; CI installs it)")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"  # node address: loopback
    import logging

    import ray

    if ray.is_initialized():  # pragma: no cover - another module left one running
        ray.shutdown()
    ray.init(
        num_cpus=4,  # logical: the module's two actors, and two for a driver's own
        include_dashboard=False,
        _node_ip_address="127.0.0.1",
        object_store_memory=100 * 1024**2,
        log_to_driver=False,
        logging_level=logging.ERROR,
        namespace="nasfilter-tests",
    )
    address = ray.get_runtime_context().gcs_address
    assert address.startswith("127.0.0.1:"), address
    try:
        yield address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def actors(cluster: str, reference: tuple[Path, int, dict[Any, Any]]) -> Iterator[Backend]:
    """Two Ray actors for the settings every test uses, kept across runs (a caller's
    backend serves any number of runs with the same settings)."""
    settings = RunSettings.from_json(run_settings(reference[0], reference[1]))
    backend = open_backend(BackendSpec.make("ray", workers=2), settings, wait_all=True)
    yield backend
    backend.close()


# -- options ----------------------------------------------------------------------------------
def test_backend_choices_match_the_library() -> None:
    from nasfilter.cli.options import BackendName

    assert tuple(b.value for b in BackendName) == BACKENDS


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["--backend", "spark"], "'spark' is not one of 'local', 'ray'"),
        (["--workers", "0"], "--workers must be an integer, at least 1 (got 0)"),
        (["--workers", "many"], "--workers must be an integer, at least 1, or auto (got 'many')"),
        (["--gpus-per-worker", "0.5"], "--gpus-per-worker reserves GPUs on a Ray cluster"),
        (["--ray-address", "auto"], "--ray-address needs --backend ray"),
        (["--cpus-per-worker", "2"], "--cpus-per-worker applies to worker processes"),
        (["--backend", "ray", "--gpus-per-worker", "1.5"], "at most 1 (a share of one GPU)"),
        (["--backend", "ray", "--gpus-per-worker", "-1"], "0 or more (got -1.0)"),
        (["--backend", "ray", "--device", "cuda"], "needs GPUs reserved for each worker"),
        (
            ["--backend", "ray", "--device", "cpu", "--gpus-per-worker", "0.5"],
            "--device cpu would not use",
        ),
    ],
)
def test_bad_backend_options_are_one_line(
    runner: CliRunner, db: Path, args: list[str], says: str
) -> None:
    r = invoke(runner, "score", "nats-tss", "--n", "3", "--db", str(db), *args)
    assert r.exit_code == 2, r.output
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: ") and says in lines[0], r.stderr
    assert not db.exists()  # refused before the database is touched


def test_ray_not_installed_says_how_to_get_it(
    runner: CliRunner, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` now fails as if absent
    r = invoke(runner, "score", "nats-tss", "--n", "3", "--db", str(db), "--backend", "ray")
    assert r.exit_code == 2 and not db.exists()
    assert r.stderr.strip() == (
        "Error: --backend ray needs Ray, which is not installed. pip install 'nasfilter[ray]'"
    )


@needs_ray
def test_an_address_where_nothing_listens_is_one_line(runner: CliRunner, db: Path) -> None:
    with socket.socket() as s:  # a loopback port that was free a moment ago
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t = time.perf_counter()
    r = invoke(
        runner, "score", "nats-tss", "--n", "3", "--db", str(db),
        "--backend", "ray", "--ray-address", f"127.0.0.1:{port}",
    )  # fmt: skip
    assert r.exit_code == 5
    assert r.stderr.startswith(f"Error: Cannot connect to the Ray cluster at 127.0.0.1:{port}")
    assert "ray start --head" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert time.perf_counter() - t < 10  # not Ray's minutes of retries
    assert not db.exists()  # refused before a run was made


# -- identical results -------------------------------------------------------------------------
@needs_ray
def test_local_processes_and_ray_store_bitwise_equal_scores(
    reference: tuple[Path, int, dict[Any, Any]], actors: Backend, tmp_path: Path
) -> None:
    ref_db, ref_run, ref = reference
    db = tmp_path / "backends.duckdb"
    runs = []
    for backend in (BackendSpec.make("local", workers=2), actors):
        with Store.open(db) as st:
            run = engine.start(st, request())
            summary = engine.execute(st, run, backend=backend)
        assert summary.status == "completed" and summary.archs_scored == N
        got = stored(db, run)
        assert got == ref  # every value bit for bit, status and position
        runs.append(run)
    ref_settings = run_settings(ref_db, ref_run)
    recorded = [run_settings(db, r) for r in runs]
    import torch

    threads = torch.get_num_threads()  # this process's: recorded with an in-process run
    assert ref_settings["backends"] == [
        {"backend": "local", "workers": 1, "torch_threads": threads}
    ]
    assert recorded[0]["backends"][0]["backend"] == "processes"
    assert recorded[1]["backends"][0] == {
        "backend": "ray", "workers": 2, "address": None, "gpus_per_worker": 0.0,
        "cpus_per_worker": 1.0, "torch_threads": 1, "retries": 2,
    }  # fmt: skip
    # ... and the backend is not part of the reuse key: stored values serve any backend
    for s in recorded:
        for m in ("naswot", "params", "size_kb"):
            a = RunSettings.from_json(s).reuse_key(m)
            assert a == RunSettings.from_json(ref_settings).reuse_key(m)
        assert RunSettings.from_json(s).to_json() == RunSettings.from_json(ref_settings).to_json()


def test_an_analytic_run_on_worker_processes_matches_in_process(db: Path) -> None:
    """Analytic-only runs travel as column chunks (ChunkResult)."""
    metrics = "relu_count,params,flops"
    with Store.open(db) as st:
        local = engine.start(st, engine.ScoreRequest("nats-tss", n=300, metrics=metrics))
        engine.execute(st, local)
        spread = engine.start(st, engine.ScoreRequest("nats-tss", n=300, metrics=metrics))
        summary = engine.execute(st, spread, backend=BackendSpec.make("local", workers=2))
    assert summary.archs_scored == 300
    assert stored(db, spread) == stored(db, local) and len(stored(db, local)) == 300 * 4


def test_workers_auto_is_one_process_per_usable_cpu(
    runner: CliRunner, db: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from nasfilter.scoring import backends

    assert backends.usable_cpus() == len(os.sched_getaffinity(0))
    assert BackendSpec.make("local", workers=" Auto ").workers == backends.usable_cpus()
    assert BackendSpec.make("ray", workers="auto").workers is None  # the cluster decides
    assert BackendSpec.make("local", workers="3").workers == 3
    monkeypatch.setattr(backends, "usable_cpus", lambda: 2)
    r = invoke(runner, "score", "nats-tss", "--n", "200", "-m", "relu_count", "--workers",
               "auto", "--db", str(db))  # fmt: skip
    assert r.exit_code == 0, r.output
    run = int(r.stdout.strip())
    with Store.open(db, read_only=True) as st:
        recorded = st.get_run(run)["settings"]["backends"]
    assert recorded[0]["backend"] == "processes" and recorded[0]["workers"] == 2
    assert len(stored(db, run)) == 200 * 3


# -- faults --------------------------------------------------------------------------------------
@needs_ray
def test_a_killed_actor_is_replaced_and_its_chunk_retried_without_loss(
    reference: tuple[Path, int, dict[Any, Any]], actors: Backend, db: Path
) -> None:
    _, _, ref = reference
    before = dict(actors.stats.as_dict())
    pids = actors.pids()
    assert len(pids) == 2 and os.getpid() not in pids
    killed: list[int] = []

    def kill_a_busy_actor(k: int) -> None:
        if killed:
            return
        d = actors.dispatcher
        busy = [w for w, chunks in d.inflight.items() if chunks and w in d.ready]
        pid = actors.pool.info[busy[0]]["pid"]  # type: ignore[attr-defined]
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    with Store.open(db) as st:
        run = engine.start(st, request())
        summary = engine.execute(st, run, backend=actors, on_progress=kill_a_busy_actor)
    after = actors.stats.as_dict()
    assert summary.status == "completed" and summary.archs_scored == N
    assert killed[0] in pids and killed[0] not in actors.pids() and wait_gone(killed) == []
    assert after["workers_died"] - before["workers_died"] == 1
    assert after["workers_started"] - before["workers_started"] == 1  # a replacement
    assert after["retried"] > before["retried"] and after["failed"] == before["failed"]
    assert stored(db, run) == ref  # nothing lost, nothing failed, the same values


def test_an_architecture_whose_worker_keeps_dying_is_stored_as_failed(db: Path) -> None:
    """Every worker that is scoring is killed: the architecture is tried 1 + retries
    times, then stored with status failed and the error; the run completes."""
    with Store.open(db) as st:
        run = engine.start(st, request(n=1))
        settings = RunSettings.from_json(st.get_run(run)["settings"])
        st.release()
        spec = BackendSpec(name="local", workers=2, retries=1)
        backend = open_backend(spec, settings)
        stop = threading.Event()
        killed: set[int] = set()

        def killer() -> None:
            while not stop.is_set():
                d = backend.dispatcher
                try:
                    busy = [w for w, c in list(d.inflight.items()) if c and w in d.ready]
                    for w in busy:
                        pid = backend.pool.info[w]["pid"]  # type: ignore[attr-defined]
                        if pid not in killed:
                            os.kill(pid, signal.SIGKILL)
                            killed.add(pid)
                except (RuntimeError, KeyError, ProcessLookupError):
                    pass
                time.sleep(0.01)

        thread = threading.Thread(target=killer, daemon=True)
        thread.start()
        try:
            summary = engine.execute(st, run, backend=backend)
        finally:
            stop.set()
            thread.join()
            stats = backend.stats
            backend.close()
        rows = st.con.execute(
            "SELECT metric, value, status FROM scores WHERE run_id = ?", [run]
        ).fetchall()
    assert summary.status == "completed" and summary.archs_scored == 1
    assert stats.failed == 1 and stats.workers_died == 2 and len(killed) == 2
    assert sorted(m for m, _, _ in rows) == ["naswot", "params", "size_kb"]
    for _, value, status in rows:
        assert math.isnan(value)
        assert status == "failed: worker died: worker process killed by SIGKILL"
    assert wait_gone(sorted(killed)) == []


DRIVER = """
import sys, time
from dataclasses import replace
from nasfilter import engine
from nasfilter.scoring.backends import BackendSpec, open_backend
from nasfilter.scoring.settings import RunSettings
from nasfilter.store import Store

db, kind, address = sys.argv[1], sys.argv[2], sys.argv[3] or None
s = Store.open(db)
run = engine.start(s, engine.ScoreRequest(
    "nats-tss", n={n}, metrics="{metrics}", data="synthetic", shape="{shape}",
    batch_size={k}))
settings = RunSettings.from_json(s.get_run(run)["settings"])
s.release()
spec = replace(BackendSpec.make(kind, workers=2, ray_address=address), start_timeout=60)
backend = open_backend(spec, settings, wait_all=True)
print(run, *backend.pids(), flush=True)
seen = 0


def gate(k):
    # Progress comes before the flush of the architecture it counts: with flush_seconds=0
    # every earlier one is stored. Once 3 are counted, say so and wait to be killed.
    global seen
    seen += k
    if seen >= 3:
        print("stored", seen, flush=True)
        time.sleep(600)


engine.execute(s, run, backend=backend, flush_seconds=0.0, on_progress=gate)
print("finished", flush=True)
"""


def kill_driver_mid_run(db: Path, tmp_path: Path, kind: str, address: str) -> tuple[int, int]:
    """Start a driver in a child process, SIGKILL it once some architectures (not all)
    are stored; returns (run, architectures stored). Its workers must go with it."""
    script = tmp_path / "driver.py"
    script.write_text(DRIVER.format(n=N, metrics=METRICS, shape=SHAPE, k=K))
    p = subprocess.Popen(
        [sys.executable, str(script), str(db), kind, address],
        stdout=subprocess.PIPE,
        text=True,
        cwd=str(Path(__file__).resolve().parents[1]),
    )
    try:
        assert p.stdout is not None
        first = p.stdout.readline().split()
        assert len(first) == 3, first
        run, workers = int(first[0]), [int(x) for x in first[1:]]
        gate = p.stdout.readline().split()  # the driver waits here until it is killed
        assert gate[:1] == ["stored"], gate
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:  # pragma: no cover - only when an assertion failed above
            p.kill()
            p.wait()
    assert p.returncode == -signal.SIGKILL
    assert wait_gone(workers) == []  # the workers stopped with their driver
    with Store.open(db, read_only=True) as st:
        status = st.get_run(run)["status"]
        rows, archs = st.con.execute(
            "SELECT count(*), count(DISTINCT arch) FROM scores WHERE run_id = ?", [run]
        ).fetchone()
    assert status == "running" and 2 <= archs < N and rows == 3 * archs  # whole archs only
    return run, archs


@needs_ray
@pytest.mark.parametrize(
    ("killed", "resumed"),
    [("ray", "local"), ("local", "ray")],
    ids=["ray-then-local", "local-then-ray"],
)
def test_a_killed_driver_resumes_without_lost_or_duplicated_rows(
    reference: tuple[Path, int, dict[Any, Any]],
    cluster: str,
    actors: Backend,
    db: Path,
    tmp_path: Path,
    killed: str,
    resumed: str,
) -> None:
    """Killed on Ray, resumed in this process; killed with local workers, resumed on
    Ray."""
    _, _, ref = reference
    run, before = kill_driver_mid_run(db, tmp_path, killed, cluster if killed == "ray" else "")
    backend = actors if resumed == "ray" else None
    with Store.open(db) as st:
        summary = engine.execute(st, run, backend=backend)
        (dupes,) = st.con.execute(
            "SELECT count(*) - count(DISTINCT (arch, metric)) FROM scores WHERE run_id = ?",
            [run],
        ).fetchone()
        backends = [b["backend"] for b in st.get_run(run)["settings"]["backends"]]
    assert summary.status == "completed"
    assert summary.archs_skipped == before and summary.archs_scored == N - before
    assert dupes == 0 and stored(db, run) == ref
    assert backends == ({"ray": ["ray", "local"], "local": ["processes", "ray"]}[killed])


@needs_ray
def test_ctrl_c_stops_the_actors_and_marks_the_run_interrupted(
    actors: Backend, db: Path, tmp_path: Path
) -> None:
    """(Last of the Ray tests: it stops the module's actors.) 200 architectures: the
    interrupt comes long before the end, while the driver waits for results."""
    backend = actors
    pids = backend.pids()
    assert pids
    with Store.open(db) as st:
        run = engine.start(st, request(n=200))
        timer: list[threading.Timer] = []

        def ctrl_c_soon(k: int) -> None:  # SIGINT while the driver waits on its actors
            if not timer:
                timer.append(threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT)))
                timer[0].start()

        with pytest.raises(RunInterrupted, match=f"score --resume {run}"):
            engine.execute(st, run, backend=backend, on_progress=ctrl_c_soon)
        timer[0].join()
        status = st.get_run(run)["status"]
        (archs,) = st.con.execute(
            "SELECT count(DISTINCT arch) FROM scores WHERE run_id = ?", [run]
        ).fetchone()
    assert status == "interrupted" and 1 <= archs < 200
    assert backend.pids() == [] and wait_gone(pids) == []  # the actors were stopped
