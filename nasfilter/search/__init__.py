"""Search strategies driven by training-free metrics: ``random`` (the dissertation's
Algorithm 1), ``two-stage`` (relu_count filter, then NASWOT) and ``evolution``
(regularized evolution). See docs/search.md.

    >>> from nasfilter.search import SearchRequest, run_search
    >>> res = run_search(store, SearchRequest("nats-tss", algo="random", n=100, repeats=10))
    >>> res.summary["size_kb"]["mean"]
"""

from __future__ import annotations

from nasfilter.search.common import (
    ALGORITHMS,
    TRUTH_DATASETS,
    Evaluation,
    Evaluator,
    Population,
    Ranker,
    SearchRequest,
    keep_count,
    plan_search,
    reuse_key,
    stats,
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
    "TRUTH_DATASETS",
    "Evaluation",
    "Evaluator",
    "Population",
    "Ranker",
    "RepeatResult",
    "SearchRequest",
    "SearchResult",
    "keep_count",
    "plan_search",
    "read_search",
    "reuse_key",
    "run_search",
    "stats",
    "summarize",
]
