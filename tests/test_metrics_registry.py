"""Metric registry: metadata, duplicates refused, generic relu_count on any module."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasfilter.errors import UnknownMetricError
from nasfilter.metrics import get_metric, list_metrics, parse_metric_list, register, relu_count
from nasfilter.metrics.registry import Metric, Score


def test_builtin_metrics_and_their_metadata() -> None:
    names = [m.name for m in list_metrics()]
    assert {"relu_count", "params", "flops", "size_kb", "naswot"} <= set(names)
    rc = get_metric("relu_count")
    assert rc.higher_is_better and not rc.needs_data and not rc.needs_model
    nw = get_metric("naswot")
    assert nw.needs_model and nw.needs_data and nw.higher_is_better
    assert not get_metric("params").higher_is_better
    meta = rc.metadata()
    assert set(meta) >= {
        "name",
        "version",
        "higher_is_better",
        "needs_model",
        "needs_data",
        "needs_gradients",
    }
    assert "from_arch" not in meta


def test_duplicate_names_are_refused() -> None:
    m = get_metric("params")
    with pytest.raises(ValueError, match="already registered"):
        register(
            Metric(
                name="params",
                version="9",
                higher_is_better=True,
                description="dup",
                from_arch=m.from_arch,
            )
        )


def test_unknown_metric_names_the_choices() -> None:
    with pytest.raises(UnknownMetricError, match="relu_count"):
        parse_metric_list("relu_count,synflowz")
    with pytest.raises(UnknownMetricError):
        parse_metric_list(" , ")
    assert [m.name for m in parse_metric_list("params, params,flops")] == ["params", "flops"]


def test_score_status_keeps_non_finite_values() -> None:
    assert Score.of(1.5) == Score(1.5, "ok")
    assert Score.of(float("-inf")).status == "-inf"
    s = Score.of(float("nan"))
    assert s.status == "nan" and s.value != s.value


class _Mixed(nn.Module):
    """ReLUs as modules, functional, in-place, method and torch.relu: all counted."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.fc = nn.Linear(4 * 8 * 8, 5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(x)  # 3*8*8 = 192
        x = self.act(self.conv(x))  # 4*8*8 = 256
        x = torch.relu(x) + x.relu()  # 256 + 256
        y = self.fc(x.flatten(1))
        y.relu_()  # 5
        return F.relu6(y)  # not a ReLU: not counted


def test_generic_relu_count_counts_modules_and_functional_calls() -> None:
    assert relu_count(_Mixed(), (1, 3, 8, 8)) == 192 + 256 + 256 + 256 + 5
    # per sample: the batch size does not change the count
    assert relu_count(_Mixed(), (4, 3, 8, 8)) == 965


def test_generic_relu_count_of_a_module_without_relu_is_zero() -> None:
    assert relu_count(nn.Sequential(nn.Conv2d(3, 2, 1)), (1, 3, 4, 4)) == 0
