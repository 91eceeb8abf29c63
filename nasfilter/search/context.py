"""What a search algorithm gets for one repeat, and the statistics over repeats."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from nasfilter.ranking import TIE_RULES, RankRule, top_indices
from nasfilter.search.evaluate import Evaluation, Evaluator, MetricSpec, rank_evaluations
from nasfilter.search.population import Population
from nasfilter.search.request import STAGE_TIE
from nasfilter.store import Store


@dataclass
class Candidate:
    stage: str
    step: int
    evaluation: Evaluation
    rank_value: float
    parent: str | None = None


class Ranker:
    """Orders evaluations best first by a metric, penalized or not, with the search's
    tie-break (``nasfilter.ranking``).

    rank value: the value, or value x p(size_kb / 1000) with a penalty (non-finite values
    kept as they are). The position of an evaluation is its index in the list given
    (evaluation order: first drawn first). A metric tie-break asks ``tie_lookup`` for the
    tie metric's values of only the tied candidates that decide the result.
    """

    def __init__(
        self,
        higher_is_better: bool,
        penalty: dict[str, Any] | None,
        tie_break: str = "first",
        tie_higher_is_better: bool = True,
        tie_lookup: Callable[[list[str]], dict[str, float]] | None = None,
    ) -> None:
        self.rule = RankRule(higher_is_better, tie_break, tie_higher_is_better)
        self.penalty = penalty
        self.tie_lookup = tie_lookup

    def value(self, ev: Evaluation) -> float:
        if self.penalty is None:
            return ev.value
        from nasfilter.penalties import penalized

        p = self.penalty
        return float(penalized(ev.value, ev.size_kb / 1000.0, p["penalty"], p["mu"], p["sigma"]))

    def top(self, evs: Sequence[Evaluation], k: int) -> list[int]:
        values = [self.value(e) for e in evs]
        archs = [e.arch for e in evs]

        def ties(idx: list[int]) -> dict[int, float | None]:
            assert self.tie_lookup is not None
            got = self.tie_lookup([archs[i] for i in idx])
            return {i: got.get(archs[i]) for i in idx}

        top, _ = top_indices(
            self.rule,
            values,
            list(range(len(evs))),
            [e.params for e in evs],
            archs,
            k,
            tie_values=ties if self.rule.tie_break not in TIE_RULES else None,
        )
        return top

    def best(self, evs: Sequence[Evaluation]) -> int:
        return self.top(evs, 1)[0]


@dataclass
class RepeatContext:
    """What an algorithm gets for one repeat."""

    store: Store
    settings: dict[str, Any]
    population: Population
    repeat: int  # numbered from 1
    seed: int  # the repeat's sampling seed: settings seed + repeat - 1
    specs: dict[str, MetricSpec]
    search_run_id: int
    stored: dict[str, dict[str, Evaluation]] | None  # reusable values by metric; None: off
    evaluators: list[Evaluator] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)
    on_evaluated: Callable[[int], None] | None = None
    _by_metric: dict[tuple[str, str], Evaluator] = field(default_factory=dict)
    _steps: dict[str, int] = field(default_factory=dict)

    def evaluator(self, metric: str, budget: int, stage: str) -> Evaluator:
        ev = Evaluator(
            self.store,
            self.specs[metric],
            budget,
            self.stored[metric] if self.stored is not None else None,
            command=(
                f"nasfilter search (run {self.search_run_id}, repeat {self.repeat}, stage {stage})"
            ),
            parent_run=self.search_run_id,
        )
        self.evaluators.append(ev)
        self._by_metric[(metric, stage)] = ev
        return ev

    def evaluate(self, ev: Evaluator, archs: Sequence[str]) -> list[Evaluation]:
        """Evaluations of ``archs``, in order; a rank aggregate ranked within them."""
        out = ev.evaluate(archs)
        if ev.spec.rank is not None:
            out = rank_evaluations(ev.spec, out)
        if self.on_evaluated:
            self.on_evaluated(len(archs))
        return out

    def ranker(self, metric: str) -> Ranker:
        tie = self.settings.get("tie_break") or "smallest"  # searches of nasfilter 0.x
        lookup = None
        tie_hib = True
        if tie not in TIE_RULES:
            tie_hib = self.specs[tie].higher_is_better
            lookup = self._tie_lookup(tie)
        return Ranker(
            self.specs[metric].higher_is_better, self.settings["penalty"], tie, tie_hib, lookup
        )

    def _tie_lookup(self, metric: str) -> Callable[[list[str]], dict[str, float]]:
        def lookup(archs: list[str]) -> dict[str, float]:
            key = (metric, STAGE_TIE)
            ev = self._by_metric.get(key) or self.evaluator(metric, len(archs), STAGE_TIE)
            evs = ev.evaluate(archs)
            self.record(STAGE_TIE, evs, None)
            return {e.arch: e.value for e in evs}

        return lookup

    def record(
        self,
        stage: str,
        evs: Sequence[Evaluation],
        ranker: Ranker | None,
        parents: Sequence[str | None] | None = None,
    ) -> list[Candidate]:
        start = self._steps.get(stage, 0)
        self._steps[stage] = start + len(evs)
        out = []
        for i, ev in enumerate(evs):
            c = Candidate(
                stage,
                start + i,
                ev,
                ranker.value(ev) if ranker is not None else ev.value,
                parents[i] if parents is not None else None,
            )
            out.append(c)
        self.candidates.extend(out)
        return out

    def finish(self, status: str = "completed") -> None:
        for ev in self.evaluators:
            ev.finish(status)


Algorithm = Callable[[RepeatContext], Candidate]


def stats(values: Sequence[float | None]) -> dict[str, Any]:
    """mean, sample standard deviation (n - 1; None below two values) and n, over the
    finite values (as SQL's avg and stddev_samp over ``isfinite`` rows)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return {"mean": None, "std": None, "n": 0}
    arr = np.array(xs, dtype=float)
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if len(arr) > 1 else None,
        "n": len(arr),
    }


def truth_accuracy(store: Store, space: str, dataset: str, split: str) -> dict[str, float]:
    """Ground-truth accuracy (percent) by architecture: ``nasfilter.truth.accuracy_of``."""
    from nasfilter.truth import accuracy_of

    return dict(accuracy_of(store, space, dataset, split))


def resolve_split(store: Store, space: str, dataset: str, split: str | None) -> str:
    """``split``, or when None: 'test' if the database has test truth for the space and
    dataset, else 'valid' (the shipped sample has validation accuracy only)."""
    if split is not None:
        return split
    row = store.con.execute(
        "SELECT count(*) FROM truth WHERE space = ? AND dataset = ? AND split = 'test'",
        [space, dataset],
    ).fetchone()
    return "test" if row and row[0] else "valid"


def truth_available(store: Store, space: str) -> list[tuple[str, str, int]]:
    """(dataset, split, architectures) of the truth held for ``space``."""
    return [
        (d, s, int(n))
        for d, s, n in store.con.execute(
            "SELECT dataset, split, count(*) FROM truth WHERE space = ? GROUP BY ALL ORDER BY ALL",
            [space],
        ).fetchall()
    ]
