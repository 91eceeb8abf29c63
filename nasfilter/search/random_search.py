"""``random``: the dissertation's Algorithm 1.

Sample N distinct architectures of the population (repeat r: seed + r; on the whole space
the same sample as ``nasfilter score --n N --seed seed+r``), score them all with the metric
and keep the best (penalized, with a penalty). Ties: fewer parameters, then identity.
"""

from __future__ import annotations

from nasfilter.search.common import STAGE_FINAL, Candidate, RepeatContext


def run(ctx: RepeatContext) -> Candidate:
    s = ctx.settings
    archs = ctx.population.sample(s["n"], ctx.seed)
    ev = ctx.evaluator(s["metric"], len(archs), STAGE_FINAL)
    ranker = ctx.ranker(s["metric"])
    cands = ctx.record(STAGE_FINAL, ev.evaluate(archs), ranker)
    return cands[ranker.best([c.evaluation for c in cands])]
