"""The one ranking rule: direction, NaN last, and how ties are broken.

``top``, every search algorithm (including two-stage's filter) and the SQL behind them
order candidates the same way:

1. NaN (and missing) values last;
2. by the value, best first (the metric's direction; -inf for a higher-is-better metric,
   +inf for a lower-is-better one, fall last among numbers by themselves);
3. ties by the tie-break rule:
   - ``first`` (the default, the dissertation's Algorithm 1): the first drawn, i.e. the
     lowest position in sampling order, which is a seeded random choice;
   - ``smallest`` / ``largest``: fewer / more parameters, then first drawn;
   - a metric name: that metric's value in its own direction (NaN last), then first
     drawn;
4. then the identity, so the order is total.

Relu_count takes only 7 values over NATS-Bench TSS, so ties are the normal case there and
the rule matters: inside a tie group accuracy rises with size, so ``smallest`` picks the
smallest, least accurate network (see docs/search.md).

``RankRule.key`` is the Python form, ``RankRule.sql_order`` the SQL form; a test holds
them to the same order.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nasfilter.errors import UsageError

TIE_RULES: tuple[str, ...] = ("first", "smallest", "largest")
DEFAULT_TIE_BREAK = "first"


def check_tie_break(rule: str) -> str:
    """A valid tie-break: one of ``TIE_RULES`` or a registered metric's name."""
    text = str(rule).strip()
    if text in TIE_RULES:
        return text
    from nasfilter.metrics.registry import get_metric

    try:
        return get_metric(text).name
    except UsageError:
        raise UsageError(
            f"Unknown --tie-break {rule!r}.",
            "Choose first, smallest, largest, or a metric name (e.g. naswot).",
        ) from None


def _isnan(v: Any) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


@dataclass(frozen=True)
class RankRule:
    """Order by a value (``higher_is_better``), NaN last, ties by ``tie_break``
    (``tie_higher_is_better``: the tie metric's direction, when it is a metric)."""

    higher_is_better: bool
    tie_break: str = DEFAULT_TIE_BREAK
    tie_higher_is_better: bool = True

    def value_key(self, value: float | None) -> tuple[bool, float]:
        if _isnan(value):
            return (True, 0.0)
        v = float(value)  # type: ignore[arg-type]
        return (False, -v if self.higher_is_better else v)

    def key(
        self,
        value: float | None,
        position: int,
        params: float | None,
        arch: str = "",
        tie_value: float | None = None,
    ) -> tuple[Any, ...]:
        """Sort key (ascending = best first)."""
        nan, v = self.value_key(value)
        if self.tie_break == "first":
            tie: tuple[Any, ...] = ()
        elif self.tie_break == "smallest":
            tie = (math.inf if params is None else params,)
        elif self.tie_break == "largest":
            tie = (math.inf if params is None else -params,)
        else:
            tnan = _isnan(tie_value)
            t = 0.0 if tnan else float(tie_value)  # type: ignore[arg-type]
            tie = (tnan, -t if self.tie_higher_is_better else t)
        return (nan, v, *tie, position, arch)

    def sql_order(
        self, value: str, position: str, params: str, arch: str, tie_value: str | None = None
    ) -> str:
        """The ORDER BY list for SQL columns (expressions) of value, position, params,
        identity and, for a metric tie-break, the tie metric's value."""
        direction = "DESC" if self.higher_is_better else "ASC"
        parts = [f"({value} IS NULL OR isnan({value}))", f"{value} {direction}"]
        if self.tie_break == "smallest":
            parts.append(f"{params} ASC NULLS LAST")
        elif self.tie_break == "largest":
            parts.append(f"{params} DESC NULLS LAST")
        elif self.tie_break not in TIE_RULES:
            if tie_value is None:
                raise ValueError("a metric tie-break needs its value column")
            tdir = "DESC" if self.tie_higher_is_better else "ASC"
            parts += [f"({tie_value} IS NULL OR isnan({tie_value}))", f"{tie_value} {tdir}"]
        parts += [f"{position} ASC", f"{arch} ASC"]
        return ", ".join(parts)

    def same_value(self, a: float | None, b: float | None) -> bool:
        """Whether two values tie (NaN ties with NaN)."""
        if _isnan(a) or _isnan(b):
            return _isnan(a) and _isnan(b)
        return float(a) == float(b)  # type: ignore[arg-type]


def top_indices(
    rule: RankRule,
    values: Sequence[float | None],
    positions: Sequence[int],
    params: Sequence[float | None],
    archs: Sequence[str],
    k: int,
    tie_values: Callable[[list[int]], dict[int, float | None]] | None = None,
) -> tuple[list[int], int]:
    """The indices of the ``k`` best, best first, and the size of the tie group at the
    cut (how many share the k-th value, inside and outside the top k).

    With a metric tie-break, ``tie_values(indices)`` is asked only for the members of
    tie groups that decide the top k (the group at the cut, and groups inside the top k
    for their order), so a costly secondary metric is computed for few candidates.
    """
    n = len(values)
    if n == 0 or k < 1:
        return [], 0
    k = min(k, n)
    base = RankRule(rule.higher_is_better, "first")
    if rule.tie_break in TIE_RULES:
        order = sorted(
            range(n), key=lambda i: rule.key(values[i], positions[i], params[i], archs[i])
        )
    else:
        order = sorted(
            range(n), key=lambda i: base.key(values[i], positions[i], params[i], archs[i])
        )
        # resolve the groups inside the top k (and the group at the cut) by the metric
        groups: list[list[int]] = []
        for i in order:
            if groups and rule.same_value(values[groups[-1][0]], values[i]):
                groups[-1].append(i)
            else:
                if sum(len(g) for g in groups) >= k:
                    break
                groups.append([i])
        need = [i for g in groups if len(g) > 1 for i in g]
        tv = tie_values(need) if (need and tie_values is not None) else {}
        resolved: list[int] = []
        for g in groups:
            if len(g) > 1:
                g = sorted(
                    g,
                    key=lambda i: rule.key(values[i], positions[i], params[i], archs[i], tv.get(i)),
                )
            resolved.extend(g)
        placed = set(resolved)
        order = resolved + [i for i in order if i not in placed]
    top = order[:k]
    cut = values[top[-1]]
    group = sum(1 for v in values if rule.same_value(v, cut))
    return top, group
