"""relu_count_live: the ReLU elements on a path from the input to the output.

Analytic for the spaces whose ``figures`` include ``relu_count_live`` (the NATS spaces:
``nasfilter.spaces.nats.live_nodes``); every other network is measured with one forward
and one backward pass of a structural copy (``nasfilter.metrics.liveness``). Tests hold
the two equal on NATS networks.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasfilter.metrics.registry import FIGURE, metric

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.inputs import MetricInput


@metric(
    "relu_count_live",
    figure="relu_count_live",
    analytic=FIGURE,
    needs=("gradients", "fresh_network", "float64"),
    description=(
        "live N_A: elements entering a ReLU per input sample that depend on the input "
        "and reach the output (relu_count without dead branches: behind 'none' edges, "
        "cut off from the output)"
    ),
    unit="activations",
    source=(
        "nasfilter (issue 11): relu_count (the dissertation, 2022; Mellor et al., "
        "ICML 2021) restricted to input-to-output paths"
    ),
)
def relu_count_live(inp: MetricInput) -> float:
    from nasfilter.metrics.liveness import count_live, prepare_structural

    work = prepare_structural(inp.model)  # the metric's own float64 copy
    return float(count_live(work, inp.ones(1))[0])
