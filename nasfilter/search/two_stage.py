"""``two-stage``: the dissertation's "fast filter" made concrete.

Stage 1 ('filter'): sample N architectures as ``random`` does and score them all with the
filter metric (``relu_count`` by default; any metric). Keep the best ceil(keep x N) (at
least 1; ties at the cut by the search's tie-break rule). Stage 2 ('final'): score only
those with the metric (NASWOT by default; any metric) and choose the best. With a
penalty, both stages rank by the penalized value.
"""

from __future__ import annotations

from nasfilter.search.context import Candidate, RepeatContext
from nasfilter.search.request import STAGE_FILTER, STAGE_FINAL


def run(ctx: RepeatContext) -> Candidate:
    s = ctx.settings
    archs = ctx.population.sample(s["n"], ctx.seed)
    first = ctx.evaluator(s["filter_metric"], len(archs), STAGE_FILTER)
    r1 = ctx.ranker(s["filter_metric"])
    evs = ctx.evaluate(first, archs)
    ctx.record(STAGE_FILTER, evs, r1)
    kept = [evs[i].arch for i in r1.top(evs, s["keep"])]
    second = ctx.evaluator(s["metric"], len(kept), STAGE_FINAL)
    r2 = ctx.ranker(s["metric"])
    cands = ctx.record(STAGE_FINAL, ctx.evaluate(second, kept), r2)
    return cands[r2.best([c.evaluation for c in cands])]
