"""The NATS-Bench networks in PyTorch, written to match xautodl's modules
(``TinyNetwork``/``DynamicShapeTinyNet``, ``InferCell``, ``ReLUConvBN``,
``ResNetBasicblock``, ``POOLING``, ``FactorizedReduce``, ``Zero``) layer for layer, so
that parameter counts equal the benchmark's. Imported only when a network is built.
"""

from __future__ import annotations

import torch
from torch import nn


class ReLUConvBN(nn.Module):
    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, padding: int) -> None:
        super().__init__()
        self.op = nn.Sequential(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, bias=False),
            nn.BatchNorm2d(c_out),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(x)


class ResNetBasicBlock(nn.Module):
    """Reduction block: two 3x3 ReLUConvBN (first with stride 2), avg-pool + 1x1 shortcut."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, 2, 1)
        self.conv_b = ReLUConvBN(c_out, c_out, 3, 1, 1)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(kernel_size=2, stride=2, padding=0),
            nn.Conv2d(c_in, c_out, kernel_size=1, stride=1, padding=0, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.downsample(x) + self.conv_b(self.conv_a(x))


class Zero(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.c_in, self.c_out = c_in, c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.c_in == self.c_out:
            return x.mul(0.0)
        shape = list(x.shape)
        shape[1] = self.c_out
        return x.new_zeros(shape)


class Pooling(nn.Module):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.preprocess = None if c_in == c_out else ReLUConvBN(c_in, c_out, 1, 1, 0)
        self.op = nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.op(self.preprocess(x) if self.preprocess is not None else x)


class FactorizedReduce(nn.Module):
    """Stride-1 form only (the one NATS cells use): 1x1 conv + BN, no ReLU is applied."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c_in, c_out, 1, stride=1, padding=0, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


def make_op(op: str, c_in: int, c_out: int) -> nn.Module:
    if op == "none":
        return Zero(c_in, c_out)
    if op == "skip_connect":
        return nn.Identity() if c_in == c_out else FactorizedReduce(c_in, c_out)
    if op == "nor_conv_1x1":
        return ReLUConvBN(c_in, c_out, 1, 1, 0)
    if op == "nor_conv_3x3":
        return ReLUConvBN(c_in, c_out, 3, 1, 1)
    if op == "avg_pool_3x3":
        return Pooling(c_in, c_out)
    raise ValueError(f"unknown operation {op!r}")


class InferCell(nn.Module):
    def __init__(self, genotype, c_in: int, c_out: int) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        self.layers = nn.ModuleList()
        self.node_inputs: list[list[tuple[int, int]]] = []
        for node in genotype:
            wiring = []
            for op, src in node:
                wiring.append((len(self.layers), src))
                self.layers.append(make_op(op, c_in if src == 0 else c_out, c_out))
            self.node_inputs.append(wiring)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for wiring in self.node_inputs:
            out = self.layers[wiring[0][0]](nodes[wiring[0][1]])
            for layer, src in wiring[1:]:
                out = out + self.layers[layer](nodes[src])
            nodes.append(out)
        return nodes[-1]


class NATSNetwork(nn.Module):
    """Stem, cells and two reduction blocks, BN+ReLU, global pooling, linear.

    ``forward`` returns the logits (xautodl's returns ``(features, logits)``).
    """

    def __init__(self, channels: list[int], genotype, num_classes: int) -> None:  # type: ignore[no-untyped-def]
        super().__init__()
        if len(channels) % 3 != 2:
            raise ValueError(f"invalid number of layers: {len(channels)}")
        n = len(channels) // 3
        reductions = [False] * n + [True] + [False] * n + [True] + [False] * n
        self.stem = nn.Sequential(
            nn.Conv2d(3, channels[0], kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(channels[0]),
        )
        self.cells = nn.ModuleList()
        c_prev = channels[0]
        for c_curr, reduction in zip(channels, reductions, strict=True):
            if reduction:
                self.cells.append(ResNetBasicBlock(c_prev, c_curr))
            else:
                self.cells.append(InferCell(genotype, c_prev, c_curr))
            c_prev = c_curr
        self.lastact = nn.Sequential(nn.BatchNorm2d(c_prev), nn.ReLU(inplace=True))
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_prev, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem(x)
        for cell in self.cells:
            x = cell(x)
        x = self.global_pooling(self.lastact(x))
        return self.classifier(x.flatten(1))
