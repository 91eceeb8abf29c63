"""Training-free metrics.

Python API (torch is imported on first use):

    >>> from nasfilter.metrics import compute, relu_count, naswot
    >>> relu_count(model, (1, 3, 32, 32))        # N_A of any nn.Module
    >>> naswot(model, inputs)                    # log|K_H| on a (K, C, H, W) batch
    >>> compute("naswot", model, inputs)         # any registered metric, any nn.Module
"""

from __future__ import annotations

from typing import Any

from nasfilter.metrics.registry import (
    NEEDS,
    Metric,
    Score,
    ScoreContext,
    get_metric,
    list_metrics,
    metric,
    parse_metric_list,
    register,
)


def relu_count(model: Any, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> int:
    """N_A of any ``torch.nn.Module`` (see ``nasfilter.metrics.probe.relu_count``).

    ``input_shape`` has the batch first; a (C, H, W) shape is one sample for a network
    with 2-d convolutions. An empty dimension or a rank the network cannot take is a
    ``UsageError``."""
    from nasfilter.metrics.probe import relu_count as _relu_count

    return _relu_count(model, input_shape)


def naswot(model: Any, inputs: Any, bn_mode: str = "batch") -> float:
    """NASWOT score log|K_H| of any module on a (K, C, H, W) batch with K >= 2 (see
    ``nasfilter.metrics.measures.naswot``); fewer samples are a ``UsageError``."""
    from nasfilter.metrics.measures.naswot import naswot_score

    return naswot_score(model, inputs, bn_mode=bn_mode)


def compute(name: str, model: Any, inputs: Any, targets: Any = None, **kwargs: Any) -> float:
    """Score any ``nn.Module`` with any registered metric (see
    ``nasfilter.metrics.inputs.compute``); the caller's model is left unchanged."""
    from nasfilter.metrics.inputs import compute as _compute

    return _compute(name, model, inputs, targets, **kwargs)


__all__ = [
    "NEEDS",
    "Metric",
    "Score",
    "ScoreContext",
    "compute",
    "get_metric",
    "list_metrics",
    "metric",
    "parse_metric_list",
    "register",
    "relu_count",
    "naswot",
]
