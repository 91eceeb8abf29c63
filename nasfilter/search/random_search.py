"""``random``: the dissertation's Algorithm 1.

Sample N distinct architectures of the population (repeat r: seed + r; on the whole space
the same sample as ``nasfilter score --n N --seed seed+r``), score them all with the metric
and keep the best (penalized, with a penalty). Ties: the search's tie-break rule
(default: the first drawn, as Algorithm 1 keeps it).
"""

from __future__ import annotations

from nasfilter.search.context import Candidate, RepeatContext
from nasfilter.search.request import STAGE_FINAL


def run(ctx: RepeatContext) -> Candidate:
    s = ctx.settings
    archs = ctx.population.sample(s["n"], ctx.seed)
    ev = ctx.evaluator(s["metric"], len(archs), STAGE_FINAL)
    ranker = ctx.ranker(s["metric"])
    cands = ctx.record(STAGE_FINAL, ctx.evaluate(ev, archs), ranker)
    return cands[ranker.best([c.evaluation for c in cands])]
