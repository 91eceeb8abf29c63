"""The Ray backend: long-lived actors, each holding one ``Scorer``.

Imported only for ``--backend ray`` (it imports Ray, the optional extra
``nasfilter[ray]``). ``RayPool`` is a ``nasfilter.scoring.backends.Pool``: it connects to
a cluster (``--ray-address``) or starts a private instance on this machine, starts
``ScorerActor``s with the CPUs and (fractional) GPUs asked for, and reports what they
return; the dispatcher in ``backends`` decides what each actor scores.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import time
from typing import Any

from nasfilter.errors import UsageError
from nasfilter.scoring.backends import RAY_HINT, BackendSpec, ClusterError, Event, WorkerScorer
from nasfilter.scoring.settings import RunSettings

#: Object store of a private instance: results are kilobytes; Ray's minimum is 75 MB.
LOCAL_OBJECT_STORE_BYTES = 256 * 1024**2


class ScorerActor:
    """A Ray actor: a ``WorkerScorer`` (one Scorer: builder, batch, device), built once."""

    def __init__(self, settings_json: dict[str, Any], threads: int) -> None:
        self.worker = WorkerScorer(settings_json, threads)

    def hello(self) -> dict[str, Any]:
        info = self.worker.hello()
        try:
            import ray

            info["node"] = ray.get_runtime_context().get_node_id()
        except Exception:  # noqa: BLE001 - informative only
            pass
        return info

    def run(self, items: list[tuple[int, str]]) -> tuple[Any, ...]:
        return self.worker.run(items)


def _one_line(e: BaseException, limit: int = 160) -> str:
    text = " ".join(str(e).split())
    text = f"{type(e).__name__}: {text}" if text else type(e).__name__
    return text if len(text) <= limit else text[: limit - 3] + "..."


def probe(address: str) -> None:
    """Fail fast (Ray itself retries for minutes) when nothing listens at HOST:PORT."""
    import socket

    rest = address.split("://", 1)[-1]
    host, sep, port = rest.rpartition(":")
    if not sep or not port.isdigit():
        raise UsageError(
            f"--ray-address {address!r} is not auto, HOST:PORT or ray://HOST:PORT.",
            "E.g. --ray-address auto (a cluster started on this machine with `ray start`).",
        )
    host = host.strip("[]")
    try:
        with socket.create_connection((host, int(port)), timeout=5):
            pass
    except OSError as e:
        raise ClusterError(
            f"Cannot connect to the Ray cluster at {address}: {e.strerror or e}.",
            "Start it with `ray start --head` (see docs/distributed.md) or check the address.",
        ) from None


def import_ray(local: bool) -> Any:
    """Ray, or a one-line error saying how to install it. ``local``: a private instance
    will be started, bound to this machine's loopback address (when Ray is imported
    here first) and without usage reporting."""
    if local:
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
        if "ray" not in sys.modules:  # read once, when Ray is imported
            os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
    try:
        import ray
    except ImportError:
        raise UsageError("--backend ray needs Ray, which is not installed.", RAY_HINT) from None
    return ray


def connect(spec: BackendSpec) -> tuple[Any, bool]:
    """(ray, whether this call started the connection). An existing connection of this
    process is used as it is."""
    address = spec.address or os.environ.get("RAY_ADDRESS") or None
    ray = import_ray(local=address is None)
    if address not in (None, "auto"):
        probe(address)
    if ray.is_initialized():
        return ray, False
    kwargs: dict[str, Any] = dict(
        log_to_driver=False, logging_level=logging.ERROR, namespace="nasfilter"
    )
    if address is None:
        kwargs.update(
            address="local",
            include_dashboard=False,
            _node_ip_address="127.0.0.1",
            object_store_memory=LOCAL_OBJECT_STORE_BYTES,
        )
        where = "a private Ray instance on this machine"
    else:
        kwargs["address"] = address
        where = f"the Ray cluster at {address}"
    try:
        ray.init(**kwargs)
    except ValueError as e:
        if "ray[client]" in str(e):
            raise UsageError("ray:// addresses need Ray's client.", RAY_HINT) from None
        raise ClusterError(f"Cannot start or connect to {where}: {_one_line(e)}") from None
    except Exception as e:  # noqa: BLE001 - ConnectionError, RuntimeError, grpc errors
        if address == "auto" and isinstance(e, ConnectionError):
            raise ClusterError(
                "--ray-address auto found no Ray cluster started on this machine.",
                "Start one with `ray start --head` (see docs/distributed.md), or drop "
                "--ray-address to start a private instance.",
            ) from None
        hint = (
            "Start one with `ray start --head` (see docs/distributed.md), or drop "
            "--ray-address to start a private instance."
            if address == "auto"
            else "Check the address, and that the cluster runs."
        )
        raise ClusterError(f"Cannot connect to {where}: {_one_line(e)}.", hint) from None
    return ray, True


class RayPool:
    """Ray actors for one run (see the module doc)."""

    def __init__(self, settings: RunSettings, spec: BackendSpec) -> None:
        self.settings = settings
        self.spec = spec
        self.ray, self.own = connect(spec)
        try:
            self.n_workers = self._fit()
            self.actor_cls = self.ray.remote(ScorerActor).options(
                num_cpus=spec.cpus_per_worker,
                num_gpus=spec.gpus_per_worker,
                max_restarts=0,
                max_task_retries=0,
            )
        except BaseException:
            self.close()
            raise
        self.actors: dict[int, Any] = {}
        self.refs: dict[Any, tuple[int, int | None]] = {}
        self.info: dict[int, dict[str, Any]] = {}
        self._n = 0
        self.settings_json = settings.to_json()

    def _fit(self) -> int:
        """How many workers to start: ``--workers``, else as many as the cluster holds;
        a cluster without room for one worker is refused."""
        spec = self.spec
        res = self.ray.cluster_resources()
        cpus, gpus = float(res.get("CPU", 0)), float(res.get("GPU", 0))
        fit = math.floor(cpus / spec.cpus_per_worker + 1e-9)
        if spec.gpus_per_worker > 0:
            fit = min(fit, math.floor(gpus / spec.gpus_per_worker + 1e-9))
        if fit < 1:
            raise ClusterError(
                f"The Ray cluster has {cpus:g} CPU and {gpus:g} GPU: no room for a worker "
                f"with {spec.cpus_per_worker:g} CPU and {spec.gpus_per_worker:g} GPU.",
                "Lower --cpus-per-worker/--gpus-per-worker, or add nodes.",
            )
        return spec.workers or fit

    def start_worker(self) -> int:
        self._n += 1
        w = self._n
        actor = self.actor_cls.remote(self.settings_json, self.spec.torch_threads)
        self.actors[w] = actor
        self.refs[actor.hello.remote()] = (w, None)
        return w

    def submit(self, worker: int, chunk: int, items: list[tuple[int, str]]) -> None:
        self.refs[self.actors[worker].run.remote(items)] = (worker, chunk)

    def poll(self, timeout: float) -> list[Event]:
        ray = self.ray
        if not self.refs:
            time.sleep(timeout)
            return []
        refs = list(self.refs)
        ready, _ = ray.wait(refs, num_returns=1, timeout=timeout)
        if ready:
            ready, _ = ray.wait(refs, num_returns=len(refs), timeout=0)
        events: list[Event] = []
        dead: set[int] = set()
        for ref in ready:
            w, chunk = self.refs.pop(ref, (None, None))
            if w is None or w in dead or w not in self.actors:
                continue
            try:
                value = ray.get(ref)
            except ray.exceptions.RayTaskError as e:  # an exception outside WorkerScorer
                if chunk is None:
                    dead.add(w)
                    events.append(Event("died", w, payload=_one_line(e)))
                else:
                    events.append(Event("result", w, chunk, ("fail", _one_line(e))))
                continue
            except ray.exceptions.RayError as e:  # the actor (or its node) died
                dead.add(w)
                events.append(Event("died", w, payload=_one_line(e)))
                continue
            if chunk is None:
                self.info[w] = value
                events.append(Event("ready", w, payload=value))
            else:
                events.append(Event("result", w, chunk, value))
        for w in dead:
            self._forget(w)
        return events

    def _forget(self, w: int) -> None:
        for ref in [r for r, (x, _) in self.refs.items() if x == w]:
            del self.refs[ref]
        self.actors.pop(w, None)

    def stop_worker(self, worker: int) -> None:
        actor = self.actors.get(worker)
        if actor is not None:
            try:
                self.ray.kill(actor, no_restart=True)
            except Exception:  # noqa: BLE001 - already gone
                pass
        self._forget(worker)
        self.info.pop(worker, None)

    def pids(self) -> list[int]:
        return [i["pid"] for w, i in self.info.items() if w in self.actors]

    def close(self) -> None:
        for w in list(getattr(self, "actors", {})):
            self.stop_worker(w)
        if self.own and self.ray.is_initialized():
            self.ray.shutdown()
        self.own = False
