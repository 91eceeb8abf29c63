"""Counting metrics: ReLU count N_A, parameters, FLOPs, size in kB.

All four are data-free. Each has the analytic path of the space and a path that
measures a built network, and tests hold the two equal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasfilter.metrics.registry import Metric, ScoreContext, register

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.probe import ModelProbe
    from nasfilter.spaces.base import Space


def _relu_arch(space: Space, arch: str, ctx: ScoreContext) -> float:
    return float(space.costs(arch, ctx.dataset).relu_count)


def _relu_model(probe: ModelProbe, ctx: ScoreContext) -> float:
    return float(probe.relu_count())


def _params_arch(space: Space, arch: str, ctx: ScoreContext) -> float:
    return float(space.costs(arch, ctx.dataset).params)


def _params_model(probe: ModelProbe, ctx: ScoreContext) -> float:
    return float(probe.param_count())


def _flops_arch(space: Space, arch: str, ctx: ScoreContext) -> float:
    return float(space.costs(arch, ctx.dataset).flops)


def _flops_model(probe: ModelProbe, ctx: ScoreContext) -> float:
    return float(probe.flops())


def _size_arch(space: Space, arch: str, ctx: ScoreContext) -> float:
    return space.costs(arch, ctx.dataset).params * ctx.bytes_per_param / 1000.0


def _size_model(probe: ModelProbe, ctx: ScoreContext) -> float:
    return probe.param_count() * ctx.bytes_per_param / 1000.0


RELU_COUNT = register(
    Metric(
        name="relu_count",
        version="1",
        higher_is_better=True,
        needs_data=False,
        needs_gradients=False,
        description=(
            "N_A: elements entering a ReLU per input sample, summed over every ReLU call "
            "of one forward pass (trace of the NASWOT kernel / batch size)"
        ),
        unit="activations",
        from_arch=_relu_arch,
        from_model=_relu_model,
    )
)
PARAMS = register(
    Metric(
        name="params",
        version="1",
        higher_is_better=False,
        needs_data=False,
        needs_gradients=False,
        description="trainable parameters (weights, biases, BN affine)",
        unit="parameters",
        from_arch=_params_arch,
        from_model=_params_model,
    )
)
FLOPS = register(
    Metric(
        name="flops",
        version="1",
        higher_is_better=False,
        needs_data=False,
        needs_gradients=False,
        description=(
            "multiply-accumulates of conv and linear layers plus bias adds, per sample "
            "(NATS-Bench's counter; BN, pooling, ReLU and additions not counted)"
        ),
        unit="FLOPs",
        from_arch=_flops_arch,
        from_model=_flops_model,
    )
)
SIZE_KB = register(
    Metric(
        name="size_kb",
        version="1",
        higher_is_better=False,
        needs_data=False,
        needs_gradients=False,
        description="params x bytes per parameter / 1000 (default 1 byte: int8 deployment)",
        unit="kB",
        from_arch=_size_arch,
        from_model=_size_model,
    )
)
