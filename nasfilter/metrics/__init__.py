"""Training-free metrics.

Python API (torch is imported on first use):

    >>> from nasfilter.metrics import relu_count, naswot
    >>> relu_count(model, (1, 3, 32, 32))   # N_A of any nn.Module
    >>> naswot(model, inputs)               # log|K_H| on a (K, C, H, W) batch
"""

from __future__ import annotations

from typing import Any

from nasfilter.metrics.registry import (
    Metric,
    ScoreContext,
    get_metric,
    list_metrics,
    parse_metric_list,
    register,
)


def relu_count(model: Any, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> int:
    """N_A of any ``torch.nn.Module`` (see ``nasfilter.metrics.probe.relu_count``)."""
    from nasfilter.metrics.probe import relu_count as _relu_count

    return _relu_count(model, input_shape)


def naswot(model: Any, inputs: Any, bn_mode: str = "batch") -> float:
    """NASWOT score log|K_H| of any module on a batch (see ``nasfilter.metrics.naswot``)."""
    from nasfilter.metrics.naswot import naswot_score

    return naswot_score(model, inputs, bn_mode=bn_mode)


__all__ = [
    "Metric",
    "ScoreContext",
    "get_metric",
    "list_metrics",
    "parse_metric_list",
    "register",
    "relu_count",
    "naswot",
]
