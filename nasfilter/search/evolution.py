"""``evolution``: regularized (aging) evolution, Real et al. (2019), fitness = the metric.

Repeat r: the first P = ``ea_population`` architectures (capped at N) are a random sample
of the population drawn with seed + r, as ``random`` draws. Then, until N evaluations:
draw S = ``ea_sample`` members of the current population uniformly without replacement
(generator seeded with (seed + r, 1)), take the best as parent, mutate it, evaluate the
child, append it and drop the *oldest* member. The choice is the best of every
evaluation. Mutation changes exactly one position of the identity (one TSS edge's
operation, one SSS layer's width), drawn uniformly (``Space.mutate``); on a restricted
population (``--population truth``), the child is a random member at the smallest
positive number of changed positions.

A child equal to an architecture this repeat already evaluated counts as an evaluation
and takes the known value (candidate source 'repeat', no scoring time).
"""

from __future__ import annotations

from collections import deque

import numpy as np

from nasfilter.search.context import Candidate, RepeatContext
from nasfilter.search.request import STAGE_FINAL


def run(ctx: RepeatContext) -> Candidate:
    s = ctx.settings
    n, p_size, k = s["n"], s["ea_population"], s["ea_sample"]
    ev = ctx.evaluator(s["metric"], n, STAGE_FINAL)
    ranker = ctx.ranker(s["metric"])
    init = ctx.population.sample(p_size, ctx.seed)
    history = ctx.record(STAGE_FINAL, ctx.evaluate(ev, init), ranker)
    population = deque(history)
    rng = np.random.default_rng(np.random.SeedSequence([ctx.seed, 1]))
    while len(history) < n:
        idx = rng.choice(len(population), size=min(k, len(population)), replace=False)
        contenders = [population[int(i)].evaluation for i in sorted(idx)]
        parent = contenders[ranker.best(contenders)]
        child = ctx.population.mutate(parent.arch, rng)
        cand = ctx.record(STAGE_FINAL, ctx.evaluate(ev, [child]), ranker, parents=[parent.arch])[0]
        history.append(cand)
        population.append(cand)
        if len(population) > p_size:
            population.popleft()
    return history[ranker.best([c.evaluation for c in history])]
