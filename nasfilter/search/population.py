"""Where a search samples: the whole space, or a list of members (e.g. the architectures
with ground truth)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from nasfilter.errors import SampleSizeError
from nasfilter.spaces.base import Space

#: Mutations tried on a restricted population of a space without positions before a
#: random member is taken instead.
_MUTATION_TRIES = 200


class Population:
    """The whole space (``members`` None), or the given members, kept in a fixed order
    (the space's rank order when it is enumerable, else sorted identities) so that a
    seed always draws the same ones."""

    def __init__(
        self,
        space: Space,
        members: Sequence[str] | None = None,
        label: str = "space",
        budget: Any = None,
        shape: Any = None,
    ):
        """``budget`` (a ``nasfilter.budgets.Budget``): only architectures within it
        belong to the population (checked on the space's analytic figures at ``shape``):
        members outside it are dropped, samples are drawn by rejection, children by
        mutating again (see ``mutate``)."""
        self.space = space
        self.label = label
        self.budget = budget
        self.shape = shape
        self._features: np.ndarray | None = None
        if members is not None and budget is not None:
            from nasfilter.budgets import budget_shape

            sh = budget_shape(space, budget, shape)
            members = [a for a in members if budget.check(space.costs(a, sh)).ok]
            self.label = f"{label} within {budget.describe()}"
        if members is None:
            self.members: list[str] | None = None
            self.size: int | None = space.size
            if budget is not None:
                self.size = None  # unknown: how many fit is found by sampling
                self.label = f"the {space.name} space within {budget.describe()}"
        else:
            unique = set(members)
            key = space.rank if space.enumerable else None
            self.members = sorted(unique, key=key) if key else sorted(unique)
            self._index = {a: i for i, a in enumerate(self.members)}
            self.size = len(self.members)

    def check(self, n: int, what: str = "--n") -> None:
        if self.size is not None and n > self.size:
            where = (
                f"the {self.space.name} space"
                if self.members is None
                else f"the population ({self.label})"
            )
            raise SampleSizeError(
                f"{what} {n} is larger than {where}, which has {self.size:,} architectures.",
                f"Use {what} {self.size} or less.",
            )

    def sample(self, n: int, seed: int) -> list[str]:
        """``n`` distinct members drawn with ``seed``. On the whole space this is
        ``space.sample(n, seed)``, the sample of ``nasfilter score --n n --seed seed``."""
        self.check(n)
        if self.members is None:
            if self.budget is not None:
                from nasfilter.budgets import sample_feasible

                return sample_feasible(self.space, n, seed, self.budget, self.shape)
            return self.space.sample(n, seed)
        rng = np.random.default_rng(seed)
        idx = rng.choice(len(self.members), size=n, replace=False)
        return [self.members[int(i)] for i in idx]

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """A mutation of ``arch`` inside the population.

        On the whole space: ``space.mutate`` (with a budget: the first of up to 100
        mutations within it, else a fresh feasible draw; infeasible children are never
        scored). On a restricted population of a space with
        positions (``features``): a random member at the smallest positive number of
        changed positions. Otherwise: the first of up to 200 mutations that lands in the
        population, else a random member.
        """
        if self.members is None:
            if self.budget is not None:
                from nasfilter.budgets import mutate_feasible, sample_feasible

                child = mutate_feasible(self.space, arch, rng, self.budget, self.shape)
                if child is None:  # no feasible mutation of this parent: a fresh draw
                    seed = int(rng.integers(2**31))
                    child = sample_feasible(self.space, 1, seed, self.budget, self.shape)[0]
                return child
            return self.space.mutate(arch, rng)
        if len(self.members) == 1:
            return self.members[0]
        feats = self.space.features(arch)
        if feats is not None:
            if self._features is None:
                self._features = np.array(
                    [self.space.features(a) for a in self.members], dtype=np.int64
                )
            d = np.array(feats, dtype=np.int64)
            dist = (self._features != d).sum(axis=1)
            dist[dist == 0] = np.iinfo(np.int64).max  # never the parent itself
            best = np.flatnonzero(dist == dist.min())
            return self.members[int(best[int(rng.integers(len(best)))])]
        for _ in range(_MUTATION_TRIES):
            child = self.space.mutate(arch, rng)
            if child in self._index and child != arch:
                return child
        while True:
            child = self.members[int(rng.integers(len(self.members)))]
            if child != arch:
                return child
