"""The dissertation's Experiments 1-4: ``run`` runs them (storing every run),
``report`` writes ``report.md`` and ``figures`` draws its figures.

    >>> from nasfilter.experiments import ReproduceRequest, reproduce
    >>> reproduce(store, ReproduceRequest(space="nats-tss", ns=(10, 100), repeats=3))
"""

from nasfilter.experiments.run import (
    ReproduceRequest,
    Results,
    parse_ns,
    reproduce,
    run_experiments,
)

__all__ = ["ReproduceRequest", "Results", "parse_ns", "reproduce", "run_experiments"]
