"""The search-space interface.

A space knows the canonical identity of its architectures (parse, validate, format),
how many there are, how to enumerate and sample them without building anything, their
analytic costs, and how to build the torch network (torch is imported only there).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from nasfilter.errors import SampleSizeError

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn


@dataclass(frozen=True)
class DatasetShape:
    """What a dataset means for a network: classes and input resolution."""

    name: str
    num_classes: int
    resolution: int
    channels: int = 3


DATASETS: dict[str, DatasetShape] = {
    "cifar10": DatasetShape("cifar10", 10, 32),
    "cifar100": DatasetShape("cifar100", 100, 32),
    "imagenet16-120": DatasetShape("imagenet16-120", 120, 16),
}


@dataclass(frozen=True)
class Costs:
    """Analytic costs of one network for one input sample.

    params: trainable parameters (weights, biases, BN affine).
    flops: multiply-accumulates of convolutions and linear layers, plus bias adds
        (the NATS-Bench counter's convention: BN, pooling, ReLU and additions are not
        counted). Not divided by 1e6.
    relu_count: N_A, elements entering a ReLU, summed over every ReLU call.
    """

    params: int
    flops: int
    relu_count: int


class Space(ABC):
    """A search space. Subclasses register themselves with ``@register_space``."""

    name: str
    description: str
    size: int
    notation: str  # one-line description of the identity format

    # -- identity ---------------------------------------------------------------------
    @abstractmethod
    def parse(self, arch: str) -> Any:
        """Parse and validate an identity; raise InvalidArchitectureError if malformed."""

    @abstractmethod
    def format(self, parsed: Any) -> str:
        """The canonical identity string of a parsed architecture."""

    def canonical(self, arch: str) -> str:
        return self.format(self.parse(arch))

    @abstractmethod
    def unrank(self, index: int) -> str:
        """The identity at position ``index`` of the space's own enumeration order."""

    @abstractmethod
    def rank(self, arch: str) -> int:
        """Inverse of ``unrank``."""

    # -- enumeration --------------------------------------------------------------------
    def enumerate(self) -> Iterator[str]:
        for i in range(self.size):
            yield self.unrank(i)

    def check_sample_size(self, n: int) -> None:
        """Raise SampleSizeError unless 1 <= n <= size."""
        if n < 1:
            raise SampleSizeError(f"--n must be at least 1 (got {n}).")
        if n > self.size:
            raise SampleSizeError(
                f"--n {n} is larger than the {self.name} space, which has {self.size:,} "
                f"architectures.",
                f"Use --n {self.size} or --all.",
            )

    def sample_indices(self, n: int, seed: int) -> np.ndarray:
        """``n`` distinct positions drawn with ``seed``, in draw order (int64)."""
        self.check_sample_size(n)
        rng = np.random.default_rng(seed)
        return rng.choice(self.size, size=n, replace=False).astype(np.int64)

    def sample(self, n: int, seed: int) -> Iterator[str]:
        for i in self.sample_indices(n, seed):
            yield self.unrank(int(i))

    # -- neighbourhood (used by evolutionary search) ---------------------------------------
    # ``radices``: the number of choices at each position of the identity, in the order
    # ``unrank`` reads them (mixed radix, first position least significant). Spaces that
    # set it get ``digits``, ``neighbours`` and ``mutate`` for free.
    radices: tuple[int, ...] = ()

    def digits(self, arch: str) -> tuple[int, ...]:
        """The choice made at each position (``rank`` in mixed radix ``radices``)."""
        if not self.radices:
            raise NotImplementedError(f"{self.name} does not define positions (radices)")
        index = self.rank(arch)
        out = []
        for r in self.radices:
            index, d = divmod(index, r)
            out.append(d)
        return tuple(out)

    def from_digits(self, digits: tuple[int, ...]) -> str:
        """Inverse of ``digits``."""
        index = 0
        for d, r in zip(reversed(digits), reversed(self.radices), strict=True):
            if not 0 <= d < r:
                raise IndexError(d)
            index = index * r + d
        return self.unrank(index)

    def neighbours(self, arch: str) -> list[str]:
        """Every identity that differs from ``arch`` at exactly one position (one TSS
        edge's operation, one SSS layer's width), in position-then-choice order."""
        digits = self.digits(arch)
        out = []
        for pos, r in enumerate(self.radices):
            for d in range(r):
                if d != digits[pos]:
                    out.append(self.from_digits(digits[:pos] + (d,) + digits[pos + 1 :]))
        return out

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """One uniformly drawn neighbour: a random position, then a different choice."""
        digits = list(self.digits(arch))
        pos = int(rng.integers(len(self.radices)))
        d = int(rng.integers(self.radices[pos] - 1))
        digits[pos] = d if d < digits[pos] else d + 1
        return self.from_digits(tuple(digits))

    # -- costs and networks ---------------------------------------------------------------
    @abstractmethod
    def costs(self, arch: str, dataset: DatasetShape = DATASETS["cifar10"]) -> Costs:
        """Analytic params, flops and ReLU count, without building anything."""

    @abstractmethod
    def build(self, arch: str, num_classes: int = 10) -> nn.Module:
        """The torch network (imports torch)."""

    def needs(self, metric: Any) -> str:
        """What scoring this space with ``metric`` (a registry Metric) needs."""
        if not metric.needs_model:
            return "nothing (analytic)"
        return "torch (networks built)" + (", input images (--data)" if metric.needs_data else "")
