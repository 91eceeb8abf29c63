"""Evaluating candidates: in-process scoring with reuse of stored scores.

A search keeps one ``MetricSpec`` per metric it uses (the metric's score-run settings,
their reuse key, and one ``Scorer`` built on first need and shared by every repeat).
Each repeat evaluates through an ``Evaluator`` per (metric, stage), which takes a value,
in this order of preference, from:

- what this repeat already evaluated (candidate source 'repeat');
- a score run made earlier whose settings have the same reuse key
  (``RunSettings.reuse_key``), earliest run first ('stored');
- the scorer, in process ('scored'): the rows go through one writer per (repeat,
  metric) into a score run of its own (origin 'search', ``parent_run`` = the search),
  which records the candidates as its list, so every value lands in ``scores`` with its
  time, and that run can be reused later.

Penalized rows are never reused: a penalty is applied by the search itself, to the base
value, so the same stored value serves every penalty.

A rank aggregate (``nasfilter.metrics.aggregate``) has no value of its own for one
architecture: an Evaluation of it carries its components' values (``parts``) and the
value NaN with status ``pending``, and the repeat ranks the candidates it compares
(``rank_evaluations``). Stored runs whose aggregate key matches (every component's key)
lend their components' values, never their stored aggregate (ranked in another
population).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

from nasfilter.scoring.settings import ArchPlan, RunSettings
from nasfilter.store import BatchWriter, Store


@dataclass(frozen=True)
class Evaluation:
    """One architecture's score, as a search used it. ``seconds``: the time this metric
    alone takes for it (its own time plus building the network and the shared pass when
    it needs them)."""

    arch: str
    metric: str
    value: float
    status: str
    seconds: float
    params: int | None
    size_kb: float
    score_run_id: int
    source: str  # 'scored' | 'stored' | 'repeat'
    #: a rank aggregate's component values, (name, value) in the aggregate's order
    parts: tuple[tuple[str, float], ...] | None = None


def _count(v: Any) -> int | None:
    """A stored count (params) as an int, or None when it is NaN/missing."""
    if v is None:
        return None
    f = float(v)
    return int(f) if math.isfinite(f) else None


class MetricSpec:
    """A metric as a search scores it: its settings, reuse key and (lazily) its scorer."""

    def __init__(self, metric: str, settings: RunSettings) -> None:
        from nasfilter.engine import prepare
        from nasfilter.metrics import get_metric

        self.metric = metric
        self.settings = prepare(settings)  # reads the batch (once) to record its hash
        self.key = self.settings.reuse_key(metric)
        m = get_metric(metric)
        self.higher_is_better = m.higher_is_better
        #: a rank aggregate's definition (ranked by the repeat); None otherwise
        self.rank = m.aggregate if m.aggregate is not None and m.aggregate.kind == "rank" else None
        self._scorer: Any = None

    @property
    def scorer(self) -> Any:
        if self._scorer is None:
            from nasfilter.scoring.scorer import Scorer

            self._scorer = Scorer(self.settings)
        return self._scorer

    def close(self) -> None:
        if self._scorer is not None:
            self._scorer.close()


def matching_runs(store: Store, space: str, spec: MetricSpec) -> list[int]:
    """Score runs of ``space`` whose values of the metric have ``spec``'s reuse key."""
    rows = store.con.execute(
        "SELECT r.run_id, r.settings, m.version, m.path FROM runs r "
        "JOIN run_metrics m USING (run_id) WHERE r.kind = 'score' AND r.space = ? "
        "AND m.metric = ? AND m.path <> 'penalized' ORDER BY r.run_id",
        [space, spec.metric],
    ).fetchall()
    out = []
    for run_id, settings, version, path in rows:
        try:
            rs = RunSettings.from_json(json.loads(settings))
            key = rs.reuse_key(spec.metric, version=version, path=path)
        except Exception:  # noqa: BLE001 - a run this version cannot read is not reused
            continue
        if key == spec.key:
            out.append(int(run_id))
    return out


def fetch_scores(
    store: Store, metric: str, run_ids: list[int], archs: list[str] | None, source: str
) -> dict[str, Evaluation]:
    """Stored values of ``metric`` (with params and size_kb of the same run) in runs
    ``run_ids``, for ``archs`` (None: all); the earliest run wins. Seconds are the
    metric's standalone time (its own, plus build and shared pass where it used them)."""
    import pyarrow as pa

    if not run_ids:
        return {}
    want = pa.table({"arch": pa.array(archs or [], pa.string())})
    join = "" if archs is None else "JOIN _nf_want w ON w.arch = s.arch"
    with store.transaction(_nf_want=want) as con:
        rows = con.execute(
            f"""SELECT s.arch, s.run_id, s.value, s.status,
    s.seconds
        + CASE WHEN m.path IN ('probe', 'model', 'aggregate', 'rank')
            THEN coalesce(t.build_seconds, 0) ELSE 0 END
        + CASE WHEN m.path IN ('probe', 'aggregate', 'rank')
            THEN coalesce(t.pass_seconds, 0) ELSE 0 END,
    p.value, z.value
FROM scores s
{join}
JOIN run_metrics m ON m.run_id = s.run_id AND m.metric = s.metric
LEFT JOIN arch_timings t ON t.run_id = s.run_id AND t.arch = s.arch
JOIN scores p ON p.run_id = s.run_id AND p.arch = s.arch AND p.metric = 'params'
JOIN scores z ON z.run_id = s.run_id AND z.arch = s.arch AND z.metric = 'size_kb'
WHERE s.metric = ? AND list_contains(?, s.run_id)
QUALIFY row_number() OVER (PARTITION BY s.arch ORDER BY s.run_id) = 1""",
            [metric, run_ids],
        ).fetchall()
    return {
        a: Evaluation(
            a,
            metric,
            float(v) if v is not None else math.nan,
            st,
            float(sec),
            _count(p),
            float(z) if z is not None else math.nan,
            int(rid),
            source,
        )
        for a, rid, v, st, sec, p, z in rows
    }


def stored_scores(store: Store, space: str, spec: MetricSpec) -> dict[str, Evaluation]:
    """Every reusable stored value for ``spec`` (earliest matching run first); for a rank
    aggregate, the components' values of the run the aggregate's row comes from."""
    runs = matching_runs(store, space, spec)
    got = fetch_scores(store, spec.metric, runs, None, "stored")
    if spec.rank is None or not got:
        return got
    names = list(spec.rank.names)
    values: dict[tuple[int, str], dict[str, float]] = {}
    for arch, rid, metric, v in store.con.execute(
        "SELECT arch, run_id, metric, value FROM scores WHERE list_contains(?, run_id) "
        "AND list_contains(?, metric)",
        [sorted({e.score_run_id for e in got.values()}), names],
    ).fetchall():
        values.setdefault((int(rid), arch), {})[metric] = math.nan if v is None else float(v)
    out = {}
    for a, e in got.items():
        have = values.get((e.score_run_id, a), {})
        if all(n in have for n in names):
            parts = tuple((n, have[n]) for n in names)
            out[a] = replace(e, value=math.nan, status="pending", parts=parts)
    return out


def rank_evaluations(spec: MetricSpec, evs: Sequence[Evaluation]) -> list[Evaluation]:
    """The evaluations of a rank aggregate with their values ranked within ``evs`` (the
    population a repeat compares; an architecture listed twice counts once)."""
    from nasfilter.metrics.aggregate import rank_values

    assert spec.rank is not None
    uniq: dict[str, Evaluation] = {}
    for e in evs:
        uniq.setdefault(e.arch, e)
    archs = list(uniq)
    cols = {n: [dict(uniq[a].parts or ()).get(n, math.nan) for a in archs] for n in spec.rank.names}
    vals, sts = rank_values(spec.rank, cols)
    by = {a: (v, st) for a, v, st in zip(archs, vals, sts, strict=True)}
    return [replace(e, value=by[e.arch][0], status=by[e.arch][1]) for e in evs]


class Evaluator:
    """Scores architectures with one metric for one repeat (see module doc).

    ``evaluate(archs)`` returns one Evaluation per requested architecture, in order.
    ``finish()`` commits what is buffered and marks the repeat's score run completed.
    ``measured_seconds``: the wall time this evaluator spent scoring and writing.
    """

    def __init__(
        self,
        store: Store,
        spec: MetricSpec,
        budget: int,
        stored: dict[str, Evaluation] | None,
        command: str | None = None,
        parent_run: int | None = None,
        flush_seconds: float = 5.0,
        batch_rows: int = 20000,
    ) -> None:
        self.store = store
        self.spec = spec
        self.budget = budget
        self.command = command
        self.parent_run = parent_run
        self.stored = stored
        self.flush_seconds = flush_seconds
        self.batch_rows = batch_rows
        self.run_id: int | None = None
        self.writer: BatchWriter | None = None
        self._position = 0
        self._seen: dict[str, Evaluation] = {}
        self._last_flush = time.perf_counter()
        self.measured_seconds = 0.0

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        need = [a for a in dict.fromkeys(archs) if a not in self._seen]
        fresh: dict[str, Evaluation] = {}
        if self.stored:
            for a in need:
                ev = self.stored.get(a)
                if ev is not None:
                    fresh[a] = replace(ev, source="stored")
        missing = [a for a in need if a not in fresh]
        if missing:
            got = self._score(missing)
            fresh.update(got)
            if self.stored is not None:
                self.stored.update(got)
        out = []
        for a in archs:
            if a in fresh:
                ev = fresh.pop(a)
                self._seen[a] = ev
            else:
                ev = replace(self._seen[a], source="repeat")
            out.append(ev)
        return out

    def _start(self) -> int:
        from nasfilter.engine import start_run

        spec = self.spec
        run_id = start_run(
            self.store,
            spec.settings,
            ArchPlan("list", max(1, self.budget)),
            command=self.command,
            origin="search",
            parent_run=self.parent_run,
        )
        self.store.release()
        self.writer = BatchWriter(self.store, run_id, batch_rows=self.batch_rows, record_list=True)
        return run_id

    def _score(self, archs: list[str]) -> dict[str, Evaluation]:
        if self.run_id is None:  # bookkeeping, not scoring: not in measured_seconds
            self.run_id = self._start()
        assert self.writer is not None
        t = time.perf_counter()
        scorer = self.spec.scorer
        metric = self.spec.metric
        space = self.spec.settings.space
        out = {}
        rank = self.spec.rank
        for arch in archs:
            res = scorer.score(arch, self._position)
            self._position += 1
            self.writer.add_result(space, res)
            parts = None
            if rank is not None:  # ranked by the repeat, over the candidates it compares
                value, status = math.nan, "pending"
                parts = tuple((n, res.value(n)[0]) for n in rank.names)
            else:
                value, status = res.value(metric)
            out[arch] = Evaluation(
                arch,
                metric,
                value,
                status,
                res.standalone_seconds(metric),
                _count(res.value("params")[0]),
                float(res.value("size_kb")[0]),
                self.run_id,
                "scored",
                parts,
            )
        now = time.perf_counter()
        if self.writer.pending >= self.batch_rows or now - self._last_flush > self.flush_seconds:
            self.writer.flush()
            self.store.release()
            self._last_flush = now
        self.measured_seconds += time.perf_counter() - t
        return out

    def finish(self, status: str = "completed") -> None:
        """Commit what is buffered and close the repeat's score run."""
        if self.run_id is None or self.writer is None:
            return
        t = time.perf_counter()
        self.writer.flush()
        if status == "completed":  # the run's own rank aggregates, over its architectures
            self.store.write_rank_aggregates(self.run_id)
        self.store.set_run_status(self.run_id, status)
        self.store.release()
        self.measured_seconds += time.perf_counter() - t
        self.writer = None
