"""Microcontroller budgets: flash, RAM and MACs bounds, with µNAS's published presets.

A :class:`Budget` bounds three figures of a network (any may be left open):

- ``max_kb``: flash, the ``size_kb`` metric (parameters x bytes per parameter / 1000;
  int8: one byte per parameter);
- ``max_ram_kb``: peak activation memory, the ``peak_ram_kb`` metric (kB of int8
  activations, µNAS's resource model);
- ``max_macs``: the ``macs`` metric (µNAS's MAC count).

and records µNAS's error bound (``max_error``, a fraction), which only ground truth can
check (nasfilter scores untrained networks).

Presets (``BUDGETS``) are the bounds of µNAS's aging-evolution searches, from the
configuration files of the reference code (eliberis/uNAS ``configs/cnn_*_aging.py``,
``BoundConfig``; bytes there, 1 kB = 1000 bytes here):

==========================  ======  ========  ========  ==========
preset                      error   RAM (kB)  flash     MACs
==========================  ======  ========  ========  ==========
munas-cifar10               18%     75        75        30,000,000
munas-mnist                 3.5%    2.5       4.5       30,000,000
munas-speech-commands       8.5%    60        40        20,000,000
munas-chars74k              30%     10        20        1,000,000
==========================  ======  ========  ========  ==========

How a search treats a network over budget is documented in docs/spaces.md
(rejection: the figures are analytic and exact, so an infeasible child is discarded and
another mutation of the same parent drawn; ``Budget.excess`` gives µNAS's soft-constraint
alternative). Nothing here imports torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from nasfilter.errors import UsageError

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.datasets import DatasetShape
    from nasfilter.spaces.base import Costs, Space

#: budget field -> the metric (figure) it bounds
BOUNDED: dict[str, str] = {"max_kb": "size_kb", "max_ram_kb": "peak_ram_kb", "max_macs": "macs"}
#: the CLI flag of each budget field
FLAGS: dict[str, str] = {
    "max_kb": "--max-kb",
    "max_ram_kb": "--max-ram-kb",
    "max_macs": "--max-macs",
}


@dataclass(frozen=True)
class Violation:
    figure: str  # metric name: size_kb, peak_ram_kb or macs
    value: float
    bound: float

    def __str__(self) -> str:
        return f"{self.figure} {self.value:,.6g} > {self.bound:,.6g}"


@dataclass(frozen=True)
class BudgetCheck:
    """The outcome of checking one network: ``ok`` when every bound holds."""

    violations: tuple[Violation, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.violations

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True)
class Budget:
    name: str = "custom"
    max_kb: float | None = None
    max_ram_kb: float | None = None
    max_macs: float | None = None
    max_error: float | None = None  # fraction; checked against ground truth only
    shape: str | None = None  # the dataset shape the bounds were set for
    source: str = ""
    bytes_per_param: float = field(default=1.0, compare=False)

    def bounds(self) -> dict[str, float]:
        """Bounded figures: metric name -> bound (open bounds left out)."""
        out = {}
        for f, metric_name in BOUNDED.items():
            v = getattr(self, f)
            if v is not None:
                out[metric_name] = float(v)
        return out

    @property
    def figures(self) -> tuple[str, ...]:
        """The metrics this budget needs (size_kb, peak_ram_kb, macs)."""
        return tuple(self.bounds())

    def check(self, values: Costs | dict[str, float]) -> BudgetCheck:
        """Check a network's figures: a ``Costs`` (from ``Space.costs``; ``size_kb`` is
        params x ``bytes_per_param`` / 1000) or a mapping metric name -> value. A NaN or
        missing figure that is bounded is a violation (NaN value)."""
        vals = self.values(values)
        bad = []
        for name, bound in self.bounds().items():
            v = vals.get(name, math.nan)
            if not v <= bound:  # NaN fails too
                bad.append(Violation(name, v, bound))
        return BudgetCheck(tuple(bad))

    def values(self, values: Costs | dict[str, float]) -> dict[str, float]:
        """The bounded figures of ``values`` (a Costs or a mapping), by metric name."""
        if isinstance(values, dict):
            return {k: float(v) for k, v in values.items() if k in BOUNDED.values()}
        out: dict[str, float] = {}
        if values.params is not None:
            out["size_kb"] = values.params * self.bytes_per_param / 1000.0
        for name in ("peak_ram_kb", "macs"):
            v = values.figure(name)
            if v is not None:
                out[name] = float(v)
        return out

    def excess(self, values: Costs | dict[str, float], cap: float = 10.0) -> float:
        """µNAS's soft-constraint measure: the largest figure / bound ratio, each capped
        at ``cap`` (AgingEvoSearch's ``normalise``); <= 1 exactly when within budget.
        NaN when a bounded figure is missing."""
        vals = self.values(values)
        worst = 0.0
        for name, bound in self.bounds().items():
            v = vals.get(name, math.nan)
            r = min(v / bound, cap) if bound > 0 else (0.0 if v <= 0 else cap)
            if r != r:
                return math.nan
            worst = max(worst, r)
        return worst

    def describe(self) -> str:
        parts = []
        if self.max_kb is not None:
            parts.append(f"flash <= {self.max_kb:g} kB")
        if self.max_ram_kb is not None:
            parts.append(f"RAM <= {self.max_ram_kb:g} kB")
        if self.max_macs is not None:
            parts.append(f"MACs <= {self.max_macs:,.0f}")
        if self.max_error is not None:
            parts.append(f"error <= {self.max_error:.1%}")
        body = ", ".join(parts) if parts else "no bounds"
        return f"{self.name} ({body})" if self.name != "custom" else f"({body})"

    def with_bounds(
        self,
        max_kb: float | None = None,
        max_ram_kb: float | None = None,
        max_macs: float | None = None,
    ) -> Budget:
        """This budget with the given bounds replaced (None: keep)."""
        changes: dict[str, Any] = {
            k: v
            for k, v in (("max_kb", max_kb), ("max_ram_kb", max_ram_kb), ("max_macs", max_macs))
            if v is not None
        }
        for k, v in changes.items():
            _check_bound(FLAGS[k], v)
        return replace(self, **changes) if changes else self


def _check_bound(flag: str, v: Any) -> None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
        raise UsageError(f"{flag} must be a positive number, got {v!r}.", f"Pass e.g. {flag} 75.")


_SRC = "eliberis/uNAS configs/cnn_{}_aging.py BoundConfig (Liberis et al., EuroMLSys 2021)"

BUDGETS: dict[str, Budget] = {
    b.name: b
    for b in (
        Budget("munas-cifar10", 75, 75, 30_000_000, 0.18, "cifar10", _SRC.format("cifar10")),
        Budget("munas-mnist", 4.5, 2.5, 30_000_000, 0.035, "mnist", _SRC.format("mnist")),
        Budget(
            "munas-speech-commands",
            40,
            60,
            20_000_000,
            0.085,
            "speech-commands",
            _SRC.format("speech_commands"),
        ),  # fmt: skip
        Budget("munas-chars74k", 20, 10, 1_000_000, 0.30, "chars74k", _SRC.format("chars74k")),
    )
}


def get_budget(name: str) -> Budget:
    """A preset by name (any case); UsageError naming the choices otherwise."""
    key = str(name).strip().lower()
    if key not in BUDGETS:
        raise UsageError(f"Unknown budget {name!r}.", f"Choose one of: {', '.join(BUDGETS)}.")
    return BUDGETS[key]


def make_budget(
    preset: str | None = None,
    *,
    max_kb: float | None = None,
    max_ram_kb: float | None = None,
    max_macs: float | None = None,
    bytes_per_param: float = 1.0,
) -> Budget | None:
    """The budget of the CLI options ``--budget``, ``--max-kb``, ``--max-ram-kb``,
    ``--max-macs`` (explicit bounds override the preset's); None when none is given."""
    if preset is None and max_kb is None and max_ram_kb is None and max_macs is None:
        return None
    base = get_budget(preset) if preset is not None else Budget()
    out = base.with_bounds(max_kb=max_kb, max_ram_kb=max_ram_kb, max_macs=max_macs)
    return replace(out, bytes_per_param=bytes_per_param)


def require_figures(space: Space, budget: Budget, analytic_only: bool = False) -> None:
    """UsageError unless ``space`` can provide every figure ``budget`` bounds: analytically
    (``Space.figures``) or, unless ``analytic_only``, by a metric's model path."""
    from nasfilter.metrics.registry import get_metric

    for f, name in BOUNDED.items():
        if getattr(budget, f) is None:
            continue
        m = get_metric(name)
        path = m.path_in(space)
        if path is None or (analytic_only and path != "analytic"):
            have = [s for s in _spaces_with(name)]
            raise UsageError(
                f"The {space.name} space has no {name} figure, so {FLAGS[f]} cannot apply to it.",
                f"{FLAGS[f]} works for: {', '.join(have) or 'no space'}.",
            )


def _spaces_with(figure: str) -> list[str]:
    from nasfilter.spaces import list_spaces

    return [s.name for s in list_spaces() if figure in s.figures]


def check_arch(
    space: Space, arch: str, budget: Budget, shape: DatasetShape | None = None
) -> BudgetCheck:
    """Check one architecture of a space with analytic figures against ``budget`` at
    ``shape`` (default: the budget's own shape when the space builds at it, else the
    space's default shape)."""
    require_figures(space, budget, analytic_only=True)
    return budget.check(space.costs(arch, budget_shape(space, budget, shape)))


def budget_shape(space: Space, budget: Budget, shape: DatasetShape | None = None) -> DatasetShape:
    """``shape``, else the budget's own shape when the space builds at it, else the
    space's default shape."""
    if shape is not None:
        return space.shape(shape)
    return space.shape(budget.shape if budget.shape in space.shapes else None)


def sample_feasible(
    space: Space,
    n: int,
    seed: int,
    budget: Budget,
    shape: DatasetShape | None = None,
    max_draws: int | None = None,
) -> list[str]:
    """``n`` distinct architectures of ``space`` that meet ``budget`` (rejection sampling
    on the space's analytic figures): the first ones in the space's own seeded order
    (``draw`` for sampling-only spaces, a seeded permutation for enumerable ones).
    SampleSizeError after ``max_draws`` candidates (default 1000 per architecture)."""
    import numpy as np

    from nasfilter.errors import SampleSizeError

    require_figures(space, budget, analytic_only=True)
    space.check_sample_size(n)
    sh = budget_shape(space, budget, shape)
    limit = max_draws if max_draws is not None else 1000 * n
    rng = np.random.default_rng(seed)
    if space.enumerable and space.size is not None:
        order = rng.permutation(space.size)
        candidates: Any = (space.unrank(int(i)) for i in order)
    else:
        candidates = (space.draw(rng) for _ in iter(int, 1))
    out: dict[str, None] = {}
    draws = 0
    for arch in candidates:
        if len(out) == n:
            break
        if draws == limit:
            break
        draws += 1
        if arch not in out and budget.check(space.costs(arch, sh)).ok:
            out[arch] = None
    if len(out) < n:
        raise SampleSizeError(
            f"Only {len(out):,} of {draws:,} {space.name} architectures met the budget "
            f"{budget.describe()} at the {sh.name} shape.",
            "Loosen the budget or ask for fewer architectures.",
        )
    return list(out)


def mutate_feasible(
    space: Space,
    arch: str,
    rng: Any,
    budget: Budget,
    shape: DatasetShape | None = None,
    tries: int = 100,
) -> str | None:
    """A mutation of ``arch`` that meets ``budget``: up to ``tries`` mutations of the same
    parent, the first feasible one; None when all were infeasible (the search then takes
    another parent). Infeasible children are rejected, never scored."""
    require_figures(space, budget, analytic_only=True)
    sh = budget_shape(space, budget, shape)
    for _ in range(tries):
        child = space.mutate(arch, rng)
        if budget.check(space.costs(child, sh)).ok:
            return child
    return None


__all__ = [
    "BOUNDED",
    "BUDGETS",
    "FLAGS",
    "Budget",
    "BudgetCheck",
    "Violation",
    "budget_shape",
    "check_arch",
    "get_budget",
    "make_budget",
    "mutate_feasible",
    "require_figures",
    "sample_feasible",
]
