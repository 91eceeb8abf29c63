"""The top-k candidates of a run under a size budget, in SQL."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from nasfilter.errors import UsageError
from nasfilter.store import Store


@dataclass
class TopResult:
    columns: list[str]
    rows: list[tuple[Any, ...]]
    sql: str


def top_candidates(
    store: Store, run_id: int, metric: str, k: int, max_kb: float | None = None
) -> TopResult:
    """Best ``k`` architectures of ``run_id`` by ``metric`` with size_kb <= ``max_kb``.

    Direction comes from the run's recorded metric metadata. NaN and missing values rank
    last (DuckDB orders NaN above every number, so it is handled explicitly); ties are
    broken by fewer parameters, then by identity.
    """
    if k < 1:
        raise UsageError(f"--k must be at least 1 (got {k}).")
    meta = {m["metric"]: m for m in store.run_metrics(run_id)}
    if metric not in meta:
        raise UsageError(
            f"Run {run_id} has no metric {metric!r}.",
            f"It has: {', '.join(sorted(meta))}. Pass --metric NAME or another --run.",
        )
    direction = "DESC" if meta[metric]["higher_is_better"] else "ASC"
    budget = "" if max_kb is None else f"\n  AND z.value <= {float(max_kb)!r}"
    col = '"' + metric.replace('"', '""') + '"'
    sql = f"""SELECT m.arch, m.value AS {col}, m.status,
       CAST(p.value AS BIGINT) AS params, z.value AS size_kb
FROM scores m
JOIN scores p ON p.run_id = m.run_id AND p.arch = m.arch AND p.metric = 'params'
JOIN scores z ON z.run_id = m.run_id AND z.arch = m.arch AND z.metric = 'size_kb'
WHERE m.run_id = {int(run_id)} AND m.metric = '{metric.replace("'", "''")}'{budget}
ORDER BY (m.value IS NULL OR isnan(m.value)), m.value {direction}, p.value, m.arch
LIMIT {int(k)}"""
    cols, rows = store.query(sql)
    return TopResult(cols, rows, sql)
