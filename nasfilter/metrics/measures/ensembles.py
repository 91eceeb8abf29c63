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

register_aggregate(
    "ensemble_free",
    kind="rank",
    form="log",
    components=[
        ("meco", 1.5, 1),
        ("relu_count_live", 1.0, 1),
        ("az_expressivity", 1.5, 1),
        ("az_trainability", 1.0, 1),
    ],
    description=(
        "data-free ensemble: 1.5 ln(r(meco)/n) + ln(r(relu_count_live)/n) + "
        "1.5 ln(r(az_expressivity)/n) + ln(r(az_trainability)/n), ranked within the "
        "population; chosen on the NAS-Bench-201 CIFAR-10 sample (docs/metrics.md)"
    ),
    source="nasfilter (issue 11); bench/bench_ranking.py --select",
)

register_aggregate(
    "ensemble",
    kind="rank",
    form="log",
    components=[
        ("meco", 2.0, 1),
        ("swap", 1.0, 1),
        ("az_expressivity", 1.0, 1),
        ("az_trainability", 1.0, 1),
    ],
    description=(
        "ensemble (any inputs): 2 ln(r(meco)/n) + ln(r(swap)/n) + ln(r(az_expressivity)/n) "
        "+ ln(r(az_trainability)/n), ranked within the population; swap reads the run's "
        "images; chosen on the NAS-Bench-201 CIFAR-10 sample with synthetic images "
        "(docs/metrics.md)"
    ),
    source="nasfilter (issue 11); bench/bench_ranking.py --select",
)
