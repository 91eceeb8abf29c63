"""The top-k candidates of a run under a size budget, in SQL (optionally size-penalized)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from nasfilter.errors import UsageError
from nasfilter.store import Store


@dataclass
class TopResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    sql: str
    penalty: dict[str, Any] | None = None  # penalty_settings(...) when ranked penalized


def top_candidates(
    store: Store,
    run_id: int,
    metric: str,
    k: int,
    max_kb: float | None = None,
    penalty: str | None = None,
    mu: float = 0.2,
    sigma: float = 0.4,
) -> TopResult:
    """Best ``k`` architectures of ``run_id`` by ``metric`` with size_kb <= ``max_kb``.

    Direction comes from the run's recorded metric metadata. NaN and missing values rank
    last (DuckDB orders NaN above every number, so it is handled explicitly); ties are
    broken by fewer parameters, then by identity.

    With ``penalty`` (gdf, hsdf, rdf), the ranking is by ``metric x p(size_kb / 1000)``,
    computed on the fly from the run's stored ``size_kb`` (``nasfilter.penalties``) for a
    higher-is-better metric; the rows then also carry the factor, the penalized value
    (column ``<metric>_<penalty>``) and the penalty with its parameters.
    """
    if k < 1:
        raise UsageError(f"--k must be at least 1 (got {k}).")
    meta = {m["metric"]: m for m in store.run_metrics(run_id)}
    if metric not in meta:
        raise UsageError(
            f"Run {run_id} has no metric {metric!r}.",
            f"It has: {', '.join(sorted(meta))}. Pass --metric NAME or another --run.",
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
    direction = "DESC" if meta[metric]["higher_is_better"] else "ASC"
    budget = "" if max_kb is None else f"\n  AND z.value <= {float(max_kb)!r}"
    col = '"' + metric.replace('"', '""') + '"'
    select = f"""SELECT m.arch, m.value AS {col}, m.status,
       CAST(p.value AS BIGINT) AS params, z.value AS size_kb
FROM scores m
JOIN scores p ON p.run_id = m.run_id AND p.arch = m.arch AND p.metric = 'params'
JOIN scores z ON z.run_id = m.run_id AND z.arch = m.arch AND z.metric = 'size_kb'
WHERE m.run_id = {int(run_id)} AND m.metric = '{metric.replace("'", "''")}'{budget}"""
    if pen is None:
        sql = f"""{select}
ORDER BY (m.value IS NULL OR isnan(m.value)), m.value {direction}, p.value, m.arch
LIMIT {int(k)}"""
        cols, rows = store.query(sql)
        return TopResult(cols, rows, sql)
    return _penalized_top(store, select, metric, k, pen)


def _penalized_top(
    store: Store, select: str, metric: str, k: int, pen: dict[str, Any]
) -> TopResult:
    from nasfilter.penalties import penalized, penalty_factor

    name, mu, sigma = pen["penalty"], pen["mu"], pen["sigma"]
    ranked = f"{metric}_{name}"
    sql = (
        f"{select}\n-- then, in Python: {ranked} = {metric} x {name}(size_kb / 1000; "
        f"mu={mu:g}, sigma={sigma:g}), ranked by it descending (NaN last), then params, "
        f"arch; first {int(k)}"
    )
    _, rows = store.query(select)
    if not rows:
        cols = ["arch", ranked, metric, "factor", "status", "params", "size_kb", "penalty"]
        return TopResult(cols, [], sql, pen)
    values = np.array([np.nan if r[1] is None else r[1] for r in rows], dtype=float)
    size_mb = np.array([r[4] for r in rows], dtype=float) / 1000.0
    factor = np.asarray(penalty_factor(name, size_mb, mu, sigma), dtype=float)
    pvals = np.asarray(penalized(values, size_mb, name, mu, sigma), dtype=float)
    order = sorted(
        range(len(rows)),
        key=lambda i: (
            bool(np.isnan(pvals[i])),
            0.0 if np.isnan(pvals[i]) else -pvals[i],
            rows[i][3],
            rows[i][0],
        ),
    )[:k]
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
    cols = ["arch", ranked, metric, "factor", "status", "params", "size_kb", "penalty"]
    return TopResult(cols, out, sql, pen)
