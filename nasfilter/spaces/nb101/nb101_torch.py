"""NAS-Bench-101's network in PyTorch (imported only when a network is built).

The same network as ``nasbench/lib/model_builder.py`` (and the analytic costs in
``costs.py``): stem conv3x3-BN-ReLU (128), three stacks of three cells with a 2x2
max-pool (stride 2, 'same') and channel doubling between stacks, global average
pooling, a dense layer. Convolutions have no bias; BatchNorm uses the benchmark's
epsilon (1e-5) and momentum (TF 0.997, i.e. PyTorch 0.003). The only parameters are the
benchmark's trainable variables, so ``sum(p.numel())`` is NAS-Bench-101's count.
"""

from __future__ import annotations

import torch
from torch import nn

from nasfilter.spaces.nb101.cells import Cell, edges_of
from nasfilter.spaces.nb101.costs import (
    CONV1X1,
    CONV3X3,
    MODULES_PER_STACK,
    NUM_STACKS,
    STEM_CHANNELS,
    vertex_channels,
)

BN_EPSILON = 1e-5
BN_MOMENTUM = 1.0 - 0.997


class ConvBnRelu(nn.Sequential):
    """k x k convolution ('same' padding, no bias), BatchNorm, ReLU."""

    def __init__(self, c_in: int, c_out: int, k: int) -> None:
        super().__init__(
            nn.Conv2d(c_in, c_out, k, stride=1, padding=k // 2, bias=False),
            nn.BatchNorm2d(c_out, eps=BN_EPSILON, momentum=BN_MOMENTUM),
            nn.ReLU(),
        )


class NB101Cell(nn.Module):
    """One cell ("module") with ``c_in`` input and ``c_out`` output channels."""

    def __init__(self, cell: Cell, c_in: int, c_out: int) -> None:
        super().__init__()
        n = cell.n
        self.n = n
        edges = set(edges_of(n, cell.bits))
        self.channels = vertex_channels(c_in, c_out, n, edges)
        #: per vertex 1..n-1: interior sources (in order) and whether the input feeds it
        self.sources = [[i for i in range(1, v) if (i, v) in edges] for v in range(n)]
        self.from_input = [(0, v) in edges for v in range(n)]
        self.projections = nn.ModuleDict(
            {
                str(v): ConvBnRelu(c_in, self.channels[v], 1)
                for v in range(1, n)
                if self.from_input[v]
            }
        )
        ops: dict[str, nn.Module] = {}
        for v in range(1, n - 1):
            op = cell.ops[v - 1]
            c = self.channels[v]
            if op == CONV3X3:
                ops[str(v)] = ConvBnRelu(c, c, 3)
            elif op == CONV1X1:
                ops[str(v)] = ConvBnRelu(c, c, 1)
            else:
                ops[str(v)] = nn.MaxPool2d(3, stride=1, padding=1)
        self.ops = nn.ModuleDict(ops)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = self.n
        tensors: list[torch.Tensor] = [x]
        for v in range(1, n - 1):
            c = self.channels[v]
            # interior inputs are sliced to c channels (they have c or c + 1)
            add = [tensors[s][:, :c] for s in self.sources[v]]
            if self.from_input[v]:
                add.append(self.projections[str(v)](x))
            total = add[0]
            for t in add[1:]:
                total = total + t
            tensors.append(self.ops[str(v)](total))
        concat = [tensors[s] for s in self.sources[n - 1]]
        if not concat:
            return self.projections[str(n - 1)](x)
        out = concat[0] if len(concat) == 1 else torch.cat(concat, dim=1)
        if self.from_input[n - 1]:
            out = out + self.projections[str(n - 1)](x)
        return out


class NB101Network(nn.Module):
    """The benchmark's network for ``cell`` (a canonical cell: the vertex order decides
    which output vertices get the remainder channels)."""

    def __init__(self, cell: Cell, num_classes: int = 10, in_channels: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [ConvBnRelu(in_channels, STEM_CHANNELS, 3)]
        c_in = c = STEM_CHANNELS
        for stack in range(NUM_STACKS):
            if stack > 0:
                layers.append(nn.MaxPool2d(2, stride=2, ceil_mode=True))  # TF 'same'
                c *= 2
            for _ in range(MODULES_PER_STACK):
                layers.append(NB101Cell(cell, c_in, c))
                c_in = c
        self.layers = nn.Sequential(*layers)
        self.classifier = nn.Linear(c, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.layers(x).mean(dim=(2, 3)))

    def extract_cell_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stem's output, then every cell's output (the max-pools between stacks are
        not features): AZ-NAS' feature maps (``nasfilter.metrics.measures.aznas``)."""
        feats = []
        for layer in self.layers:
            x = layer(x)
            if not isinstance(layer, nn.MaxPool2d):
                feats.append(x)
        return feats
