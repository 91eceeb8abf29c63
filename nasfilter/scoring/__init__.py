"""Scoring: typed run settings, the per-architecture scorer.

    plan (space, sample | --all | --archs) -> Scorer(settings).score(arch) -> writer -> DuckDB

``RunSettings`` (typed, the reuse key), ``ArchPlan`` (which architectures), ``Scorer``
(built once per process: builder, batch, labels, device; ``score(arch)`` returns every
value, status and time of one architecture, with no store access). ``nasfilter.engine``
maps a scorer over a run's plan and writes the batches; ``backends`` moves the scoring to
local worker processes or Ray actors (``BackendSpec``, ``open_backend``; see
docs/distributed.md), each holding one scorer, the driver alone writing.
"""

from nasfilter.scoring.settings import (
    ALWAYS,
    ArchPlan,
    PenaltySettings,
    RunSettings,
    arch_seed,
    penalized_name,
)

__all__ = [
    "ALWAYS",
    "ArchPlan",
    "PenaltySettings",
    "RunSettings",
    "arch_seed",
    "penalized_name",
]
