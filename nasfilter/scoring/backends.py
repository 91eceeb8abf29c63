"""Backends: where a run's architectures are scored.

    driver: plan -> Dispatcher -- chunks --> workers (each: one Scorer, built once)
            writer <-- results (whole architectures, any order) --/

``local`` with one worker is the in-process path of ``nasfilter.engine`` (a ``Scorer``
in the driver itself; nothing here is used). With ``--workers N`` (N > 1) the ``local``
backend starts N worker processes on this machine (``ProcessPool``); ``ray`` starts N
long-lived Ray actors (``nasfilter.scoring.ray_backend.RayPool``). Each worker builds one
``Scorer`` from the run's settings (network builder, input batch, device) and then scores
the chunks it is sent; the driver alone writes to DuckDB.

The ``Dispatcher`` (shared by both pools) decides what each worker gets:

* chunk sizes adapt to the measured time per architecture so that a chunk is about
  ``chunk_seconds`` (default 1 s) of work, two chunks in flight per worker (the next
  one waits in the worker's queue while it scores the current one), and chunks shrink
  near the end so that the workers finish together;
* a worker that dies (killed, out of memory, its node lost) loses the chunk it was
  scoring: that chunk is retried on another worker, one architecture at a time, and an
  architecture whose worker dies ``retries`` more times is stored with status
  ``failed: ...`` and the error; an unexpected exception in a worker counts the same;
  dead workers are replaced (up to a bound);
* a nasfilter error in a worker (the data changed, out of memory on the first
  architecture) ends the run with that one-line error, as a local run would.

Results are identical whatever the backend: each architecture's weights come from the run
seed and its identity (``arch_seed``), never from a worker or an order.

No module here imports torch or ray at import time.
"""

from __future__ import annotations

import math
import os
import time
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from nasfilter.errors import DeviceError, NasfilterError, UsageError
from nasfilter.scoring.settings import RunSettings

BACKENDS: tuple[str, ...] = ("local", "ray")
RAY_HINT = "pip install 'nasfilter[ray]'"

#: Chunks in flight per worker: the one it scores and the next one, queued.
DEPTH = 2


class ClusterError(DeviceError):
    """The workers cannot be started or reached (a Ray cluster that does not answer, no
    worker left). Exit code 5, like other device problems."""


# -- settings ---------------------------------------------------------------------------------
def _positive(name: str, value: Any, integer: bool = False, zero: bool = False) -> float:
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    if ok and integer:
        ok = float(value).is_integer()
    if not ok or value < 0 or (value == 0 and not zero):
        what = "an integer" if integer else "a number"
        least = "0 or more" if zero else ("at least 1" if integer else "positive")
        raise UsageError(f"{name} must be {what}, {least} (got {value!r}).")
    return float(value)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask; ``os.cpu_count()`` where
    there is none): what ``--workers auto`` starts, one worker each."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # pragma: no cover - macOS, Windows
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True)
class BackendSpec:
    """Where a run is scored; recorded with the run, never part of the reuse key.

    ``workers``: worker processes (local) or actors (ray); None = 1 locally, and on Ray
    as many as the cluster holds (its CPUs / ``cpus_per_worker``, or its GPUs /
    ``gpus_per_worker``). ``cpus_per_worker`` is also each worker's number of torch
    threads (rounded down, at least 1). ``address``: Ray's ``auto``, ``host:port`` or
    ``ray://host:port``; None = a private Ray instance on this machine (or
    ``$RAY_ADDRESS`` when set). ``retries``: how often the architectures of a dead
    worker are tried again. ``chunk_seconds``: the work a chunk aims at.
    """

    name: str = "local"
    workers: int | None = None
    address: str | None = None
    gpus_per_worker: float = 0.0
    cpus_per_worker: float = 1.0
    retries: int = 2
    chunk_seconds: float = 1.0
    start_timeout: float = 300.0

    @classmethod
    def make(
        cls,
        backend: str = "local",
        workers: int | str | None = None,
        ray_address: str | None = None,
        gpus_per_worker: float | None = None,
        cpus_per_worker: float | None = None,
        device: str = "auto",
    ) -> BackendSpec:
        """Validated options (what ``nasfilter score`` passes); UsageError otherwise.
        ``workers``: a number, or ``"auto"``: locally one per usable CPU
        (``usable_cpus()``), on Ray as many as the cluster holds."""
        name = str(backend).strip().lower()
        if name not in BACKENDS:
            raise UsageError(
                f"Unknown --backend {backend!r}.", f"Choose one of: {', '.join(BACKENDS)}."
            )
        if isinstance(workers, str):
            text = workers.strip().lower()
            if text == "auto":
                workers = usable_cpus() if name == "local" else None
            else:
                try:
                    workers = int(text)
                except ValueError:
                    raise UsageError(
                        f"--workers must be an integer, at least 1, or auto (got {workers!r}).",
                        "E.g. --workers 4, or --workers auto for one per CPU.",
                    ) from None
        if workers is not None:
            workers = int(_positive("--workers", workers, integer=True))
        cpus = 1.0 if cpus_per_worker is None else _positive("--cpus-per-worker", cpus_per_worker)
        if cpus_per_worker is not None and name == "local" and (workers or 1) == 1:
            raise UsageError(
                "--cpus-per-worker applies to worker processes (--workers N, N > 1) or "
                "--backend ray.",
                "Drop it, or pass --workers N.",
            )
        gpus = 0.0
        if gpus_per_worker is not None:
            gpus = _positive("--gpus-per-worker", gpus_per_worker, zero=True)
            if name != "ray":
                raise UsageError(
                    "--gpus-per-worker reserves GPUs on a Ray cluster; it needs --backend ray.",
                    "Locally, every worker uses --device.",
                )
            if gpus > 1 and not gpus.is_integer():
                raise UsageError(
                    f"--gpus-per-worker must be at most 1 (a share of one GPU) or a whole "
                    f"number (got {gpus_per_worker}).",
                    "E.g. 0.25 packs four workers on each GPU.",
                )
        if ray_address is not None:
            ray_address = str(ray_address).strip()
            if name != "ray":
                raise UsageError("--ray-address needs --backend ray.")
            if not ray_address:
                raise UsageError(
                    "--ray-address is empty.", "Pass auto, HOST:PORT or ray://HOST:PORT."
                )
        base = str(device).strip().lower().split(":")[0]
        if name == "ray" and gpus > 0 and base == "cpu":
            raise UsageError(
                "--gpus-per-worker reserves GPUs that --device cpu would not use.",
                "Drop one of them.",
            )
        if name == "ray" and gpus == 0 and base == "cuda":
            raise UsageError(
                "--device cuda on Ray needs GPUs reserved for each worker.",
                "Pass --gpus-per-worker F (e.g. 0.25 packs four workers on each GPU).",
            )
        return cls(
            name=name, workers=workers, address=ray_address, gpus_per_worker=gpus,
            cpus_per_worker=cpus,
        )  # fmt: skip

    def preflight(self) -> None:
        """What can be checked before a run is created, quickly: Ray is installed, and
        something listens at ``--ray-address`` HOST:PORT (one-line errors)."""
        if self.name != "ray":
            return
        import importlib.util

        try:
            found = importlib.util.find_spec("ray") is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise UsageError("--backend ray needs Ray, which is not installed.", RAY_HINT)
        if self.address not in (None, "auto"):
            from nasfilter.scoring.ray_backend import probe

            probe(self.address)

    @property
    def kind(self) -> str:
        """``local`` (in the driver), ``processes`` (local workers) or ``ray``."""
        if self.name == "ray":
            return "ray"
        return "processes" if (self.workers or 1) > 1 else "local"

    @property
    def in_process(self) -> bool:
        return self.kind == "local"

    @property
    def torch_threads(self) -> int:
        """Torch threads per worker: ``cpus_per_worker`` rounded down, at least 1."""
        return max(1, int(self.cpus_per_worker))

    def to_json(self) -> dict[str, Any]:
        d: dict[str, Any] = {"backend": self.kind, "workers": self.workers or 1}
        if self.kind == "local":
            return d
        d.update(cpus_per_worker=self.cpus_per_worker, torch_threads=self.torch_threads)
        if self.kind == "ray":
            d.update(address=self.address, gpus_per_worker=self.gpus_per_worker)
            if self.workers is None:
                d["workers"] = None  # as many as the cluster holds
        d["retries"] = self.retries
        return d


# -- what a worker runs -------------------------------------------------------------------------
def set_torch_threads(threads: int) -> None:
    """Limit a worker's threads before torch is imported (and after, if it already was).

    OpenMP threads wait passively: spinning threads of several workers on shared cores
    slow each other down by an order of magnitude (measured: 12 NASWOT cells, 2 torch
    threads on a busy 2-core machine, 23.9 s spinning, 1.65 s passive)."""
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ[var] = str(threads)
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:  # already set (interop threads can be set once per process)
        pass


def error_payload(e: NasfilterError) -> tuple[str, str, str, str | None]:
    """A nasfilter error as plain values (its class, message and hint survive pickling)."""
    return ("error", type(e).__name__, e.message, e.hint)


def raise_payload(payload: tuple[Any, ...], where: str) -> None:
    import nasfilter.errors as errors

    _, cls_name, message, hint = payload
    cls = getattr(errors, cls_name, None)
    if not (isinstance(cls, type) and issubclass(cls, NasfilterError)):
        cls = ClusterError if cls_name == "ClusterError" else NasfilterError
    raise cls(message, hint)


class WorkerScorer:
    """The worker side of a pool: one ``Scorer``, built once, scoring chunks.

    ``run(items)`` returns ``("ok", results, busy_seconds)`` (a list of ``ArchResult``,
    or one ``ChunkResult`` for an analytic-only run), ``("error", ...)`` for a
    nasfilter error (the run stops, as it would locally) or ``("fail", text)`` for any
    other exception (the chunk counts as failed, like a dead worker).
    """

    def __init__(self, settings_json: dict[str, Any], threads: int) -> None:
        self.threads = threads
        self.scorer: Any = None
        self.settings = RunSettings.from_json(settings_json)
        self.init_error: tuple[Any, ...] | None = None
        try:
            if self.settings.builds_networks:
                set_torch_threads(threads)
            from nasfilter.scoring.scorer import Scorer

            self.scorer = Scorer(self.settings)
        except NasfilterError as e:
            self.init_error = error_payload(e)

    def hello(self) -> dict[str, Any]:
        """Who this worker is (or the error that kept it from starting)."""
        import socket

        from nasfilter import __version__

        info: dict[str, Any] = {
            "pid": os.getpid(),
            "host": socket.gethostname(),
            "version": __version__,
            "threads": self.threads,
        }
        if self.init_error is not None:
            info["error"] = self.init_error
        elif self.scorer is not None and self.scorer.device is not None:
            info["device"] = str(self.scorer.device)
        return info

    def run(self, items: list[tuple[int, str]]) -> tuple[Any, ...]:
        t = time.perf_counter()
        try:
            if self.init_error is not None:
                return self.init_error
            sc = self.scorer
            out: Any = sc.score_chunk(items) if not sc.builds else list(sc.map(items))
        except NasfilterError as e:
            return error_payload(e)
        except Exception as e:  # noqa: BLE001 - reported as a failed attempt of the chunk
            return ("fail", f"{type(e).__name__}: {e}")
        return ("ok", out, time.perf_counter() - t)

    def close(self) -> None:
        if self.scorer is not None:
            self.scorer.close()


def failed_result(settings: RunSettings, position: int, arch: str, error: str) -> Any:
    """An ``ArchResult`` whose every metric has status ``failed: <error>`` (NaN values);
    the reference figures (params, flops) come from the space when it computes them."""
    from nasfilter.scoring.scorer import ArchResult

    status = f"failed: {error}"[:200]
    res = ArchResult(position, arch, paths=settings.paths())
    names = list(settings.metrics) + list(settings.penalized_of().values())
    res.rows = [(name, math.nan, status, 0.0) for name in names]
    space = settings.space_obj()
    if {"params", "flops"} <= space.figures:
        try:
            c = space.costs(arch)
            res.params, res.flops = c.params, c.flops
        except Exception:  # noqa: BLE001 - the statuses say what went wrong
            pass
    return res


# -- pools --------------------------------------------------------------------------------------
@dataclass
class Event:
    """Something a pool reports: a worker ``ready`` (info), a ``result`` of a chunk
    (payload from ``WorkerScorer.run``), or a worker that ``died`` (message)."""

    kind: str
    worker: int
    chunk: int | None = None
    payload: Any = None


class Pool(Protocol):
    """What the dispatcher needs of a set of workers."""

    settings: RunSettings
    spec: BackendSpec
    n_workers: int

    def start_worker(self) -> int: ...
    def submit(self, worker: int, chunk: int, items: list[tuple[int, str]]) -> None: ...
    def poll(self, timeout: float) -> list[Event]: ...
    def stop_worker(self, worker: int) -> None: ...
    def close(self) -> None: ...


@dataclass
class _Chunk:
    id: int
    items: list[tuple[int, str]]
    attempts: int = 0  # failed attempts so far
    avoid: set[int] = field(default_factory=set)  # workers it died on
    error: str = ""


@dataclass
class Stats:
    """What a dispatcher did: for the bench and for tests."""

    workers_started: int = 0
    workers_died: int = 0
    start_seconds: float = 0.0  # from opening the pool to the first worker ready
    chunks: int = 0
    archs: int = 0
    retried: int = 0  # architectures sent again after their worker died
    failed: int = 0  # architectures stored as failed
    busy_seconds: float = 0.0  # summed over workers: time spent scoring
    wall_seconds: float = 0.0  # first chunk sent to last result
    worker_seconds: float = 0.0  # summed over workers: time they were ready

    def overhead_per_arch(self) -> float:
        """Seconds per architecture the workers were ready but not scoring."""
        return max(0.0, self.worker_seconds - self.busy_seconds) / max(1, self.archs)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class Dispatcher:
    """Sends chunks of (position, arch) to a pool's workers and yields whole
    architectures' results as they come back (see the module doc)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.spec = pool.spec
        self.settings = pool.settings
        self.stats = Stats()
        self.seconds_per_arch: float | None = None
        self._next_chunk = 0
        self.ready: dict[int, float] = {}  # worker -> time it became ready
        self.starting: dict[int, float] = {}  # worker -> time it was started
        self.inflight: dict[int, list[_Chunk]] = {}
        self.max_deaths = (self.spec.retries + 1) * max(4, pool.n_workers)
        self.last_death = ""
        self.ever_ready = False

    # -- workers ------------------------------------------------------------------------------
    def start(self, wait_all: bool = False) -> None:
        """Start the pool's workers and wait until at least one is ready (``wait_all``:
        every one; the others join when ready)."""
        t0 = time.perf_counter()
        for _ in range(self.pool.n_workers):
            self._start_worker()
        deadline = time.monotonic() + self.spec.start_timeout
        while not self.ready or (wait_all and self.starting):
            if not self.starting:
                raise ClusterError(
                    f"No {self.spec.kind} worker could start ({self.last_death}).",
                    "See the message; the run was not started.",
                )
            if time.monotonic() > deadline:
                some = f"Only {len(self.ready)} of the" if self.ready else "None of the"
                raise ClusterError(
                    f"{some} {self.spec.kind} workers became ready within "
                    f"{self.spec.start_timeout:g} s (the cluster has no room for a worker "
                    f"with {self.spec.cpus_per_worker:g} CPU and "
                    f"{self.spec.gpus_per_worker:g} GPU?).",
                    "Lower --cpus-per-worker/--gpus-per-worker, or add nodes.",
                )
            for ev in self.pool.poll(0.5):
                self._handle_startup(ev)
        self.stats.start_seconds = time.perf_counter() - t0

    def _start_worker(self) -> None:
        w = self.pool.start_worker()
        self.starting[w] = time.perf_counter()
        self.inflight[w] = []
        self.stats.workers_started += 1

    def _handle_startup(self, ev: Event) -> bool:
        """Handle ready/died events of starting workers; True if handled."""
        if ev.kind == "ready" and ev.worker in self.starting:
            info = ev.payload
            if "error" in info:
                raise_payload(info["error"], "worker")
            from nasfilter import __version__

            if info.get("version") != __version__:
                raise ClusterError(
                    f"A worker on {info.get('host')} runs nasfilter {info.get('version')}, "
                    f"this driver {__version__}.",
                    "Install the same nasfilter version on every node.",
                )
            del self.starting[ev.worker]
            self.ready[ev.worker] = time.perf_counter()
            self.ever_ready = True
            return True
        if ev.kind == "died" and ev.worker in self.starting:
            del self.starting[ev.worker]
            self.inflight.pop(ev.worker, None)
            # before any worker started, a death is a failure to start: not replaced
            self._death(ev.worker, ev.payload, replace=self.ever_ready)
            return True
        return False

    def _death(self, worker: int, message: str, replace: bool = True) -> None:
        self.stats.workers_died += 1
        self.last_death = message
        self.pool.stop_worker(worker)
        if replace and self.stats.workers_died < self.max_deaths:
            self._start_worker()

    # -- chunks ---------------------------------------------------------------------------------
    def chunk_size(self, waiting: int) -> int:
        """About ``chunk_seconds`` of work (1 until a time was measured), no more than a
        fair share of what waits to be sent (so that the workers finish together)."""
        n = max(1, len(self.ready))
        fair = max(1, math.ceil(waiting / (DEPTH * n)))
        if self.seconds_per_arch is None:
            return 1
        want = max(1, int(self.spec.chunk_seconds / max(self.seconds_per_arch, 1e-6)))
        return max(1, min(want, fair, 65536))

    def _measure(self, n: int, busy: float) -> None:
        per = busy / max(1, n)
        prev = self.seconds_per_arch
        self.seconds_per_arch = per if prev is None else 0.7 * prev + 0.3 * per

    def map(self, items: Iterable[tuple[int, str]]) -> Iterator[Any]:
        """Score every (position, arch); yields ``ArchResult``s (and, for analytic-only
        runs, ``ChunkResult``s) in the order they complete. On an abnormal exit (an
        interrupt, an error) the pool is closed: its workers are stopped."""
        pending: deque[tuple[int, str]] = deque(items)
        retry: deque[_Chunk] = deque()
        remaining = len(pending)
        t_first: float | None = None
        clean = False
        try:
            while remaining > 0:
                # fill every ready worker up to DEPTH chunks
                for w in list(self.ready):
                    while len(self.inflight[w]) < DEPTH and (retry or pending):
                        ch = self._take(w, retry, pending)
                        if ch is None:
                            break
                        if t_first is None:
                            t_first = time.perf_counter()
                        self.inflight[w].append(ch)
                        self.pool.submit(w, ch.id, ch.items)
                        self.stats.chunks += 1
                if not self.ready and not self.starting:
                    raise ClusterError(
                        f"Every worker died ({self.stats.workers_died} deaths; last: "
                        f"{self.last_death}).",
                        "The architectures scored so far are stored; fix the cause and "
                        "finish with `nasfilter score --resume RUN`.",
                    )
                for ev in self.pool.poll(0.5):
                    if self._handle_startup(ev):
                        continue
                    if ev.kind == "result":
                        for out in self._result(ev, retry):
                            remaining -= len(out) if hasattr(out, "columns") else 1
                            yield out
                    elif ev.kind == "died" and ev.worker in self.ready:
                        for out in self._died(ev, retry):
                            remaining -= 1
                            yield out
            clean = True
        finally:
            now = time.perf_counter()
            if t_first is not None:
                self.stats.wall_seconds = now - t_first
            for w, since in self.ready.items():
                self.stats.worker_seconds += now - max(since, t_first or since)
                self.ready[w] = now
            if not clean:
                self.pool.close()

    def _take(
        self,
        worker: int,
        retry: deque[_Chunk],
        pending: deque[tuple[int, str]],
    ) -> _Chunk | None:
        """The next chunk for ``worker``: a retried one that did not die there (else new
        work; else a retried one all the same: elsewhere is a preference)."""
        for ch in list(retry):
            if worker not in ch.avoid:
                retry.remove(ch)
                return ch
        if not pending:
            return retry.popleft() if retry else None
        size = self.chunk_size(len(pending))
        items = [pending.popleft() for _ in range(min(size, len(pending)))]
        self._next_chunk += 1
        return _Chunk(self._next_chunk, items)

    def _result(self, ev: Event, retry: deque[_Chunk]) -> Iterator[Any]:
        chunks = self.inflight.get(ev.worker, [])
        ch = next((c for c in chunks if c.id == ev.chunk), None)
        if ch is None:  # pragma: no cover - a result of a chunk already handed elsewhere
            return
        chunks.remove(ch)
        payload = ev.payload
        if payload[0] == "error":
            raise_payload(payload, "worker")
        if payload[0] == "fail":
            yield from self._failed_attempt(ch, ev.worker, payload[1], retry)
            return
        _, out, busy = payload
        self.stats.busy_seconds += busy
        self.stats.archs += len(ch.items)
        self._measure(len(ch.items), busy)
        if isinstance(out, list):
            yield from out
        else:
            yield out

    def _died(self, ev: Event, retry: deque[_Chunk]) -> Iterator[Any]:
        """A ready worker died: the chunk it was scoring is a failed attempt; the chunks
        queued behind it go back to the queue as they were."""
        w = ev.worker
        chunks = self.inflight.pop(w, [])
        since = self.ready.pop(w)
        self.stats.worker_seconds += time.perf_counter() - since
        for ch in reversed(chunks[1:]):
            retry.appendleft(ch)
        self._death(w, ev.payload)
        if chunks:
            yield from self._failed_attempt(chunks[0], w, f"worker died: {ev.payload}", retry)

    def _failed_attempt(
        self, ch: _Chunk, worker: int, error: str, retry: deque[_Chunk]
    ) -> Iterator[Any]:
        """Retry a chunk whose attempt failed: one architecture at a time (so that only
        the architecture that fails is tried again), each up to ``retries`` more times;
        then stored as failed."""
        ch.attempts += 1
        ch.avoid.add(worker)
        ch.error = error
        if ch.attempts > self.spec.retries:
            for pos, arch in ch.items:
                self.stats.failed += 1
                yield failed_result(self.settings, pos, arch, error)
            return
        self.stats.retried += len(ch.items)
        singles = [ch] if len(ch.items) == 1 else []
        if not singles:
            for item in ch.items:
                self._next_chunk += 1
                singles.append(_Chunk(self._next_chunk, [item], ch.attempts, set(ch.avoid), error))
        retry.extend(singles)


# -- local worker processes ---------------------------------------------------------------------
def worker_main(task_fd: int, result_fd: int) -> None:
    """A local worker process (``python -c`` of this, with two inherited sockets): read
    the settings, build the scorer, say hello, then score what comes.

    A thread reads the task socket (so that the driver never blocks writing to it) and
    ends the process when the driver closes it or dies."""
    import queue
    import signal
    import threading
    from multiprocessing.connection import Connection

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the driver's to handle
    tasks, results = Connection(task_fd, writable=False), Connection(result_fd, readable=False)
    try:
        settings_json, threads = tasks.recv()
    except (EOFError, OSError):
        os._exit(0)
    inbox: queue.Queue[Any] = queue.Queue()

    def reader() -> None:
        try:
            while True:
                inbox.put(tasks.recv())
        except (EOFError, OSError):
            os._exit(0)  # the driver closed the socket or died: stop now

    threading.Thread(target=reader, daemon=True, name="nasfilter-tasks").start()
    worker = WorkerScorer(settings_json, threads)
    try:
        results.send(("ready", worker.hello()))
        while True:
            chunk_id, items = inbox.get()
            results.send(("result", chunk_id, worker.run(items)))
    except (EOFError, OSError):
        os._exit(0)


_WORKER_CODE = (
    "import sys; from nasfilter.scoring.backends import worker_main; "
    "worker_main(int(sys.argv[1]), int(sys.argv[2]))"
)


class ProcessPool:
    """``--workers N`` local worker processes, each holding one Scorer.

    Each is a fresh ``python`` running ``worker_main`` (not ``multiprocessing``: a
    caller's script is never re-imported in the workers, so it needs no ``if __name__
    == "__main__"`` guard), talking over two socket pairs; a worker that dies closes
    them, which is how the driver learns it."""

    def __init__(self, settings: RunSettings, spec: BackendSpec) -> None:
        self.settings = settings
        self.spec = spec
        self.n_workers = spec.workers or 1
        self.procs: dict[int, Any] = {}
        self.tasks: dict[int, Any] = {}
        self.results: dict[int, Any] = {}
        self.info: dict[int, dict[str, Any]] = {}
        self._n = 0
        self.settings_json = settings.to_json()

    def start_worker(self) -> int:
        import socket
        import subprocess
        import sys
        from multiprocessing.connection import Connection
        from pathlib import Path

        import nasfilter

        self._n += 1
        w = self._n
        task_here, task_there = socket.socketpair()
        res_here, res_there = socket.socketpair()
        env = dict(os.environ)
        home = str(Path(nasfilter.__file__).resolve().parents[1])  # nasfilter importable
        env["PYTHONPATH"] = os.pathsep.join([home] + [p for p in [env.get("PYTHONPATH")] if p])
        fds = (task_there.fileno(), res_there.fileno())
        try:
            p = subprocess.Popen(
                [sys.executable, "-c", _WORKER_CODE, str(fds[0]), str(fds[1])],
                pass_fds=fds,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                env=env,
            )
        finally:
            task_there.close()
            res_there.close()
        tasks = Connection(task_here.detach(), readable=False)
        results = Connection(res_here.detach(), writable=False)
        self.procs[w], self.tasks[w], self.results[w] = p, tasks, results
        tasks.send((self.settings_json, self.spec.torch_threads))
        return w

    def submit(self, worker: int, chunk: int, items: list[tuple[int, str]]) -> None:
        try:
            self.tasks[worker].send((chunk, items))
        except OSError:
            pass  # it died: its socket says so at the next poll

    def poll(self, timeout: float) -> list[Event]:
        from multiprocessing.connection import wait

        conns = {self.results[w]: w for w in self.results}
        if not conns:
            time.sleep(timeout)
            return []
        events: list[Event] = []
        for ready in wait(list(conns), timeout):
            w = conns[ready]
            conn = self.results[w]
            try:
                while conn.poll():
                    msg = conn.recv()
                    if msg[0] == "ready":
                        self.info[w] = msg[1]
                        events.append(Event("ready", w, payload=msg[1]))
                    else:
                        events.append(Event("result", w, chunk=msg[1], payload=msg[2]))
            except (EOFError, OSError):  # the worker is gone (what it sent before counts)
                p = self.procs[w]
                try:
                    code = p.wait(timeout=5)
                except Exception:  # noqa: BLE001 - still running with its socket closed?
                    code = None
                events.append(Event("died", w, payload=_exit_text(code)))
                self.stop_worker(w)
        return events

    def stop_worker(self, worker: int) -> None:
        p = self.procs.pop(worker, None)
        if p is not None and p.poll() is None:
            p.kill()
            p.wait(timeout=5)
        for d in (self.tasks, self.results):
            conn = d.pop(worker, None)
            if conn is not None:
                conn.close()
        self.info.pop(worker, None)

    def pids(self) -> list[int]:
        """Process ids of the workers that said hello and are alive."""
        return [i["pid"] for w, i in self.info.items() if w in self.procs]

    def close(self) -> None:
        for conn in self.tasks.values():
            conn.close()  # the worker's reader sees EOF and exits
        self.tasks.clear()
        deadline = time.monotonic() + 5
        for w in list(self.procs):
            p = self.procs[w]
            try:
                p.wait(timeout=max(0.0, deadline - time.monotonic()))
            except Exception:  # noqa: BLE001 - subprocess.TimeoutExpired
                pass
            self.stop_worker(w)
        self.info.clear()


def _exit_text(code: int | None) -> str:
    if code is None:
        return "worker process did not exit"
    if code < 0:
        import signal

        try:
            return f"worker process killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"worker process killed by signal {-code}"
    return f"worker process exited with code {code}"


# -- opening ------------------------------------------------------------------------------------
class Backend:
    """An opened backend: a pool of started workers and its dispatcher. ``map(items)``
    yields results in any order; ``close()`` stops the workers. Made by ``open_backend``;
    a caller may pass one to ``engine.execute(backend=...)`` and keep it for several runs
    with the same settings (closing it after)."""

    def __init__(self, pool: Pool) -> None:
        self.pool = pool
        self.spec = pool.spec
        self.settings = pool.settings
        self.dispatcher = Dispatcher(pool)

    @property
    def stats(self) -> Stats:
        return self.dispatcher.stats

    def start(self, wait_all: bool = False) -> Backend:
        try:
            self.dispatcher.start(wait_all)
        except BaseException:
            self.close()
            raise
        return self

    def map(self, items: Iterable[tuple[int, str]]) -> Iterator[Any]:
        return self.dispatcher.map(items)

    def pids(self) -> list[int]:
        """Process ids of the ready workers (local processes or Ray actors)."""
        return list(self.pool.pids())  # type: ignore[attr-defined]

    def workers(self) -> list[dict[str, Any]]:
        return [dict(i) for i in self.pool.info.values()]  # type: ignore[attr-defined]

    def close(self) -> None:
        self.pool.close()

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def open_backend(spec: BackendSpec, settings: RunSettings, wait_all: bool = False) -> Backend:
    """Start the workers of ``spec`` for a run with ``settings`` (not for ``local``
    with one worker: the engine scores in-process then) and wait until one is ready
    (``wait_all``: every one). Raises a one-line error when Ray is missing, the cluster
    does not answer, or no worker can start."""
    if spec.in_process:
        raise ValueError("the in-process backend has no workers")
    pool: Pool
    if spec.kind == "ray":
        from nasfilter.scoring.ray_backend import RayPool

        pool = RayPool(settings, spec)
    else:
        pool = ProcessPool(settings, spec)
    return Backend(pool).start(wait_all)
