"""Run a search (every repeat), store it, and read it back.

``run_search`` creates the search run (``runs.kind = 'search'``), runs the algorithm once
per repeat and, after each repeat, writes its candidates and its choice in one
transaction. ``read_search`` rebuilds the result from the tables alone, and is what the
CLI prints: the output is always what the database holds.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from nasfilter.errors import DataError, RunInterrupted, UsageError
from nasfilter.interrupts import critical, interruptible
from nasfilter.scoring.settings import RunSettings
from nasfilter.search import evolution, random_search, two_stage
from nasfilter.search.context import (
    Algorithm,
    Candidate,
    RepeatContext,
    resolve_split,
    stats,
    truth_accuracy,
    truth_available,
)
from nasfilter.search.evaluate import MetricSpec, stored_scores
from nasfilter.search.population import Population
from nasfilter.search.request import SearchRequest, plan_search
from nasfilter.store import Store

ALGORITHM_FUNCS: dict[str, Algorithm] = {
    "random": random_search.run,
    "two-stage": two_stage.run,
    "evolution": evolution.run,
}

CANDIDATE_COLS = (
    "run_id",
    "repeat",
    "stage",
    "step",
    "arch",
    "parent",
    "metric",
    "score_run_id",
    "value",
    "status",
    "rank_value",
    "params",
    "size_kb",
    "seconds",
    "source",
)
CHOICE_COLS = (
    "run_id",
    "repeat",
    "arch",
    "metric",
    "value",
    "rank_value",
    "params",
    "size_kb",
    "accuracy",
    "seconds",
    "measured_seconds",
    "summed_seconds",
    "score_seconds",
    "time_source",
    "evaluations",
    "scored",
    "stored",
)


@dataclass
class RepeatResult:
    repeat: int
    arch: str
    metric: str
    value: float
    rank_value: float
    params: int | None
    size_kb: float
    accuracy: float | None
    seconds: float
    measured_seconds: float
    summed_seconds: float
    score_seconds: float
    time_source: str
    evaluations: int
    scored: int
    stored: int


@dataclass
class SearchResult:
    run_id: int
    settings: dict[str, Any]
    repeats: list[RepeatResult]
    summary: dict[str, Any] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        """{"search_run_id", "settings", "repeats": [...], "summary": {...}, "notes"}."""
        s = self.settings
        reps = []
        for r in self.repeats:
            d: dict[str, Any] = {"repeat": r.repeat, "arch": r.arch, s["metric"]: _num(r.value)}
            if s["penalty"]:
                d[s["rank_by"]] = _num(r.rank_value)
            d.update(
                params=r.params,
                size_kb=r.size_kb,
                accuracy=r.accuracy,
                seconds=r.seconds,
                time_source=r.time_source,
                measured_seconds=r.measured_seconds,
                summed_seconds=r.summed_seconds,
                score_seconds=r.score_seconds,
                evaluations=r.evaluations,
                scored=r.scored,
                stored=r.stored,
            )
            reps.append(d)
        return {
            "search_run_id": self.run_id,
            "settings": s,
            "repeats": reps,
            "summary": self.summary,
            "notes": self.notes,
        }


def _num(v: float | None) -> float | None:
    return None if v is None or not math.isfinite(v) else v


def time_source(scored: int, stored: int) -> str:
    if stored == 0:
        return "measured"
    if scored == 0:
        return "summed"
    return "mixed"


def summarize(settings: dict[str, Any], repeats: list[RepeatResult]) -> dict[str, Any]:
    """Mean, sample std and n over repeats (finite values only), and time sources."""
    out: dict[str, Any] = {
        "repeats": len(repeats),
        "accuracy": stats([r.accuracy for r in repeats]),
        "size_kb": stats([r.size_kb for r in repeats]),
        "params": stats([r.params for r in repeats]),
        "seconds": stats([r.seconds for r in repeats]),
        "score_seconds": stats([r.score_seconds for r in repeats]),
        settings["metric"]: stats([r.value for r in repeats]),
    }
    if settings.get("penalty"):
        out[settings["rank_by"]] = stats([r.rank_value for r in repeats])
    out["time_source"] = {
        k: sum(1 for r in repeats if r.time_source == k) for k in ("measured", "summed", "mixed")
    }
    return out


def resolve_population(
    store: Store, settings: dict[str, Any], accuracy: dict[str, float]
) -> Population:
    from nasfilter.spaces import get_space

    space = get_space(settings["space"])
    budget = shape = None
    if settings.get("budget"):
        from nasfilter.budgets import Budget

        budget = Budget(**settings["budget"])
        metric = settings["metric"]
        shape = RunSettings.from_json(settings["score_settings"][metric]).dataset_shape()
    if settings["population"] == "space":
        return Population(space, budget=budget, shape=shape)
    if not accuracy:
        raise DataError(
            f"No ground truth for {space.name} on {settings['dataset']} "
            f"({settings['split']}) in {store.path}, so --population truth is empty.",
            "Load some with `nasfilter truth ...` (e.g. the shipped sample), or use "
            "--population space.",
        )
    return Population(
        space,
        list(accuracy),
        label=f"{len(accuracy):,} architectures of {space.name} with "
        f"{settings['dataset']} {settings['split']} truth",
        budget=budget,
        shape=shape,
    )


def run_search(
    store: Store,
    req: SearchRequest,
    command: str | None = None,
    on_repeat: Callable[[RepeatResult], None] | None = None,
    on_evaluated: Callable[[int], None] | None = None,
) -> SearchResult:
    """Run every repeat of a search and store it; return what the store now holds.

    ``on_repeat``: called with each repeat's result; ``on_evaluated(k)``: called as
    candidates are evaluated (for a progress bar).
    """
    settings = plan_search(req)
    accuracy: dict[str, float] = {}
    if settings["dataset"]:
        settings["split"] = resolve_split(
            store, settings["space"], settings["dataset"], settings["split"]
        )
        accuracy = truth_accuracy(store, settings["space"], settings["dataset"], settings["split"])
    settings["truth_held"] = [list(t) for t in truth_available(store, settings["space"])]
    population = resolve_population(store, settings, accuracy)
    if settings["algo"] == "evolution":
        population.check(settings["ea_population"], "--ea-population")
    else:
        population.check(settings["n"])
    settings["population_size"] = population.size
    settings["population_label"] = population.label
    settings["truth_archs"] = len(accuracy)
    specs = {
        m: MetricSpec(m, RunSettings.from_json(js)) for m, js in settings["score_settings"].items()
    }
    for m, spec in specs.items():  # the batch's description (hashes) now known
        settings["score_settings"][m] = spec.settings.to_json()
    settings["reuse_keys"] = {m: json.loads(spec.key) for m, spec in specs.items()}
    run_id = _create_search_run(store, settings, command)
    stored = (
        {m: stored_scores(store, settings["space"], spec) for m, spec in specs.items()}
        if settings["reuse"]
        else None
    )
    store.release()
    algo = ALGORITHM_FUNCS[settings["algo"]]
    status = "failed"
    done = 0
    try:
        with interruptible():
            for r in range(settings["repeats"]):
                ctx = RepeatContext(
                    store,
                    settings,
                    population,
                    r + 1,
                    settings["seed"] + r,
                    specs,
                    run_id,
                    stored,
                    on_evaluated=on_evaluated,
                )
                try:
                    choice = algo(ctx)
                finally:
                    with critical():
                        ctx.finish()
                result = _write_repeat(store, run_id, ctx, choice, accuracy)
                store.release()
                done += 1
                if on_repeat:
                    on_repeat(result)
        status = "completed"
    except (KeyboardInterrupt, RunInterrupted):
        status = "interrupted"
        raise RunInterrupted(
            f"Interrupted: search run {run_id} keeps {done} of {settings['repeats']} repeats.",
            "Scores already stored are reused by the next search with the same settings.",
        ) from None
    finally:
        for spec in specs.values():
            spec.close()
        with critical():
            store.set_run_status(run_id, status)
            store.release()
    return read_search(store, run_id)


def _create_search_run(store: Store, settings: dict[str, Any], command: str | None) -> int:
    from nasfilter.metrics import get_metric

    names = [m for m in (settings["filter_metric"], settings["metric"]) if m]
    recs = []
    for name in dict.fromkeys(names):
        d = get_metric(name).metadata()
        d["path"] = "search"
        recs.append(d)
    run_id = store.create_run(
        "search",
        settings["space"],
        settings,
        seed=settings["seed"],
        n_requested=settings["n"],
        command=command,
        metrics=recs,
    )
    pen = settings["penalty"] or {}
    store.con.execute(
        "INSERT INTO searches VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [
            run_id,
            settings["algo"],
            settings["metric"],
            settings["filter_metric"],
            settings["higher_is_better"],
            settings["rank_by"],
            pen.get("penalty"),
            pen.get("mu"),
            pen.get("sigma"),
            settings["n"],
            settings["keep"],
            settings["repeats"],
            settings["seed"],
            settings["score_seed"],
            settings["population"],
            settings["population_size"],
            settings["dataset"],
            settings["split"] if settings["dataset"] else None,
            settings["tie_break"],
        ],
    )
    return run_id


def _write_repeat(
    store: Store, run_id: int, ctx: RepeatContext, choice: Candidate, accuracy: dict[str, float]
) -> RepeatResult:
    import pyarrow as pa

    cands = ctx.candidates
    scored = sum(1 for c in cands if c.evaluation.source == "scored")
    stored = sum(1 for c in cands if c.evaluation.source == "stored")
    measured = sum(e.measured_seconds for e in ctx.evaluators)
    summed = sum(c.evaluation.seconds for c in cands if c.evaluation.source == "stored")
    score_s = sum(c.evaluation.seconds for c in cands if c.evaluation.source != "repeat")
    ev = choice.evaluation
    res = RepeatResult(
        repeat=ctx.repeat,
        arch=ev.arch,
        metric=ev.metric,
        value=ev.value,
        rank_value=choice.rank_value,
        params=ev.params,
        size_kb=ev.size_kb,
        accuracy=accuracy.get(ev.arch),
        seconds=measured + summed,
        measured_seconds=measured,
        summed_seconds=summed,
        score_seconds=score_s,
        time_source=time_source(scored, stored),
        evaluations=len(cands),
        scored=scored,
        stored=stored,
    )
    cols: dict[str, list[Any]] = {c: [] for c in CANDIDATE_COLS}
    for c in cands:
        e = c.evaluation
        row = (
            run_id,
            ctx.repeat,
            c.stage,
            c.step,
            e.arch,
            c.parent,
            e.metric,
            e.score_run_id,
            e.value,
            e.status,
            c.rank_value,
            e.params,
            e.size_kb,
            e.seconds,
            e.source,
        )
        for k, v in zip(CANDIDATE_COLS, row, strict=True):
            cols[k].append(v)
    types = {
        "run_id": pa.int32(),
        "repeat": pa.int32(),
        "step": pa.int64(),
        "score_run_id": pa.int32(),
        "value": pa.float64(),
        "rank_value": pa.float64(),
        "params": pa.int64(),
        "size_kb": pa.float64(),
        "seconds": pa.float64(),
    }
    table = pa.table({k: pa.array(v, types.get(k, pa.string())) for k, v in cols.items()})
    con = store.con
    names = ", ".join(CANDIDATE_COLS)
    with critical(), store.transaction(_nf_cands=table):
        con.execute(f"INSERT INTO search_candidates ({names}) SELECT {names} FROM _nf_cands")
        con.execute(
            f"INSERT INTO search_choices ({', '.join(CHOICE_COLS)}) VALUES "
            f"({', '.join('?' * len(CHOICE_COLS))})",
            [
                run_id,
                res.repeat,
                res.arch,
                res.metric,
                res.value,
                res.rank_value,
                res.params,
                res.size_kb,
                res.accuracy,
                res.seconds,
                res.measured_seconds,
                res.summed_seconds,
                res.score_seconds,
                res.time_source,
                res.evaluations,
                res.scored,
                res.stored,
            ],
        )
    return res


def read_search(store: Store, run_id: int) -> SearchResult:
    """A stored search, from ``runs`` and ``search_choices`` alone."""
    run = store.get_run(run_id)
    if run["kind"] != "search":
        raise UsageError(
            f"Run {run_id} is a {run['kind']} run, not a search.",
            'List searches with `nasfilter sql "SELECT * FROM searches"`.',
        )
    settings = run["settings"]
    cur = store.con.execute(
        f"SELECT {', '.join(CHOICE_COLS[1:])} FROM search_choices WHERE run_id = ? ORDER BY repeat",
        [run_id],
    )
    repeats = []
    for row in cur.fetchall():
        d = dict(zip(CHOICE_COLS[1:], row, strict=True))
        d["value"] = math.nan if d["value"] is None else d["value"]
        d["rank_value"] = math.nan if d["rank_value"] is None else d["rank_value"]
        repeats.append(RepeatResult(**d))
    res = SearchResult(run_id, settings, repeats, summarize(settings, repeats))
    res.notes = _notes(run, settings, repeats)
    return res


def _notes(run: dict[str, Any], settings: dict[str, Any], repeats: list[RepeatResult]) -> list[str]:
    notes = []
    if run["status"] != "completed":
        notes.append(
            f"Search run {run['run_id']} is {run['status']}: "
            f"{len(repeats)} of {settings['repeats']} repeats stored."
        )
    ts = {k: sum(1 for r in repeats if r.time_source == k) for k in ("measured", "summed", "mixed")}
    notes.append(
        f"Times: {ts['measured']} measured (wall time of the score runs the repeat executed), "
        f"{ts['summed']} summed (stored per-architecture seconds of reused scores), "
        f"{ts['mixed']} mixed (both added)."
    )
    if settings["penalty"]:
        p = settings["penalty"]
        notes.append(
            f"Ranked by {settings['rank_by']} = {settings['metric']} x "
            f"{p['penalty']}(size_kb / 1000; mu={p['mu']:g} MB, sigma={p['sigma']:g} MB)."
        )
    if settings["population"] == "truth" or settings.get("budget"):
        notes.append(f"Population: {settings.get('population_label')}.")
    if settings["dataset"]:
        missing = sum(1 for r in repeats if r.accuracy is None)
        if missing:
            held = ", ".join(f"{d}/{s} ({n:,})" for d, s, n in settings.get("truth_held", []))
            notes.append(
                f"{missing} chosen architecture(s) have no {settings['dataset']} "
                f"{settings['split']} ground truth (accuracy empty). Truth held for "
                f"{settings['space']}: {held or 'none'}."
            )
    else:
        notes.append("No --dataset: accuracy not looked up.")
    from nasfilter.metrics import get_metric

    for m in dict.fromkeys(x for x in (settings.get("filter_metric"), settings["metric"]) if x):
        agg = get_metric(m).aggregate
        if agg is not None and agg.kind == "rank":
            notes.append(
                f"{m} is a rank aggregate: a candidate's value ranks it within the candidates "
                "its stage compared (docs/metrics.md, Aggregates)."
            )
    requests = settings.get("score_settings") or settings.get("score_requests") or {}
    for m, r in requests.items():
        if get_metric(m).needs_data and r.get("data") == "synthetic":
            notes.append(f"Inputs of {m}: synthetic (seeded Gaussian images), not a real dataset.")
    return notes
