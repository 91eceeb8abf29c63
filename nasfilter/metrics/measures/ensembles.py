"""Aggregate metrics (``nasfilter.metrics.aggregate``): AZ-NAS' rank aggregate and
nasfilter's two ensembles. Definitions, how they were chosen and their figures:
docs/metrics.md ("Aggregates")."""

from __future__ import annotations

from nasfilter.metrics.aggregate import register_aggregate

register_aggregate(
    "az_nas",
    kind="rank",
    form="log",
    components=[
        ("az_expressivity", 1.0, 1),
        ("az_progressivity", 1.0, 1),
        ("az_trainability", 1.0, 1),
        ("flops", 1.0, 1),
    ],
    description=(
        "AZ-NAS: sum of log(rank/n) of expressivity, progressivity, trainability and "
        "complexity (FLOPs, more is better), ranked within the population (a run, or a "
        "search's candidates)"
    ),
    source=(
        "Lee and Ham, AZ-NAS, CVPR 2024; cvlab-yonsei/AZ-NAS tss_search.py "
        "(rank aggregation over the candidates)"
    ),
)
