"""The µNAS network in PyTorch (imported only when a network is built).

The structure follows µNAS's Keras model (eliberis/uNAS ``cnn/cnn_architecture.py``,
``to_keras_model``): "valid" convolutions with a bias, the kernel clipped to the feature
map; optional 2 x 2 max pre-pooling (skipped on a 1 x 1 map); optional BatchNorm and
ReLU after each convolution; a parallel block starts from the input of the last serial
block and ends with the main path's channel count (a depthwise last layer is followed by
a 1 x 1 convolution without BN or ReLU); outputs are brought together by max pooling to
the smallest map (window round(size / smallest)), zero padding (bottom, right) to the
largest, and summed; then the optional P x P pooling, flatten, dense layers with ReLU and
the classifier. Shapes are decided at build time for the given input shape, exactly as
``analysis.analyse`` computes them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from nasfilter.datasets import DatasetShape
from nasfilter.spaces.munas.genome import Arch, Layer, main_channels


def _conv_layer(
    x: tuple[int, int, int], layer: Layer, out_ch: int
) -> tuple[nn.Sequential, tuple[int, int, int]]:
    h, w, c = x
    mods: list[nn.Module] = []
    if layer.pool and (h > 1 or w > 1):
        ph, pw = min(2, h), min(2, w)
        mods.append(nn.MaxPool2d((ph, pw)))
        h, w = h // ph, w // pw
    k = min(layer.k, h, w)
    s = layer.stride
    if layer.kind == "c":
        mods.append(nn.Conv2d(c, out_ch, k, stride=s, padding=0, bias=True))
    else:
        out_ch = c
        mods.append(nn.Conv2d(c, c, k, stride=s, padding=0, groups=c, bias=True))
    if layer.bn:
        mods.append(nn.BatchNorm2d(out_ch))
    if layer.relu:
        mods.append(nn.ReLU())
    return nn.Sequential(*mods), ((h - k) // s + 1, (w - k) // s + 1, out_ch)


class Merge(nn.Module):
    """µNAS's ``tie_up_pending_outputs``: pool every input to the smallest map, pad to
    the largest, add (identity for a single input)."""

    def __init__(self, shapes: list[tuple[int, int, int]]) -> None:
        super().__init__()
        sh = min(s[0] for s in shapes)
        sw = min(s[1] for s in shapes)
        pools: list[nn.Module] = []
        pooled = []
        for h, w, c in shapes:
            dh, dw = int(round(h / sh)), int(round(w / sw))
            if dh > 1 or dw > 1:
                ph, pw = min(dh, h), min(dw, w)
                pools.append(nn.MaxPool2d((ph, pw)))
                h, w = h // ph, w // pw
            else:
                pools.append(nn.Identity())
            pooled.append((h, w, c))
        self.pools = nn.ModuleList(pools)
        self.out_hw = (max(p[0] for p in pooled), max(p[1] for p in pooled))
        self.pads = [(0, self.out_hw[1] - p[1], 0, self.out_hw[0] - p[0]) for p in pooled]
        self.out_shape = (*self.out_hw, pooled[0][2])

    def forward(self, xs: list[torch.Tensor]) -> torch.Tensor:
        if len(xs) == 1:
            return self.pools[0](xs[0])  # type: ignore[no-any-return]
        out: torch.Tensor | None = None
        for x, pool, pad in zip(xs, self.pools, self.pads, strict=True):
            y = pool(x)
            if pad[1] or pad[3]:
                y = F.pad(y, pad)
            out = y if out is None else out + y
        assert out is not None
        return out


class Stage(nn.Module):
    """A serial block and the parallel blocks that branch from its input."""

    def __init__(self, serial: nn.Sequential, branches: list[nn.Sequential]) -> None:
        super().__init__()
        self.serial = serial
        self.branches = nn.ModuleList(branches)
        self.merge: Merge | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        outs = [self.serial(x)] + [b(x) for b in self.branches]
        assert self.merge is not None
        return self.merge(outs)


class MunasNetwork(nn.Module):
    def __init__(self, arch: Arch, shape: DatasetShape) -> None:
        super().__init__()
        h, w = shape.hw
        x = (h, w, shape.channels)
        stages: list[Stage] = []
        outs: list[tuple[int, int, int]] = []
        li = x
        for b, block in enumerate(arch.blocks):
            if block.parallel:
                target = main_channels(arch.blocks, b, shape.channels)
                assert target is not None
                y = li
                mods: list[nn.Module] = []
                last = len(block.layers) - 1
                for j, layer in enumerate(block.layers):
                    out_ch = target if (j == last and layer.kind == "c") else (layer.ch or 0)
                    m, y = _conv_layer(y, layer, out_ch)
                    mods.append(m)
                if block.layers[-1].kind == "d":
                    mods.append(nn.Conv2d(y[2], target, 1, bias=True))
                    y = (y[0], y[1], target)
                stages[-1].branches.append(nn.Sequential(*mods))
                outs.append(y)
            else:
                if outs:
                    stages[-1].merge = Merge(outs)
                    x = stages[-1].merge.out_shape
                li = x
                mods = []
                for layer in block.layers:
                    m, x = _conv_layer(x, layer, layer.ch or 0)
                    mods.append(m)
                stages.append(Stage(nn.Sequential(*mods), []))
                outs = [x]
        stages[-1].merge = Merge(outs)
        h, w, c = stages[-1].merge.out_shape
        self.stages = nn.ModuleList(stages)
        head: list[nn.Module] = []
        if arch.pool is not None:
            p = arch.pool[1]
            ph, pw = min(p, h), min(p, w)
            head.append(nn.AvgPool2d((ph, pw)) if arch.pool[0] == "a" else nn.MaxPool2d((ph, pw)))
            h, w = h // ph, w // pw
        head.append(nn.Flatten())
        size = h * w * c
        for u in arch.dense:
            head += [nn.Linear(size, u), nn.ReLU()]
            size = u
        head.append(nn.Linear(size, shape.num_classes))
        self.head = nn.Sequential(*head)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for stage in self.stages:
            x = stage(x)
        return self.head(x)  # type: ignore[no-any-return]

    def extract_cell_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Every convolution layer's output (µNAS has no stem or cells: its layers play
        their part), a stage's merged output in place of its last serial layer's when
        it has parallel branches: AZ-NAS' feature maps
        (``nasfilter.metrics.measures.aznas``)."""
        feats: list[torch.Tensor] = []
        for stage in self.stages:
            assert isinstance(stage, Stage) and stage.merge is not None
            inp = y = feats[-1] if feats else x
            for layer in stage.serial:
                y = layer(y)
                feats.append(y)
            feats[-1] = stage.merge([y] + [b(inp) for b in stage.branches])
        return feats


def build_network(arch: Arch, shape: DatasetShape) -> nn.Module:
    """The PyTorch network of ``arch`` for inputs of ``shape``."""
    return MunasNetwork(arch, shape)
