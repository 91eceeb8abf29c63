"""The search-space interface, by capability.

Every space knows the canonical identity of its architectures (parse, validate, format;
``canonical`` may accept several input notations and map them to the one identity),
how to draw seeded samples, and how to build the torch network (torch is imported only
there). Everything else is optional and declared:

- ``enumerable``: the space can be listed (``size``, ``enumerate``, ``rank``/``unrank``);
  sampling then draws positions without replacement. A sampling-only space (``size`` is
  None) implements ``draw(rng)`` instead and ``sample`` keeps the first ``n`` distinct
  draws.
- ``figures``: the analytic figures ``costs(arch, shape)`` computes from the identity,
  without building anything (``params``, ``flops``, ``relu_count``, or space-specific
  ones such as ``macs``). A metric whose ``figure`` a space lacks is measured on the built
  network instead (or refused, if it has no model path).
- ``mutate``/``neighbours``: the space's own neighbourhood, used by evolutionary search.
  ``MixedRadixSpace`` derives them from a fixed list of positions (``radices``).
- ``features(arch)``: a tuple of per-position choices, when the space has one; a search
  restricted to a population uses it as a distance (number of differing positions).
- ``shapes``: the dataset shapes a space can be built at (names in
  ``nasfilter.datasets.SHAPES``); the first is its default.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from nasfilter.datasets import SHAPES, DatasetShape, get_shape
from nasfilter.errors import SampleSizeError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

#: Kept for existing imports: the NATS-Bench shapes by name.
DATASETS = SHAPES

#: How many draws a sampling-only space may take per architecture asked for before
#: ``sample`` gives up (the space is then smaller than it claims, or ``draw`` is stuck).
_DRAWS_PER_ARCH = 50


@dataclass(frozen=True)
class Costs:
    """Analytic figures of one network for one input sample.

    params: trainable parameters (weights, biases, BN affine).
    flops: multiply-accumulates of convolutions and linear layers, plus bias adds
        (the NATS-Bench counter's convention: BN, pooling, ReLU and additions are not
        counted). Not divided by 1e6.
    relu_count: N_A, elements entering a ReLU, summed over every ReLU call.
    extra: space-specific figures by name (e.g. ``macs``, ``peak_ram_kb``).

    A figure a space does not compute is None.
    """

    params: int | None = None
    flops: int | None = None
    relu_count: int | None = None
    extra: Mapping[str, float] = field(default_factory=dict)

    def figure(self, name: str) -> float | None:
        """A figure by name (``params``, ``flops``, ``relu_count`` or an extra one)."""
        if name in ("params", "flops", "relu_count"):
            return getattr(self, name)  # type: ignore[no-any-return]
        return self.extra.get(name)


class Space(ABC):
    """A search space. Subclasses register themselves with ``@register_space``."""

    name: str
    description: str
    notation: str  # one-line description of the identity format
    #: number of architectures, when known (enumerable spaces); None for sampling-only
    size: int | None = None
    #: whether ``enumerate``/``rank``/``unrank`` work
    enumerable: bool = False
    #: analytic figures ``costs`` computes (empty: none; metrics are then measured)
    figures: frozenset[str] = frozenset()
    #: dataset shapes the space builds at; the first is the default
    shapes: tuple[str, ...] = ("cifar10", "cifar100", "imagenet16-120")
    #: how `nasfilter truth load` reads this space's benchmark: 'nats-bench' (the
    #: NATS-Bench API over a folder), 'nds-json' (an NDS data file), 'nb101-tfrecord'
    #: (NAS-Bench-101's TFRecord file); None: no loader (use `truth import`)
    truth_format: str | None = None
    #: ``module:function(store) -> LoadSummary`` loading ground truth shipped with
    #: nasfilter for this space (`nasfilter truth sample`), or None
    truth_sample: str | None = None

    # -- identity ---------------------------------------------------------------------
    @abstractmethod
    def parse(self, arch: str) -> Any:
        """Parse and validate an identity; raise InvalidArchitectureError if malformed."""

    @abstractmethod
    def format(self, parsed: Any) -> str:
        """The canonical identity string of a parsed architecture."""

    def canonical(self, arch: str) -> str:
        """The canonical identity of ``arch`` given in any notation the space accepts."""
        return self.format(self.parse(arch))

    # -- enumeration (enumerable spaces) ---------------------------------------------------
    def unrank(self, index: int) -> str:
        """The identity at position ``index`` of the space's own enumeration order."""
        raise self._not("enumerated (it is sampled only)")

    def rank(self, arch: str) -> int:
        """Inverse of ``unrank``."""
        raise self._not("enumerated (it is sampled only)")

    def enumerate(self) -> Iterator[str]:
        if not self.enumerable or self.size is None:
            raise self._not("enumerated (it is sampled only)")
        for i in range(self.size):
            yield self.unrank(i)

    # -- sampling -------------------------------------------------------------------------
    def check_sample_size(self, n: int) -> None:
        """Raise SampleSizeError unless 1 <= n <= size (any n >= 1 when size is unknown)."""
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
            raise SampleSizeError(f"--n must be an integer (got {n!r}).")
        if n < 1:
            raise SampleSizeError(f"--n must be at least 1 (got {n}).")
        if self.size is not None and n > self.size:
            raise SampleSizeError(
                f"--n {n} is larger than the {self.name} space, which has {self.size:,} "
                f"architectures.",
                f"Use --n {self.size} or --all." if self.enumerable else "Use a smaller --n.",
            )

    def sample_indices(self, n: int, seed: int) -> np.ndarray:
        """``n`` distinct positions drawn with ``seed``, in draw order (int64);
        enumerable spaces only."""
        if not self.enumerable or self.size is None:
            raise self._not("sampled by position (it is not enumerable)")
        self.check_sample_size(n)
        rng = np.random.default_rng(seed)
        return rng.choice(self.size, size=n, replace=False).astype(np.int64)

    def draw(self, rng: np.random.Generator) -> str:
        """One random canonical identity (sampling-only spaces implement this)."""
        raise self._not("sampled (it defines neither enumeration nor draw)")

    def sample(self, n: int, seed: int) -> list[str]:
        """``n`` distinct identities drawn with ``seed``, in draw order.

        Enumerable spaces draw positions without replacement (``sample_indices``);
        sampling-only spaces keep the first ``n`` distinct results of ``draw`` with a
        generator seeded by ``seed``. Either way the same (n, seed) gives the same list,
        and the sample for n is a prefix of the sample for a larger n only for
        sampling-only spaces.
        """
        self.check_sample_size(n)
        if self.enumerable:
            return [self.unrank(int(i)) for i in self.sample_indices(n, seed)]
        rng = np.random.default_rng(seed)
        out: dict[str, None] = {}
        budget = n * _DRAWS_PER_ARCH
        while len(out) < n:
            if budget == 0:
                raise SampleSizeError(
                    f"Could not draw {n:,} distinct {self.name} architectures "
                    f"({len(out):,} after {n * _DRAWS_PER_ARCH:,} draws).",
                    "Use a smaller --n.",
                )
            budget -= 1
            out.setdefault(self.draw(rng))
        return list(out)

    # -- neighbourhood (evolutionary search) ---------------------------------------------
    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """One random neighbour of ``arch`` (a valid, different architecture)."""
        raise self._not("mutated (it defines no neighbourhood)")

    def neighbours(self, arch: str) -> list[str]:
        """Every neighbour of ``arch``, when the neighbourhood is small enough to list."""
        raise self._not("listed by neighbourhood")

    def features(self, arch: str) -> tuple[Any, ...] | None:
        """Per-position choices of ``arch`` (a distance between architectures counts the
        positions that differ), or None when the space has no fixed positions."""
        return None

    @property
    def can_mutate(self) -> bool:
        return type(self).mutate is not Space.mutate

    # -- costs and networks ---------------------------------------------------------------
    def costs(self, arch: str, dataset: DatasetShape | None = None) -> Costs:
        """Analytic figures (those named in ``figures``), without building anything."""
        raise self._not("costed analytically (its figures are measured on built networks)")

    def costs_many(
        self, archs: Sequence[str], dataset: DatasetShape | None = None
    ) -> dict[str, np.ndarray]:
        """Every figure of ``figures`` for many architectures at once: float64 arrays in
        the order of ``archs`` (NaN where a figure is missing). Raises what ``costs``
        raises for a malformed identity.

        The last result is kept, so the several metrics of one chunk (relu_count, params,
        size_kb, ...) share one computation. Spaces with a vectorized form (a table of
        the whole space) override ``_costs_many``.
        """
        if dataset is None:
            dataset = self.shape(None)
        key = (dataset, tuple(archs))
        last = self.__dict__.get("_costs_many_last")
        if last is not None and last[0] == key:
            return last[1]  # type: ignore[no-any-return]
        out = self._costs_many(key[1], dataset)
        self.__dict__["_costs_many_last"] = (key, out)
        return out

    def _costs_many(
        self, archs: Sequence[str], dataset: DatasetShape | None = None
    ) -> dict[str, np.ndarray]:
        """``costs_many`` without the memo: loops over ``costs``."""
        out = {f: np.empty(len(archs), dtype=np.float64) for f in self.figures}
        for i, a in enumerate(archs):
            c = self.costs(a, dataset)
            for f, arr in out.items():
                v = c.figure(f)
                arr[i] = np.nan if v is None else v
        return out

    @abstractmethod
    def build(self, arch: str, shape: DatasetShape | int | None = None) -> nn.Module:
        """The torch network at a dataset shape (imports torch). An int is taken as
        the number of classes at the space's default shape (older callers)."""

    def shape(self, shape: DatasetShape | int | str | None = None) -> DatasetShape:
        """Resolve a shape argument: None (the default), a name, an int (number of
        classes at the default shape) or a DatasetShape; refuses shapes the space does
        not build at."""
        if isinstance(shape, DatasetShape):
            out = shape
        elif shape is None:
            out = get_shape(self.shapes[0])
        elif isinstance(shape, str):
            out = get_shape(shape)
        else:
            base = get_shape(self.shapes[0])
            out = DatasetShape(base.name, int(shape), base.resolution, base.channels, base.width)
        if out.name not in self.shapes:
            raise UsageError(
                f"The {self.name} space is not built at the {out.name} shape.",
                f"Choose one of: {', '.join(self.shapes)}.",
            )
        return out

    def needs(self, metric: Any) -> str:
        """What scoring this space with ``metric`` (a registry Metric) needs."""
        if metric.aggregate is not None:
            if metric.path_in(self) is None:
                return "not available"
            kind = "ranked in a population" if metric.aggregate.kind == "rank" else "a formula"
            return f"its components ({kind})"
        if metric.analytic_in(self):
            return "nothing (analytic)"
        if not metric.model_capable:
            return "not available"
        return "torch (networks built)" + (", input images (--data)" if metric.needs_data else "")

    def _not(self, what: str) -> UsageError:
        return UsageError(f"The {self.name} space cannot be {what}.")


class MixedRadixSpace(Space):
    """An enumerable space of fixed positions, each with a number of choices.

    ``radices``: the number of choices at each position of the identity, in the order
    ``unrank`` reads them (mixed radix, first position least significant). Subclasses
    get ``digits``, ``features``, ``neighbours`` and ``mutate`` for free.
    """

    enumerable = True
    radices: tuple[int, ...] = ()

    def digits(self, arch: str) -> tuple[int, ...]:
        """The choice made at each position (``rank`` in mixed radix ``radices``)."""
        index = self.rank(arch)
        out = []
        for r in self.radices:
            index, d = divmod(index, r)
            out.append(d)
        return tuple(out)

    def features(self, arch: str) -> tuple[int, ...]:
        return self.digits(arch)

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
