"""Search strategies driven by training-free metrics: ``random`` (the dissertation's
Algorithm 1), ``two-stage`` (a filter metric, then a second metric on the best) and
``evolution`` (regularized evolution). See docs/search.md.

    >>> from nasfilter.search import SearchRequest, run_search
    >>> res = run_search(store, SearchRequest("nats-tss", algo="random", n=100, repeats=10))
    >>> res.summary["size_kb"]["mean"]

Modules: ``request`` (options, validation), ``population`` (where to sample),
``evaluate`` (in-process scoring with reuse), ``context`` (what an algorithm gets),
``random_search``/``two_stage``/``evolution`` (the algorithms), ``runner`` (repeats,
storage, reading back). The ranking rule is ``nasfilter.ranking``.
"""

from __future__ import annotations

from nasfilter.search.context import Ranker, stats
from nasfilter.search.evaluate import Evaluation, Evaluator, MetricSpec
from nasfilter.search.population import Population
from nasfilter.search.request import (
    ALGORITHMS,
    POPULATIONS,
    SearchRequest,
    keep_count,
    plan_search,
)
from nasfilter.search.runner import (
    RepeatResult,
    SearchResult,
    read_search,
    run_search,
    summarize,
)

__all__ = [
    "ALGORITHMS",
    "Evaluation",
    "Evaluator",
    "MetricSpec",
    "POPULATIONS",
    "Population",
    "Ranker",
    "RepeatResult",
    "SearchRequest",
    "SearchResult",
    "keep_count",
    "plan_search",
    "read_search",
    "run_search",
    "stats",
    "summarize",
]
