"""The µNAS microcontroller space (``munas``).

Liberis, Dudziak, Lane: "µNAS: Constrained Neural Architecture Search for
Microcontrollers", EuroMLSys 2021 (reference code: github.com/eliberis/uNAS); the
dissertation's Table 1. N in [1, 10] convolutional blocks, each in series with the
previous one or a branch in parallel with it; 1 to 3 convolution layers per block (full
K x K with K in {1, 3, 5, 7}, or depthwise with K in {3, 5, 7}; C in [1, 128]; stride 1
or 2; optional 2 x 2 max pre-pooling, BatchNorm and ReLU); optional P x P average or max
pooling, P in {2, 4, 6}; 1 to 3 dense layers of U in [10, 256] units with ReLU; the
classifier. About 1e152 networks: sampled, never enumerated.

Every architecture is valid at every input shape: as in µNAS, a kernel or pooling window
larger than the feature map is clipped to it and pre-pooling is skipped on a 1 x 1 map,
so no spatial size ever falls below 1.

Modules: ``genome`` (the architecture and its identity string), ``sampling`` (random
draws and morphisms), ``analysis`` (analytic figures), ``memory`` (the peak-RAM model),
``network_torch`` (the PyTorch network; imported only by ``build``).
See docs/spaces.md.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from nasfilter.datasets import DatasetShape, get_shape
from nasfilter.spaces import register_space
from nasfilter.spaces.base import Costs, Space
from nasfilter.spaces.munas.analysis import Figures, analyse
from nasfilter.spaces.munas.genome import (
    MAX_BLOCKS,
    MAX_DENSE,
    MAX_LAYERS,
    Arch,
    format_arch,
    parse_arch,
    remember,
)
from nasfilter.spaces.munas.sampling import draw_arch, morphisms, mutate_arch

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn


#: Input shapes of µNAS's experiments (defined in ``nasfilter.datasets``; Speech Commands
#: as in µNAS's first release and its tests: 49 MFCC frames x 40 coefficients, 10 words
#: plus silence and unknown; Chars74K: EnglishImg resized to 48 x 48 RGB, 62 classes).
SHAPES = tuple(get_shape(n) for n in ("mnist", "speech-commands", "chars74k"))

FIGURES = ("params", "flops", "relu_count", "macs", "peak_ram_kb")


_FIGURES: dict[tuple[str, DatasetShape], Figures] = {}
_FIGURES_MAX = 1 << 15


def figures_of(arch: str | Arch, shape: DatasetShape) -> Figures:
    """Every analytic figure of a munas architecture (identity string or parsed).

    Memoised by (identity, shape): the engine asks once per metric."""
    if isinstance(arch, str):
        key = (arch, shape)
        got = _FIGURES.get(key)
        if got is None:
            if len(_FIGURES) >= _FIGURES_MAX:
                _FIGURES.clear()
            got = _FIGURES[key] = figures_of(parse_arch(arch), shape)
        return got
    h, w = shape.hw
    return analyse(arch, h, w, shape.channels, shape.num_classes)


@register_space
class MunasSpace(Space):
    name = "munas"
    description = (
        "µNAS microcontroller CNNs (Liberis et al., EuroMLSys 2021; Table 1): 1-10 conv "
        "blocks in series or parallel, 1-3 layers each, pooling, 1-3 dense layers"
    )
    notation = "blocks/pool/dense, e.g. c3x16br;mc3s2x32br|d3r/a2/64 (docs/spaces.md)"
    size = None
    enumerable = False
    figures = frozenset(FIGURES)
    shapes = ("cifar10", "mnist", "speech-commands", "chars74k", "cifar100", "imagenet16-120")

    # -- identity -------------------------------------------------------------------------
    def parse(self, arch: str) -> Arch:
        return parse_arch(arch)

    def format(self, parsed: Arch) -> str:
        return format_arch(parsed)

    # -- sampling and mutation ------------------------------------------------------------
    def draw(self, rng: np.random.Generator) -> str:
        a = draw_arch(rng)
        text = format_arch(a)
        remember(text, a)
        return text

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        child = mutate_arch(parse_arch(arch), rng)[1]
        text = format_arch(child)
        remember(text, child)
        return text

    def morphisms(self, arch: str) -> list[str]:
        """The names of the morphisms that apply to ``arch`` (``mutate`` draws one of
        them uniformly)."""
        return [name for name, _ in morphisms(parse_arch(arch))]

    def features(self, arch: str) -> tuple[Any, ...]:
        """A fixed-length description (µNAS's schema: every block, layer and dense slot,
        None where absent), so that a distance counts the positions that differ."""
        a = parse_arch(arch)
        out: list[Any] = [len(a.blocks)]
        for i in range(MAX_BLOCKS):
            block = a.blocks[i] if i < len(a.blocks) else None
            out.append(None if block is None else (block.parallel, len(block.layers)))
            for j in range(MAX_LAYERS):
                layer = block.layers[j] if block is not None and j < len(block.layers) else None
                out.append(None if layer is None else tuple(layer))
        out.append(a.pool)
        out.append(len(a.dense))
        out.extend(a.dense[i] if i < len(a.dense) else None for i in range(MAX_DENSE))
        return tuple(out)

    # -- costs and networks ---------------------------------------------------------------
    def costs(self, arch: str, dataset: DatasetShape | None = None) -> Costs:
        f = figures_of(arch, dataset if dataset is not None else self.shape(None))
        return Costs(
            params=f.params,
            flops=f.flops,
            relu_count=f.relu_count,
            extra={"macs": f.macs, "peak_ram_kb": f.peak_ram_bytes / 1000.0},
        )

    def build(self, arch: str, shape: DatasetShape | int | None = None) -> nn.Module:
        from nasfilter.spaces.munas.network_torch import build_network

        return build_network(parse_arch(arch), self.shape(shape))


__all__ = ["FIGURES", "SHAPES", "MunasSpace", "figures_of"]
