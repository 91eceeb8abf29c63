"""relu_count_live: analytic (NATS) == measured on the built network, hand counts on small
networks (dead branches, constant inputs, strided reads, max pooling, in-place ReLUs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasfilter.metrics import compute
from nasfilter.metrics.liveness import live_relu_count
from nasfilter.spaces import get_space
from nasfilter.spaces.base import DATASETS

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TSS = get_space("nats-tss")
#: cells with dead parts: a conv whose source is the constant 0 (node 1 behind 'none'),
#: a conv whose target never reaches the output, a cell that cuts the input off, and
#: live-everything controls
SPECIAL = [
    ("|nor_conv_3x3~0|+|none~0|none~1|+|skip_connect~0|none~1|none~2|", 40_960),
    ("|none~0|+|nor_conv_3x3~0|nor_conv_1x1~1|+|none~0|none~1|skip_connect~2|", 40_960 + 143_360),
    ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|none~0|none~1|none~2|", 0),
    (
        "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|",
        40_960 + 6 * 143_360,
    ),
    ("|skip_connect~0|+|none~0|avg_pool_3x3~1|+|none~0|none~1|nor_conv_1x1~2|", 40_960 + 143_360),
]


def test_tss_analytic_values_on_hand_counted_cells() -> None:
    for arch, live in SPECIAL:
        c = TSS.costs(arch)
        assert c.figure("relu_count_live") == live, arch
        assert live <= c.relu_count  # type: ignore[operator]


def test_tss_analytic_equals_the_measured_network() -> None:
    rng = np.random.default_rng(5)
    archs = [a for a, _ in SPECIAL] + [TSS.unrank(int(i)) for i in rng.integers(0, TSS.size, 6)]
    for arch in archs:
        torch.manual_seed(0)
        net = TSS.build(arch)
        assert live_relu_count(net, (1, 3, 32, 32)) == TSS.costs(arch).figure("relu_count_live")
    # at another shape (ImageNet16-120: 16x16 inputs, 120 classes)
    arch = SPECIAL[1][0]
    shape = DATASETS["imagenet16-120"]
    measured = live_relu_count(TSS.build(arch, shape), (1, 3, 16, 16))
    assert measured == TSS.costs(arch, shape).figure("relu_count_live")


def test_sss_analytic_equals_the_measured_network() -> None:
    sss = get_space("nats-sss")
    for arch in ("8:16:24:32:64", "64:8:48:8:16"):
        c = sss.costs(arch)
        assert live_relu_count(sss.build(arch), (1, 3, 32, 32)) == c.figure("relu_count_live")
        assert c.figure("relu_count_live") == c.relu_count  # its fixed cell is all live


class _Branches(nn.Module):
    """Hand-countable: a ReLU on a branch that never reaches the output, a ReLU of a
    constant, a strided 1x1 read (only 1 element in 4 is used), max pooling (every
    element of a window counts), an in-place functional ReLU."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.dead = nn.Conv2d(4, 4, 1)
        self.strided = nn.Conv2d(4, 2, 1, stride=2)
        self.pool = nn.MaxPool2d(3, stride=2, padding=1)
        self.fc = nn.Linear(2 * 4 * 4 + 4 * 4 * 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = F.relu(self.a(x))  # 4x8x8 = 256, live
        _ = torch.relu(self.dead(h))  # 256, output never reads it: dead
        z = torch.relu(torch.zeros_like(h))  # 256, constant input: dead
        s = self.strided(F.relu(h + z))  # 256 enter; the 1x1 stride-2 conv reads 4x4x4 = 64
        p = self.pool(h)  # 4x4x4
        p = F.relu(p, inplace=True)  # 64, live
        return self.fc(torch.cat([s.flatten(1), p.flatten(1)], 1))


def test_hand_counted_network() -> None:
    torch.manual_seed(0)
    net = _Branches()
    assert live_relu_count(net, (1, 3, 8, 8)) == 256 + 64 + 64
    # the registered metric, through compute(): same count, caller's network unchanged
    before = [p.clone() for p in net.parameters()]
    assert compute("relu_count_live", net, torch.randn(4, 3, 8, 8)) == 256 + 64 + 64
    assert all(torch.equal(a, b) for a, b in zip(before, net.parameters(), strict=True))
    # relu_count counts all of them
    from nasfilter.metrics import relu_count

    assert relu_count(net, (1, 3, 8, 8)) == 256 * 4 + 64


def test_masked_weights_cut_connections() -> None:
    """A zero weight is no connection: a conv whose weights are all 0 makes what follows
    constant (dead), a BatchNorm after it does not revive it."""
    net = nn.Sequential(
        nn.Conv2d(3, 2, 1, bias=False),
        nn.BatchNorm2d(2),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(2 * 16, 2),
    )
    assert live_relu_count(net, (1, 3, 4, 4)) == 32
    with torch.no_grad():
        net[0].weight[1].zero_()  # channel 1 sees no input
    assert live_relu_count(net, (1, 3, 4, 4)) == 16
