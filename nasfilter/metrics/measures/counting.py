"""Counting metrics: ReLU count N_A, parameters, FLOPs, size in kB.

All four are data-free. Each has an analytic path for the spaces that compute the
figure from the identity (``Space.figures``) and a path that measures a built network;
tests hold the two equal. ``params`` and ``size_kb`` read the network without running
it; ``relu_count`` and ``flops`` read the shared forward pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasfilter.metrics.registry import FIGURE, ScoreContext, metric

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.inputs import MetricInput
    from nasfilter.metrics.probe import ModelProbe


def _params_of(model: object) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)  # type: ignore[attr-defined]


@metric(
    "relu_count",
    path="probe",
    figure="relu_count",
    analytic=FIGURE,
    description=(
        "N_A: elements entering a ReLU per input sample, summed over every ReLU call "
        "of one forward pass (trace of the NASWOT kernel / batch size)"
    ),
    unit="activations",
    source="the dissertation (2022); Mellor et al., ICML 2021 (the NASWOT kernel)",
)
def relu_count(probe: ModelProbe, ctx: ScoreContext) -> float:
    return float(probe.relu_count())


@metric(
    "params",
    higher_is_better=False,
    figure="params",
    analytic=FIGURE,
    description="trainable parameters (weights, biases, BN affine)",
    unit="parameters",
)
def params(inp: MetricInput) -> float:
    return float(_params_of(inp.model))


@metric(
    "flops",
    path="probe",
    higher_is_better=False,
    figure="flops",
    analytic=FIGURE,
    description=(
        "multiply-accumulates of conv and linear layers plus bias adds, per sample "
        "(NATS-Bench's counter; BN, pooling, ReLU and additions not counted)"
    ),
    unit="FLOPs",
    source="xautodl get_model_infos (NATS-Bench's counter)",
)
def flops(probe: ModelProbe, ctx: ScoreContext) -> float:
    return float(probe.flops())


@metric(
    "size_kb",
    higher_is_better=False,
    figure="params",
    analytic=FIGURE,
    figure_transform=lambda params, ctx: params * ctx.bytes_per_param / 1000.0,
    description="params x bytes per parameter / 1000 (default 1 byte: int8 deployment)",
    unit="kB",
)
def size_kb(inp: MetricInput) -> float:
    return _params_of(inp.model) * inp.ctx.bytes_per_param / 1000.0
