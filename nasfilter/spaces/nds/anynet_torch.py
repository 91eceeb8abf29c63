"""AnyNet networks of the NDS design spaces (Vanilla, ResNet, ResNeXt-A/B), in torch.

The network NDS trained with pycls's AnyNet (the version published with pycls in 2019:
``num_gs`` is the number of groups, ``bot_muls`` the bottleneck width multiplier). The
config's entry 0 is the stem and entries 1.. the stages:

- stem: 3x3 conv (stride 1), BN, ReLU with ``ws[0]`` channels (pycls's
  ``res_stem_cifar``);
- stage i: ``ds[i]`` blocks of width ``ws[i]``, the first with stride ``ss[i]``;
- head: global average pooling, linear classifier.

Blocks: ``double_plain_block`` [3x3 conv, BN, ReLU] x 2; ``res_basic_block`` x + F(x)
with F = 3x3 conv, BN, ReLU, 3x3 conv, BN, then ReLU; ``res_bottleneck_block`` x + F(x)
with F = 1x1 conv to w_b = round(w * bot_mul), BN, ReLU, grouped 3x3 conv (``num_gs``
groups, the stride), BN, ReLU, 1x1 conv, BN, then ReLU. A residual block whose width or
resolution changes has a 1x1 conv + BN projection on its shortcut.

Weights are initialised as pycls does: conv ~ N(0, 2 / (k*k*c_out)), BN gamma 1 and
beta 0, linear ~ N(0, 0.01) with zero bias.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from nasfilter.datasets import DatasetShape
from nasfilter.spaces.nds.config import AnyNetConfig


def _conv_bn(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1) -> list[nn.Module]:
    return [
        nn.Conv2d(c_in, c_out, k, stride=stride, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]


class PlainBlock(nn.Sequential):
    """[3x3 conv, BN, ReLU] x 2."""

    def __init__(self, w_in: int, w_out: int, stride: int) -> None:
        super().__init__(
            *_conv_bn(w_in, w_out, 3, stride), nn.ReLU(), *_conv_bn(w_out, w_out, 3), nn.ReLU()
        )


class ResidualBlock(nn.Module):
    """ReLU(shortcut(x) + F(x)); the shortcut projects (1x1 conv, BN) when the shape changes."""

    def __init__(
        self, w_in: int, w_out: int, stride: int, bot_mul: float | None, groups: int | None
    ) -> None:
        super().__init__()
        self.proj: nn.Module | None = None  # (registered first, as in pycls)
        if w_in != w_out or stride != 1:
            self.proj = nn.Sequential(*_conv_bn(w_in, w_out, 1, stride))
        if bot_mul is None:
            self.f = nn.Sequential(
                *_conv_bn(w_in, w_out, 3, stride), nn.ReLU(), *_conv_bn(w_out, w_out, 3)
            )
        else:
            wb = int(round(w_out * bot_mul))
            self.f = nn.Sequential(
                *_conv_bn(w_in, wb, 1),
                nn.ReLU(),
                *_conv_bn(wb, wb, 3, stride, groups or 1),
                nn.ReLU(),
                *_conv_bn(wb, w_out, 1),
            )
        self.relu = nn.ReLU()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        shortcut = self.proj(x) if self.proj is not None else x
        return self.relu(shortcut + self.f(x))


class NdsAnyNet(nn.Module):
    def __init__(self, cfg: AnyNetConfig, shape: DatasetShape) -> None:
        super().__init__()
        w0 = cfg.stem_width
        self.stem = nn.Sequential(*_conv_bn(shape.channels, w0, 3), nn.ReLU())
        stages = []
        w_prev = w0
        for d, w, s, bm, g in cfg.stages():
            blocks: list[nn.Module] = []
            for b in range(d):
                w_in, stride = (w_prev, s) if b == 0 else (w, 1)
                if cfg.block_type == "double_plain_block":
                    blocks.append(PlainBlock(w_in, w, stride))
                else:
                    blocks.append(ResidualBlock(w_in, w, stride, bm, g))
            stages.append(nn.Sequential(*blocks))
            w_prev = w
        self.stages = nn.Sequential(*stages)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(w_prev, shape.num_classes)
        self.apply(_init_weights)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(self.pool(x).flatten(1))

    def extract_cell_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The stem's output, then every block's output: AZ-NAS' feature maps
        (``nasfilter.metrics.measures.aznas``)."""
        feats = [self.stem(x)]
        for stage in self.stages:
            assert isinstance(stage, nn.Sequential)
            for block in stage:
                feats.append(block(feats[-1]))
        return feats


def _init_weights(m: nn.Module) -> None:
    if isinstance(m, nn.Conv2d):
        fan_out = m.kernel_size[0] * m.kernel_size[1] * m.out_channels
        nn.init.normal_(m.weight, 0.0, math.sqrt(2.0 / fan_out))
    elif isinstance(m, nn.BatchNorm2d):
        nn.init.ones_(m.weight)
        nn.init.zeros_(m.bias)
    elif isinstance(m, nn.Linear):
        nn.init.normal_(m.weight, 0.0, 0.01)
        nn.init.zeros_(m.bias)


def build_anynet(cfg: AnyNetConfig, shape: DatasetShape) -> nn.Module:
    return NdsAnyNet(cfg, shape)
