"""Cell networks of the NDS design spaces (DARTS, ENAS, NASNet, Amoeba, PNAS), in torch.

The network NDS trained with pycls (``NetworkCIFAR``/``NetworkImageNet``, ported from
DARTS): a stem, ``depth`` cells with reduction cells at positions depth//3 and
2*depth//3 (channels doubled there), global average pooling and a linear classifier.
Built as NDS trained it: no auxiliary head and no drop-path (drop probability 0), so
``aux`` and ``drop_prob`` of a config do not change the network. Weights keep PyTorch's
default initialisation, as pycls's NAS models do.

Each cell reads the two previous cells' outputs (preprocessed to C channels: a 1x1
ReLU-conv-BN, or a factorized reduction after a reduction cell), computes each node as
the sum of two operations on earlier states, and concatenates the nodes in its
``concat`` list. In a reduction cell the operations on the two cell inputs have stride 2.

Imported only where a network is built (the ``_torch`` suffix keeps the space registry
from importing it).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from nasfilter.datasets import DatasetShape
from nasfilter.spaces.nds.config import CellConfig


class ReluConvBn(nn.Sequential):
    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__(nn.ReLU(), nn.Conv2d(c_in, c_out, 1, bias=False), nn.BatchNorm2d(c_out))


class FactorizedReduce(nn.Module):
    """Halve the resolution: ReLU, two 1x1 stride-2 convolutions (the second shifted by one
    pixel), concatenated, BN."""

    def __init__(self, c_in: int, c_out: int) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.conv_1 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.conv_2 = nn.Conv2d(c_in, c_out // 2, 1, stride=2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu(x)
        shifted = nn.functional.pad(x, (0, 1, 0, 1))[:, :, 1:, 1:]
        return self.bn(torch.cat([self.conv_1(x), self.conv_2(shifted)], dim=1))


class Zero(nn.Module):
    def __init__(self, stride: int) -> None:
        super().__init__()
        self.stride = stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, :, :: self.stride, :: self.stride].mul(0.0)


def _separable(c: int, k: int, stride: int, dilation: int) -> nn.Sequential:
    """(ReLU, depthwise k x k, pointwise 1x1, BN) twice; the first depthwise has the stride."""
    pad = dilation * (k - 1) // 2
    layers: list[nn.Module] = []
    for s in (stride, 1):
        layers += [
            nn.ReLU(),
            nn.Conv2d(c, c, k, stride=s, padding=pad, dilation=dilation, groups=c, bias=False),
            nn.Conv2d(c, c, 1, bias=False),
            nn.BatchNorm2d(c),
        ]
    return nn.Sequential(*layers)


def _dilated(c: int, k: int, stride: int) -> nn.Sequential:
    """ReLU, depthwise k x k with dilation 2, pointwise 1x1, BN."""
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c, c, k, stride=stride, padding=k - 1, dilation=2, groups=c, bias=False),
        nn.Conv2d(c, c, 1, bias=False),
        nn.BatchNorm2d(c),
    )


def _conv(c: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c, c, k, stride=stride, padding=k // 2, bias=False),
        nn.BatchNorm2d(c),
    )


def _factorized_conv(c: int, k: int, stride: int) -> nn.Sequential:
    """ReLU, a 1 x k then a k x 1 convolution (each with its part of the stride), BN."""
    return nn.Sequential(
        nn.ReLU(),
        nn.Conv2d(c, c, (1, k), stride=(1, stride), padding=(0, k // 2), bias=False),
        nn.Conv2d(c, c, (k, 1), stride=(stride, 1), padding=(k // 2, 0), bias=False),
        nn.BatchNorm2d(c),
    )


def _pool(kind: str, k: int) -> Callable[[int, int], nn.Module]:
    def make(c: int, stride: int) -> nn.Module:
        if kind == "avg":
            return nn.AvgPool2d(k, stride=stride, padding=k // 2, count_include_pad=False)
        return nn.MaxPool2d(k, stride=stride, padding=k // 2)

    return make


#: operation name -> factory(channels, stride)
OPS: dict[str, Callable[[int, int], nn.Module]] = {
    "none": lambda c, s: Zero(s),
    "skip_connect": lambda c, s: nn.Identity() if s == 1 else FactorizedReduce(c, c),
    "avg_pool_3x3": _pool("avg", 3),
    "max_pool_3x3": _pool("max", 3),
    "max_pool_5x5": _pool("max", 5),
    "max_pool_7x7": _pool("max", 7),
    "conv_1x1": lambda c, s: _conv(c, 1, s),
    "conv_3x3": lambda c, s: _conv(c, 3, s),
    "conv_3x1_1x3": lambda c, s: _factorized_conv(c, 3, s),
    "conv_7x1_1x7": lambda c, s: _factorized_conv(c, 7, s),
    "sep_conv_3x3": lambda c, s: _separable(c, 3, s, 1),
    "sep_conv_5x5": lambda c, s: _separable(c, 5, s, 1),
    "sep_conv_7x7": lambda c, s: _separable(c, 7, s, 1),
    "dil_sep_conv_3x3": lambda c, s: _separable(c, 3, s, 2),
    "dil_conv_3x3": lambda c, s: _dilated(c, 3, s),
    "dil_conv_5x5": lambda c, s: _dilated(c, 5, s),
}


class NdsCell(nn.Module):
    def __init__(
        self,
        pairs: tuple[tuple[str, int], ...],
        concat: tuple[int, ...],
        c_pp: int,
        c_p: int,
        c: int,
        reduction: bool,
        reduction_prev: bool,
    ) -> None:
        super().__init__()
        self.preprocess0: nn.Module = (
            FactorizedReduce(c_pp, c) if reduction_prev else ReluConvBn(c_pp, c)
        )
        self.preprocess1 = ReluConvBn(c_p, c)
        self.ops = nn.ModuleList(OPS[op](c, 2 if reduction and src < 2 else 1) for op, src in pairs)
        self.inputs = tuple(src for _op, src in pairs)
        self.concat = tuple(concat)

    def forward(self, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
        states = [self.preprocess0(s0), self.preprocess1(s1)]
        for i in range(0, len(self.ops), 2):
            a = self.ops[i](states[self.inputs[i]])
            b = self.ops[i + 1](states[self.inputs[i + 1]])
            states.append(a + b)
        return torch.cat([states[i] for i in self.concat], dim=1)


class NdsCellNetwork(nn.Module):
    """pycls's NetworkCIFAR (``imagenet=False``) or NetworkImageNet, without auxiliary head."""

    def __init__(self, cfg: CellConfig, shape: DatasetShape, imagenet: bool) -> None:
        super().__init__()
        c = cfg.width
        self.imagenet = imagenet
        if imagenet:
            self.stem0 = nn.Sequential(
                nn.Conv2d(shape.channels, c // 2, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c // 2),
                nn.ReLU(),
                nn.Conv2d(c // 2, c, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c),
            )
            self.stem1 = nn.Sequential(
                nn.ReLU(),
                nn.Conv2d(c, c, 3, stride=2, padding=1, bias=False),
                nn.BatchNorm2d(c),
            )
            c_pp, c_p, c_curr = c, c, c
            reduction_prev = True
        else:
            self.stem = nn.Sequential(
                nn.Conv2d(shape.channels, 3 * c, 3, padding=1, bias=False),
                nn.BatchNorm2d(3 * c),
            )
            c_pp, c_p, c_curr = 3 * c, 3 * c, c
            reduction_prev = False
        self.cells = nn.ModuleList()
        layers = cfg.depth
        for i in range(layers):
            reduction = i in (layers // 3, 2 * layers // 3)
            if reduction:
                c_curr *= 2
            pairs, concat = (
                (cfg.reduce, cfg.reduce_concat) if reduction else (cfg.normal, cfg.normal_concat)
            )
            self.cells.append(NdsCell(pairs, concat, c_pp, c_p, c_curr, reduction, reduction_prev))
            reduction_prev = reduction
            c_pp, c_p = c_p, len(concat) * c_curr
        self.global_pooling = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Linear(c_p, shape.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s1 = self.extract_cell_features(x)[-1]
        return self.classifier(self.global_pooling(s1).flatten(1))

    def extract_cell_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stem's output (``stem1``'s for ImageNet), then every cell's output: AZ-NAS'
        feature maps (``nasfilter.metrics.measures.aznas``)."""
        if self.imagenet:
            s0 = self.stem0(x)
            s1 = self.stem1(s0)
        else:
            s0 = s1 = self.stem(x)
        feats = [s1]
        for cell in self.cells:
            s0, s1 = s1, cell(s0, s1)
            feats.append(s1)
        return feats


def build_cell_network(cfg: CellConfig, shape: DatasetShape, imagenet: bool) -> nn.Module:
    return NdsCellNetwork(cfg, shape, imagenet)
