"""Aggregate metrics: metrics defined over other metrics (their components).

An aggregate is registered like any metric (``@aggregate`` below or
``registry.register``) and is usable wherever a metric name is; scoring it scores its
components too. Two kinds:

- ``formula``: a documented function of one architecture's own component values with
  fixed constants. It does not depend on which other architectures are scored, so the
  scorer computes it per architecture right after the components (path ``aggregate``)
  and it behaves as any other metric everywhere (search, evolution, reuse).
- ``rank``: a function of the architecture's *ranks* among a population (AZ-NAS' sum of
  log ranks, a mean rank). The value depends on the population: a score run's value is
  over the run's architectures, computed when the run completes (again after
  ``--resume``) by the SQL macro ``rank_aggregate`` (nasfilter/sql/aggregate.sql, path
  ``rank``); a search ranks within the candidates it compares (a repeat's N samples; the
  kept candidates in two-stage's second stage) with ``rank_values`` below, which gives
  the same numbers as the macro on the same population.

The rank rule (both implementations). For a population of n architectures and a
component c with sign s (+1: larger is better inside the aggregate, -1: smaller), r_c(a)
is a's ascending rank, 1 = worst and n = best, of the key s·value: NaN (and a missing
value) lowest, then the keys in increasing order (-inf lowest among numbers); tied keys
take the average of their ranks (``scipy.stats.rankdata``'s default, AZ-NAS' ranking).
Then

- form ``log``:  A(a) = Σ_c w_c · ln(r_c(a) / n)   (AZ-NAS: all w_c = 1); at most 0;
- form ``mean``: A(a) = Σ_c w_c · r_c(a) / n / Σ_c w_c, in (0, 1].

Higher is better for both. Statuses: ``ok`` when every component value of the
architecture is a number (±inf included); otherwise the value is still computed (the NaN
component ranked lowest, as AZ-NAS does) and the status names the components that were
not: ``nan component: az_expressivity``.

Nothing here imports torch; numpy is imported in the functions that compute.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

KINDS: tuple[str, ...] = ("formula", "rank")
RANK_FORMS: tuple[str, ...] = ("log", "mean")

#: ``run_metrics.path`` of each kind.
PATH_OF_KIND = {"formula": "aggregate", "rank": "rank"}


@dataclass(frozen=True)
class Component:
    """One input of an aggregate: a metric, its weight, and its sign inside the
    aggregate (+1: a larger value is better, -1: a smaller one; independent of the
    metric's own direction: AZ-NAS counts more FLOPs as better)."""

    metric: str
    weight: float = 1.0
    sign: int = 1

    def as_dict(self) -> dict[str, Any]:
        return {"metric": self.metric, "weight": float(self.weight), "sign": int(self.sign)}


@dataclass(frozen=True)
class Aggregate:
    """The definition of an aggregate metric (see module doc)."""

    kind: str
    components: tuple[Component, ...]
    #: rank kind: 'log' or 'mean'
    form: str = "log"
    #: formula kind: values by component name (floats or numpy arrays) -> value(s);
    #: numpy arithmetic, so a column of architectures is one call
    formula: Callable[[Mapping[str, Any]], Any] | None = None
    #: the formula in words and symbols, stored with every run
    formula_text: str = ""

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.metric for c in self.components)

    @property
    def path(self) -> str:
        return PATH_OF_KIND[self.kind]

    def check(self, name: str) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"aggregate {name!r}: kind must be one of {KINDS}")
        if not self.components:
            raise ValueError(f"aggregate {name!r} has no components")
        if len(set(self.names)) != len(self.names):
            raise ValueError(f"aggregate {name!r} names a component twice")
        for c in self.components:
            if c.sign not in (1, -1):
                raise ValueError(f"aggregate {name!r}: the sign of {c.metric} must be +1 or -1")
            if not math.isfinite(c.weight) or c.weight <= 0:
                raise ValueError(f"aggregate {name!r}: the weight of {c.metric} must be > 0")
        if self.kind == "rank" and self.form not in RANK_FORMS:
            raise ValueError(f"aggregate {name!r}: form must be one of {RANK_FORMS}")
        if self.kind == "formula" and self.formula is None:
            raise ValueError(f"aggregate {name!r}: a formula aggregate needs formula=")

    def as_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {
            "kind": self.kind,
            "components": [c.as_dict() for c in self.components],
            "formula": self.formula_text or self.describe(),
        }
        if self.kind == "rank":
            d["form"] = self.form
        return d

    def describe(self) -> str:
        """The rank formula in symbols (formula aggregates give ``formula_text``)."""
        if self.kind == "formula":
            return self.formula_text
        terms = []
        for c in self.components:
            w = "" if c.weight == 1 else f"{c.weight:g}·"
            s = "" if c.sign == 1 else "-"
            r = f"r({s}{c.metric})"
            terms.append(f"{w}ln({r}/n)" if self.form == "log" else f"{w}{r}/n")
        body = " + ".join(terms)
        if self.form == "mean":
            body = f"({body}) / {sum(c.weight for c in self.components):g}"
        return body + "; r = ascending rank in the population (1 worst .. n best, ties averaged)"


# -- formula kind ---------------------------------------------------------------------------


def _bad(status: str) -> bool:
    """A component status whose value is not a number (NaN, error, oom, ...)."""
    return status not in ("ok", "inf", "-inf")


def formula_value(agg: Aggregate, values: Mapping[str, tuple[float, str]]) -> tuple[float, str]:
    """(value, status) of a formula aggregate from its components' (value, status)."""
    from nasfilter.metrics.registry import Score

    assert agg.formula is not None
    bad = [n for n in agg.names if _bad(values[n][1])]
    v = float(agg.formula({n: float(values[n][0]) for n in agg.names}))
    st = Score.of(v).status
    if bad:
        st = "component " + ", ".join(f"{n}: {values[n][1]}" for n in bad)
    return v, st[:200]


def formula_column(
    agg: Aggregate, columns: Mapping[str, tuple[Any, Sequence[str]]]
) -> tuple[Any, list[str]]:
    """(values, statuses) of a formula aggregate over many architectures: ``columns``
    maps each component to (float array, statuses) in the same order."""
    import numpy as np

    assert agg.formula is not None
    with np.errstate(all="ignore"):
        vals = np.asarray(
            agg.formula({n: np.asarray(columns[n][0], dtype=np.float64) for n in agg.names}),
            dtype=np.float64,
        )
    out = []
    for i, v in enumerate(vals):
        bad = [n for n in agg.names if _bad(columns[n][1][i])]
        if bad:
            out.append(("component " + ", ".join(f"{n}: {columns[n][1][i]}" for n in bad))[:200])
        elif math.isnan(v):
            out.append("nan")
        elif math.isinf(v):
            out.append("inf" if v > 0 else "-inf")
        else:
            out.append("ok")
    return vals, out


# -- rank kind ------------------------------------------------------------------------------


def ascending_ranks(values: Sequence[float | None], sign: int = 1) -> list[float]:
    """1-based ascending ranks of ``sign * value`` (1 = worst), NaN and None lowest,
    ties averaged: the rank rule of the module doc."""
    import numpy as np

    n = len(values)
    v = np.array([math.nan if x is None else float(x) for x in values], dtype=np.float64)
    nan = np.isnan(v)
    key = np.where(nan, 0.0, v * sign)
    # lexicographic: NaN group first, then the key ascending
    order = np.lexsort((key, ~nan))
    ranks = np.empty(n, dtype=np.float64)
    i = 0
    while i < n:
        j = i
        a = order[i]
        while j + 1 < n:
            b = order[j + 1]
            if nan[a] != nan[b] or (not nan[a] and key[a] != key[b]):
                break
            j += 1
        ranks[order[i : j + 1]] = (i + 1 + j + 1) / 2.0
        i = j + 1
    return [float(r) for r in ranks]


def rank_values(
    agg: Aggregate, columns: Mapping[str, Sequence[float | None]]
) -> tuple[list[float], list[str]]:
    """(values, statuses) of a rank aggregate over a population: ``columns`` maps each
    component to its values over the population (one entry per architecture, the same
    order; NaN or None where a value is missing). The arithmetic is the SQL macro's, in
    its order (components by name, summed left to right), so the two agree exactly."""

    n = len(next(iter(columns.values()))) if columns else 0
    if n == 0:
        return [], []
    comps = sorted(agg.components, key=lambda c: c.metric)  # the SQL macro's order
    ranks = [ascending_ranks(columns[c.metric], c.sign) for c in comps]
    total = []
    for i in range(n):  # term by term, summed left to right as SQL's list_sum
        if agg.form == "log":
            terms = [c.weight * math.log(r[i] / n) for c, r in zip(comps, ranks, strict=True)]
        else:
            terms = [c.weight * r[i] / n for c, r in zip(comps, ranks, strict=True)]
        acc = terms[0]
        for t in terms[1:]:
            acc = acc + t
        if agg.form == "mean":
            wsum = comps[0].weight
            for c in comps[1:]:
                wsum = wsum + c.weight
            acc = acc / wsum
        total.append(acc)
    out = []
    for i in range(n):
        bad = [
            c.metric
            for c in agg.components
            if columns[c.metric][i] is None or math.isnan(float(columns[c.metric][i]))  # type: ignore[arg-type]
        ]
        out.append(("nan component: " + ", ".join(sorted(bad)))[:200] if bad else "ok")
    return [float(x) for x in total], out


# -- registration ---------------------------------------------------------------------------


def register_aggregate(
    name: str,
    *,
    kind: str,
    components: Sequence[Component | str | tuple[str, float] | tuple[str, float, int]],
    description: str,
    version: str = "1",
    form: str = "log",
    formula: Callable[[Mapping[str, Any]], Any] | None = None,
    formula_text: str = "",
    higher_is_better: bool = True,
    unit: str = "",
    source: str = "",
) -> Any:
    """Register aggregate ``name`` (a ``Metric`` with ``aggregate`` set) and return it.

    ``components``: metric names, (name, weight) or (name, weight, sign) tuples, or
    ``Component`` objects. Its needs are the union of its components' (resolved once every
    metric is registered: a component must be a registered metric, not an aggregate).
    """
    from nasfilter.metrics.registry import Metric, register

    comps = []
    for c in components:
        if isinstance(c, Component):
            comps.append(c)
        elif isinstance(c, str):
            comps.append(Component(c))
        else:
            comps.append(Component(*c))
    agg = Aggregate(kind, tuple(comps), form, formula, formula_text)
    return register(
        Metric(
            name=name,
            version=version,
            higher_is_better=higher_is_better,
            description=description,
            unit=unit,
            source=source,
            aggregate=agg,
        )
    )
