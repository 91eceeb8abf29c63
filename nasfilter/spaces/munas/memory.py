"""Peak activation memory of the best execution order: µNAS's resource model, fast.

The model (eliberis/uNAS ``resource_models/models.py``, ``peak_memory_usage``): operators
run one at a time; while an operator runs, its inputs, its output and every tensor still
needed later are live; weights and the network input are not counted; an addition may
write into one of its inputs when that input has the output's shape and is not used
elsewhere. The peak of an order is its largest live set; the figure is the minimum of
the peak over every order the graph allows. µNAS computes it by memoised recursion over
sets of live tensors, which is exact but exponential in the number of parallel
branches. This module computes the same figure in a way that scales.

A µNAS graph is a sequence of :class:`Group` s: a tensor J feeds K chains of operators
(the serial block and its parallel branches), whose last tensors are added. Every order
finishes one group before the next begins (everything in a group depends on its J), so
the peak is the largest group peak, and a group with K = 1 is a plain chain. For K >= 2,
give each chain k the residents r_k[1..n_k] (sizes of the tensors it produces). In a
state where chain k has run q_k operators, the live set T holds every chain's current
tensor, plus J while some chain has not started; running chain k's next operator costs
T + (size of its output).

The search uses three exact reductions:

1. Without J (or once every chain has started) the problem is minimising the maximum
   cumulative cost of parallel chains of jobs (a, b) (peak above the base, net change),
   which has the adjacent-interchange property: decreasing jobs (b <= 0) first by
   increasing a, then increasing jobs by decreasing a - b (Abdel-Wahab & Kameda 1978;
   Monma & Sidney 1979). Each chain is cut into blocks by merging a job into its
   predecessor while it ranks higher ("ms"), and the blocks of all chains merged by rank
   give an optimal order (for trees: Liu 1987).
2. A chain's operators after its first never need to pause inside such a block.
3. Charging J to the chain c that starts last, a chain's first operator (a = b = its
   output) ranks lowest of all, so it can be delayed until just before its first
   successor: either the chain's first block, or c's first operator. So a chain either
   starts with its first block in one go while J is live, or starts in the final
   "lump" of first operators that frees J.

The remaining choices (which chains start early and how far they run before the lump)
are a dynamic programme over the states "for each chain: not started, or how many of its
blocks are done" while J is live; each state also tries the lump, finished by rule 1.
The work is the product over the chains of (blocks + 1): a few dozen states for most
groups; exponential only in the number of parallel branches, as µNAS's own recursion is
(which is exponential in the number of operators as well).

tests/test_munas.py compares the result with a transcription of µNAS's own
recursion and with a plain search over every order, on sampled networks and random
graphs.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from typing import NamedTuple


class Group(NamedTuple):
    """A fork-join stretch of the graph: tensor J (bytes; 0 for the network input) feeds
    every chain; each chain lists the sizes of the tensors its operators produce, in
    order; the chains' last tensors are added (``add_cost``: bytes live during the
    addition; 0 when K = 1 and there is no addition)."""

    j: int
    chains: tuple[tuple[int, ...], ...]
    add_cost: int


Job = tuple[int, int]  # (a, b): peak above the base while it runs, net change after


def _rank(a: int, b: int) -> tuple[int, int]:
    """Sort key: smaller runs earlier (decreasing jobs by a; then increasing by a - b)."""
    return (0, a) if b <= 0 else (1, b - a)


def _then(s: Job, t: Job) -> Job:
    """The job ``s`` followed by ``t``."""
    return (max(s[0], s[1] + t[0]), s[1] + t[1])


def blocks(jobs: Sequence[Job]) -> list[Job]:
    """Cut a chain of jobs into blocks of non-increasing rank (a job that ranks higher
    than the block before it joins that block)."""
    out: list[Job] = []
    for job in jobs:
        out.append(job)
        while len(out) >= 2 and _rank(*out[-1]) < _rank(*out[-2]):
            t = out.pop()
            out.append(_then(out.pop(), t))
    return out


def chain_peak(j: int, residents: Sequence[int]) -> int:
    """Peak of a single chain fed by a tensor of ``j`` bytes."""
    prev, peak = j, 0
    for x in residents:
        if prev + x > peak:
            peak = prev + x
        prev = x
    return peak


def group_peak(j: int, chains: Sequence[Sequence[int]]) -> int:
    """The smallest peak over every order of a group's operators (see module doc)."""
    k_n = len(chains)
    if k_n == 1:
        return chain_peak(j, chains[0])
    rest: list[list[Job]] = []
    for r in chains:
        rest.append(blocks([(r[i], r[i] - r[i - 1]) for i in range(1, len(r))]))
    if j == 0:  # rule 1 on whole chains
        peak = t = 0
        for _, a, b in sorted(
            (_rank(a, b), a, b)
            for r, lst in zip(chains, rest, strict=True)
            for a, b in blocks([(r[0], r[0]), *lst])
        ):
            if t + a > peak:
                peak = t + a
            t += b
        return peak
    r1 = [r[0] for r in chains]
    nb = [len(x) for x in rest]
    # every rest block in one rank order, for the J-free finish after the lump (rule 1)
    seq = [
        (k, i, a, b)
        for _, k, i, a, b in sorted(
            (_rank(a, b), k, i, a, b) for k in range(k_n) for i, (a, b) in enumerate(rest[k])
        )
    ]
    # coordinate x_k: 0 = not started; x >= 1: started, rest blocks 0 .. x-1 done
    res: list[list[int]] = []
    for k in range(k_n):
        acc = [0, r1[k] + rest[k][0][1]] if nb[k] else [0]
        for i in range(1, nb[k]):
            acc.append(acc[-1] + rest[k][i][1])
        res.append(acc)
    start_a = [_then((r1[k], r1[k]), rest[k][0])[0] if nb[k] else 0 for k in range(k_n)]
    dims = [nb[k] + 1 for k in range(k_n)]
    strides = []
    size = 1
    for d in dims:
        strides.append(size)
        size *= d
    f = [0] * size
    # states in decreasing index order: every move increases one coordinate
    for x in itertools.product(*[range(d - 1, -1, -1) for d in reversed(dims)]):
        x = x[::-1]
        waiting = [k for k in range(k_n) if x[k] == 0]
        if not waiting:
            continue  # J is gone: reached only through the lump
        idx = 0
        t = j
        for k in range(k_n):
            idx += x[k] * strides[k]
            t += res[k][x[k]]
        # the lump: every waiting chain's first operator; J is freed after the last one
        lump = t + sum(r1[k] for k in waiting)
        best = lump
        t2 = lump - j
        for k, i, a, b in seq:
            if i >= x[k]:
                if t2 + a > best:
                    best = t2 + a
                t2 += b
        for k in range(k_n):
            xk = x[k]
            if xk == 0:
                if len(waiting) < 2 or not nb[k]:
                    continue
                cost = t + start_a[k]
            elif xk < nb[k]:
                cost = t + rest[k][xk][0]
            else:
                continue
            if cost >= best:
                continue
            v = f[idx + strides[k]]
            if v < cost:
                v = cost
            if v < best:
                best = v
        f[idx] = best
    return f[0]


def peak_memory(groups: Sequence[Group]) -> int:
    """The peak over a graph's groups (their additions included)."""
    peak = 0
    for g in groups:
        peak = max(peak, g.add_cost, group_peak(g.j, g.chains))
    return peak
