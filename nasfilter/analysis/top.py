"""The top-k candidates of a run under a size budget, in SQL (optionally size-penalized).

The order is ``nasfilter.ranking.RankRule``'s: NaN last, the metric's direction, then the
tie-break (default: first drawn, i.e. the lowest ``position``), then the identity.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from nasfilter.errors import UsageError
from nasfilter.ranking import TIE_RULES, RankRule, check_tie_break
from nasfilter.scoring.settings import penalized_name
from nasfilter.store import Store, _ident, sql_literal


@dataclass
class TopResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    sql: str
    penalty: dict[str, Any] | None = None  # penalty_settings(...) when ranked penalized
    tie_break: str = "first"
    tie_group: int = 0  # architectures sharing the value at the cut (0: no rows)
    cut_value: float | None = None
    candidates: int = 0  # architectures that fit the budget

    def tie_note(self, metric: str) -> str | None:
        """ "135 architectures tie at 614,400; showing 20 (ties: first drawn)." when the
        cut falls inside a tie group, else None."""
        if not self.rows or self.tie_group <= 1:
            return None
        shown = sum(1 for r in self.rows if _same(r[1], self.cut_value))
        if shown >= self.tie_group:
            return None
        v = self.cut_value
        value = "NaN" if v is None or (isinstance(v, float) and math.isnan(v)) else _fmt(v)
        rule = {
            "first": "first drawn",
            "smallest": "fewest parameters",
            "largest": "most parameters",
        }.get(self.tie_break, f"by {self.tie_break}")
        return (
            f"{self.tie_group:,} architectures tie at {metric} = {value}; showing {shown} of "
            f"them (ties: {rule}; --tie-break changes the rule)."
        )


def _same(a: Any, b: Any) -> bool:
    if a is None or b is None:
        return a is b
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return bool(a == b)


def _fmt(v: float) -> str:
    return f"{int(v):,}" if float(v).is_integer() and abs(v) < 1e15 else f"{v:.6g}"


def check_budget(name: str, value: float | None) -> float | None:
    """A size budget: a positive, finite number (None: no budget)."""
    if value is None:
        return None
    v = float(value)
    if not math.isfinite(v):
        raise UsageError(f"{name} must be a finite number (got {value}).", "Pass e.g. 200.")
    if v <= 0:
        raise UsageError(
            f"{name} must be positive (got {value:g}): no network is that small.",
            "Pass e.g. 200, or drop it for no budget.",
        )
    return v


def top_candidates(
    store: Store,
    run_id: int,
    metric: str,
    k: int,
    max_kb: float | None = None,
    penalty: str | None = None,
    mu: float = 0.2,
    sigma: float = 0.4,
    tie_break: str = "first",
    bounds: dict[str, float] | None = None,
) -> TopResult:
    """Best ``k`` architectures of ``run_id`` by ``metric`` with size_kb <= ``max_kb``
    and every other bounded metric (``bounds``: metric -> at most, e.g. peak_ram_kb, macs,
    from a ``nasfilter.budgets.Budget``) within its bound.

    Direction comes from the run's recorded metric metadata; the rest of the order is
    ``RankRule``'s (see module doc); a metric tie-break must be a metric of the run.

    With ``penalty`` (gdf, hsdf, rdf), the ranking is by ``metric x p(size_kb / 1000)``,
    computed on the fly from the run's stored ``size_kb`` (``nasfilter.penalties``) for a
    higher-is-better metric; the rows then also carry the factor, the penalized value
    (column ``<metric>_<penalty>``) and the penalty with its parameters.
    """
    if k < 1:
        raise UsageError(f"--k must be at least 1 (got {k}).")
    max_kb = check_budget("--max-kb", max_kb)
    tie_break = check_tie_break(tie_break)
    bounds = dict(bounds or {})
    if "size_kb" in bounds:
        kb = bounds.pop("size_kb")
        max_kb = kb if max_kb is None else min(max_kb, kb)
    meta = {m["metric"]: m for m in store.run_metrics(run_id)}
    for name in bounds:
        if name not in meta:
            space = store.get_run(run_id)["space"]
            raise UsageError(
                f"Run {run_id} has no {name}, so its bound cannot be checked.",
                f"Score {space} with --metrics ...,{name} (a space that provides it), "
                "or drop the bound.",
            )
    for name, what in ((metric, "--metric"), (tie_break, "--tie-break")):
        if what == "--tie-break" and name in TIE_RULES:
            continue
        if name not in meta:
            raise UsageError(
                f"Run {run_id} has no metric {name!r}.",
                f"It has: {', '.join(sorted(meta))}. Pass another {what} or --run.",
            )
    pen = None
    if penalty is not None:
        from nasfilter.penalties import get_penalty, penalty_settings

        pen = penalty_settings(get_penalty(penalty).name, mu, sigma)
        if not meta[metric]["higher_is_better"]:
            raise UsageError(
                f"A size penalty multiplies a higher-is-better score; {metric} is lower-is-better.",
                "Drop --penalty or choose another --metric.",
            )
        if meta[metric]["path"] == "penalized":
            raise UsageError(
                f"{metric} is already size-penalized.",
                "Pass its base metric with --penalty, or drop --penalty.",
            )
    tie_hib = meta[tie_break]["higher_is_better"] if tie_break not in TIE_RULES else True
    rule = RankRule(meta[metric]["higher_is_better"], tie_break, tie_hib)
    budget = "" if max_kb is None else f"\n  AND z.value <= {max_kb!r}"
    bound_joins = bound_cols = ""
    for i, (name, bound) in enumerate(sorted(bounds.items())):
        bound_joins += (
            f"\nJOIN scores b{i} ON b{i}.run_id = m.run_id AND b{i}.arch = m.arch "
            f"AND b{i}.metric = {sql_literal(name)} AND b{i}.value <= {float(bound)!r}"
        )
        bound_cols += f", b{i}.value AS {_ident(name)}"
    col = _ident(metric)
    tie_join = tie_col = ""
    if tie_break not in TIE_RULES:
        tie_col = f", t.value AS {_ident(tie_break)}"
        tie_join = (
            "\nLEFT JOIN scores t ON t.run_id = m.run_id AND t.arch = m.arch "
            f"AND t.metric = {sql_literal(tie_break)}"
        )
    joins = bound_joins + tie_join
    select = f"""SELECT m.arch, m.value AS {col}, m.status,
       CAST(p.value AS BIGINT) AS params, z.value AS size_kb, m.position{tie_col}{bound_cols}
FROM scores m
JOIN scores p ON p.run_id = m.run_id AND p.arch = m.arch AND p.metric = 'params'
JOIN scores z ON z.run_id = m.run_id AND z.arch = m.arch AND z.metric = 'size_kb'{joins}
WHERE m.run_id = {int(run_id)} AND m.metric = {sql_literal(metric)}{budget}"""
    if pen is None:
        order = rule.sql_order(
            "m.value", "m.position", "p.value", "m.arch", "t.value" if tie_col else None
        )
        sql = f"""{select}
ORDER BY {order}
LIMIT {int(k)}"""
        cols, rows = store.query(sql)
        res = TopResult(_visible(cols), [_strip(r) for r in rows], sql, tie_break=tie_break)
        _tie_group(store, res, select, rows, col_index=1)
        return res
    return _penalized_top(store, select, metric, k, pen, rule, has_tie=bool(tie_col))


def _visible(cols: list[str]) -> list[str]:
    return [c for c in cols if c != "position"]


def _strip(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """A row without its position column (index 5)."""
    return row[:5] + row[6:]


def _tie_group(
    store: Store, res: TopResult, select: str, rows: list[tuple[Any, ...]], col_index: int
) -> None:
    """Count the architectures (within the budget) that share the value at the cut."""
    if not rows:
        return
    cut = rows[-1][col_index]
    res.cut_value = cut
    cond = "(m.value IS NULL OR isnan(m.value))" if cut is None or cut != cut else "m.value = ?"
    params = [] if "isnan" in cond else [cut]
    _, got = store.query(f"SELECT count(*) FROM ({select} AND {cond})", params)
    res.tie_group = int(got[0][0])
    _, total = store.query(f"SELECT count(*) FROM ({select})")
    res.candidates = int(total[0][0])


def _penalized_top(
    store: Store,
    select: str,
    metric: str,
    k: int,
    pen: dict[str, Any],
    rule: RankRule,
    has_tie: bool = False,
) -> TopResult:
    from nasfilter.penalties import penalized, penalty_factor
    from nasfilter.ranking import top_indices

    name, mu, sigma = pen["penalty"], pen["mu"], pen["sigma"]
    ranked = penalized_name(metric, name)
    sql = (
        f"{select}\n-- then, in Python: {ranked} = {metric} x {name}(size_kb / 1000; "
        f"mu={mu:g}, sigma={sigma:g}), ranked by it (nasfilter.ranking: NaN last, "
        f"descending, ties by {rule.tie_break}, then position, arch); first {int(k)}"
    )
    _, rows = store.query(select)
    cols = ["arch", ranked, metric, "factor", "status", "params", "size_kb", "penalty"]
    if not rows:
        return TopResult(cols, [], sql, pen, tie_break=rule.tie_break)
    values = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=float)
    size_mb = np.array([r[4] for r in rows], dtype=float) / 1000.0
    factor = np.asarray(penalty_factor(name, size_mb, mu, sigma), dtype=float)
    pvals = np.asarray(penalized(values, size_mb, name, mu, sigma), dtype=float)
    tie_vals = {i: (r[6] if has_tie else None) for i, r in enumerate(rows)}
    order, group = top_indices(
        RankRule(True, rule.tie_break, rule.tie_higher_is_better),
        [float(v) for v in pvals],
        [int(r[5]) for r in rows],
        [r[3] for r in rows],
        [r[0] for r in rows],
        k,
        tie_values=(lambda idx: {i: tie_vals[i] for i in idx})
        if rule.tie_break not in TIE_RULES
        else None,
    )
    label = f"{name}(mu={mu:g}, sigma={sigma:g})"
    out = [
        (
            rows[i][0],
            float(pvals[i]),
            rows[i][1],
            float(factor[i]),
            rows[i][2],
            rows[i][3],
            rows[i][4],
            label,
        )
        for i in order
    ]
    res = TopResult(cols, out, sql, pen, tie_break=rule.tie_break)
    res.tie_group = group
    res.cut_value = float(pvals[order[-1]]) if order else None
    res.candidates = len(rows)
    return res
