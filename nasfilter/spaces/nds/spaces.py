"""The NDS design spaces (Radosavovic et al., "On Network Design Spaces for Visual
Recognition", ICCV 2019): sampling-only spaces whose identity is an NDS record's ``net``.

Cell spaces (pycls's NetworkCIFAR; ``-in``: NetworkImageNet at 224 x 224, 1000 classes):

============== ========================== ===== ======== ===============================
space          operations                 nodes output   NDS file
============== ========================== ===== ======== ===============================
nds-nasnet     13 (NASNet)                5     loose    NASNet.json / NASNet_in.json
nds-amoeba     8 (AmoebaNet)              5     loose    Amoeba.json / Amoeba_in.json
nds-pnas       8 (PNAS)                   5     all      PNAS.json / PNAS_in.json
nds-enas       5 (ENAS)                   5     loose    ENAS.json / ENAS_in.json
nds-darts      7 (DARTS, no ``none``)     4     all      DARTS.json / DARTS_in.json
============== ========================== ===== ======== ===============================

Each node sums two operations, each on a state drawn uniformly from the states before
it (the two cell inputs and earlier nodes), each operation drawn uniformly from the
space's list; the normal and the reduction cell are drawn independently. The output
concatenates every node ("all") or the nodes no other node reads ("loose" ends). Width
and depth are drawn from (16, 24, 32) and (4, 8, 12, 16, 20).

AnyNet spaces (pycls's AnyNet on CIFAR-10; entry 0 of each list is the 16-channel stem,
then three stages with strides 1, 2, 2), per stage independently:

=============== ========================= =============================== ======== ========
space           block                     depths / widths                 ratios   groups
=============== ========================= =============================== ======== ========
nds-vanilla     double_plain_block        DEPTHS_9 / WIDTHS_12
nds-resnet      res_basic_block           DEPTHS_9 / WIDTHS_12
nds-resnext-a   res_bottleneck_block      1..16 (5) / 16..256 (5)         1, 2, 4  1, 2, 4
nds-resnext-b   res_bottleneck_block      1..16 (5) / 64..1024 (5)        1, 2, 4  1..16 (5)
=============== ========================= =============================== ======== ========

``docs/spaces.md`` says where each range comes from.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from nasfilter.datasets import DatasetShape
from nasfilter.errors import InvalidArchitectureError
from nasfilter.spaces import register_space
from nasfilter.spaces.base import Costs, Space
from nasfilter.spaces.nds.config import (
    AnyNetConfig,
    CellConfig,
    ConfigError,
    canonical_json,
    load_json,
    loose_ends,
    parse_anynet,
    parse_cell,
)
from nasfilter.spaces.nds.costs import Tally, anynet_tally, cell_tally

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

#: Shapes the CIFAR networks build at (the first is the default) and the ImageNet shape.
CIFAR_SHAPES = ("cifar10", "cifar100", "imagenet16-120")
IMAGENET = "imagenet"

# -- operation lists (pycls's genotypes.py, as published with UnNAS and NASWOT) -------------
NASNET_OPS = (
    "skip_connect",
    "conv_3x1_1x3",
    "conv_7x1_1x7",
    "dil_conv_3x3",
    "avg_pool_3x3",
    "max_pool_3x3",
    "max_pool_5x5",
    "max_pool_7x7",
    "conv_1x1",
    "conv_3x3",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
)
ENAS_OPS = ("skip_connect", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3")
AMOEBA_OPS = (
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
    "avg_pool_3x3",
    "max_pool_3x3",
    "dil_sep_conv_3x3",
    "conv_7x1_1x7",
)
PNAS_OPS = (
    "sep_conv_3x3",
    "sep_conv_5x5",
    "sep_conv_7x7",
    "conv_7x1_1x7",
    "skip_connect",
    "avg_pool_3x3",
    "max_pool_3x3",
    "dil_conv_3x3",
)
#: DARTS's seven operations; pycls's list also has ``none`` (accepted, never drawn).
DARTS_OPS = (
    "max_pool_3x3",
    "avg_pool_3x3",
    "skip_connect",
    "sep_conv_3x3",
    "sep_conv_5x5",
    "dil_conv_3x3",
    "dil_conv_5x5",
)

CELL_WIDTHS = (16, 24, 32)
CELL_DEPTHS = (4, 8, 12, 16, 20)

# -- AnyNet value lists (NDS Table 1: "a, b, n": n values about evenly spaced in log
#    space from a to b) ---------------------------------------------------------------------
DEPTHS_9 = (1, 2, 3, 4, 6, 8, 12, 16, 24)  # 1, 24, 9
WIDTHS_12 = (16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256)  # 16, 256, 12
DEPTHS_5 = (1, 2, 4, 8, 16)  # 1, 16, 5
WIDTHS_A = (16, 32, 64, 128, 256)  # 16, 256, 5
WIDTHS_B = (64, 128, 256, 512, 1024)  # 64, 1024, 5
BOT_MULS_3 = (1.0, 0.5, 0.25)  # bottleneck ratios 1, 4, 3 -> multipliers 1 / r
GROUPS_A = (1, 2, 4)  # 1, 4, 3
GROUPS_B = (1, 2, 4, 8, 16)  # 1, 16, 5
STEM_WIDTH = 16
STAGE_STRIDES = (1, 2, 2)


class NdsSpace(Space):
    """A sampling-only NDS design space; identities are canonical JSON ``net`` configs."""

    size = None
    enumerable = False
    figures = frozenset({"params", "flops", "relu_count"})
    shapes: tuple[str, ...] = CIFAR_SHAPES
    #: NDS's file base name (``DARTS`` for DARTS.json) and the truth dataset it records
    file_stem: str = ""
    truth_dataset: str = "cifar10"
    truth_format = "nds-json"
    example: str = ""

    # -- identity ------------------------------------------------------------------------
    def parse_object(self, obj: Any) -> CellConfig | AnyNetConfig:
        """Validate a decoded config (a dict); InvalidArchitectureError, one line, if bad."""
        try:
            return self._parse(obj)
        except ConfigError as e:
            raise InvalidArchitectureError(
                f"Invalid {self.name} config: {e.message}",
                f"An {self.name} identity is the `net` object of a record of NDS's "
                f"{self.file_stem}.json, e.g. {self.example}",
            ) from None

    def _parse(self, obj: Any) -> CellConfig | AnyNetConfig:  # pragma: no cover - abstract
        raise NotImplementedError

    def parse(self, arch: str) -> CellConfig | AnyNetConfig:
        return _parse_text(self, arch)

    def format(self, parsed: CellConfig | AnyNetConfig) -> str:
        return canonical_json(parsed.doc)

    def canonical_object(self, obj: Any) -> str:
        """The identity of a decoded config (e.g. ``record["net"]`` of an NDS file)."""
        return self.format(self.parse_object(obj))

    # -- costs and networks ----------------------------------------------------------------
    def tally(self, arch: str, shape: DatasetShape | int | str | None = None) -> Tally:
        return _tally(self, self.canonical(arch), self.shape(shape))

    def costs(self, arch: str, dataset: DatasetShape | None = None) -> Costs:
        t = self.tally(arch, dataset)
        return Costs(params=t.params, flops=t.flops, relu_count=t.relu)

    def features(self, arch: str) -> tuple[Any, ...]:  # pragma: no cover - abstract
        raise NotImplementedError


@lru_cache(maxsize=4096)
def _parse_text(space: NdsSpace, arch: str) -> CellConfig | AnyNetConfig:
    try:
        obj = load_json(arch)
    except ConfigError as e:
        raise InvalidArchitectureError(
            f"Invalid {space.name} config: {e.message}",
            f"An {space.name} identity is the `net` object of a record of NDS's "
            f"{space.file_stem}.json, e.g. {space.example}",
        ) from None
    return space.parse_object(obj)


@lru_cache(maxsize=4096)
def _tally(space: NdsSpace, arch: str, shape: DatasetShape) -> Tally:
    cfg = space.parse(arch)
    if isinstance(cfg, CellConfig):
        return cell_tally(cfg, shape, isinstance(space, NdsCellSpace) and space.imagenet)
    return anynet_tally(cfg, shape)


def _other(rng: np.random.Generator, choices: tuple[Any, ...], current: Any) -> Any:
    """A uniformly drawn choice different from ``current``."""
    rest = [c for c in choices if c != current]
    return rest[int(rng.integers(len(rest)))]


# -- cell spaces --------------------------------------------------------------------------


class NdsCellSpace(NdsSpace):
    ops: tuple[str, ...] = ()  # drawn
    accepted_ops: tuple[str, ...] = ()  # accepted in configs (pycls's list for the space)
    nodes: int = 5
    loose: bool = True  # output: loose ends (True) or all nodes
    imagenet: bool = False
    widths: tuple[int, ...] = CELL_WIDTHS
    depths: tuple[int, ...] = CELL_DEPTHS

    def __init__(self) -> None:
        if not self.accepted_ops:
            self.accepted_ops = self.ops
        self.notation = (
            'NDS `net` JSON: {"aux":false,"depth":D,"drop_prob":0.0,"genotype":{"normal":'
            '[[op,input],...],"normal_concat":[...],"reduce":[...],"reduce_concat":[...]},'
            '"width":W}'
        )

    def _parse(self, obj: Any) -> CellConfig:
        return parse_cell(obj, self.accepted_ops, self.nodes, self.imagenet)

    def _draw_cell(self, rng: np.random.Generator) -> tuple[list[list[Any]], list[int]]:
        pairs = []
        for node in range(self.nodes):
            for _ in range(2):
                op = self.ops[int(rng.integers(len(self.ops)))]
                pairs.append([op, int(rng.integers(node + 2))])
        return pairs, self._concat(pairs)

    def _concat(self, pairs: list[list[Any]]) -> list[int]:
        return loose_ends(pairs, self.nodes) if self.loose else list(range(2, self.nodes + 2))

    def draw(self, rng: np.random.Generator) -> str:
        width = self.widths[int(rng.integers(len(self.widths)))]
        depth = self.depths[int(rng.integers(len(self.depths)))]
        normal, normal_concat = self._draw_cell(rng)
        reduce, reduce_concat = self._draw_cell(rng)
        doc = {
            "aux": False,
            "depth": depth,
            "drop_prob": 0.0,
            "genotype": {
                "normal": normal,
                "normal_concat": normal_concat,
                "reduce": reduce,
                "reduce_concat": reduce_concat,
            },
            "width": width,
        }
        return self.canonical_object(doc)

    def features(self, arch: str) -> tuple[Any, ...]:
        cfg = self.parse(arch)
        assert isinstance(cfg, CellConfig)
        return (
            cfg.width,
            cfg.depth,
            *(op for op, _ in cfg.normal),
            *(src for _, src in cfg.normal),
            *(op for op, _ in cfg.reduce),
            *(src for _, src in cfg.reduce),
        )

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """One position changed: the width, the depth, or one operation or input of the
        normal or reduction cell (a loose-end output is recomputed)."""
        cfg = self.parse(arch)
        assert isinstance(cfg, CellConfig)
        doc = _copy(cfg.doc)
        positions = 2 + 2 * 2 * len(cfg.normal)
        pos = int(rng.integers(positions))
        if pos == 0:
            doc["width"] = _other(rng, self.widths, cfg.width)
        elif pos == 1:
            doc["depth"] = _other(rng, self.depths, cfg.depth)
        else:
            pos -= 2
            kind = "normal" if pos < 2 * len(cfg.normal) else "reduce"
            slot, which = divmod(pos % (2 * len(cfg.normal)), 2)
            pairs = doc["genotype"][kind]
            if which == 0:
                pairs[slot][0] = _other(rng, self.ops, pairs[slot][0])
            else:
                pairs[slot][1] = _other(rng, tuple(range(slot // 2 + 2)), pairs[slot][1])
            if self.loose:
                doc["genotype"][f"{kind}_concat"] = self._concat(pairs)
        return self.canonical_object(doc)

    def build(self, arch: str, shape: DatasetShape | int | None = None) -> nn.Module:
        from nasfilter.spaces.nds.cells_torch import build_cell_network

        cfg = self.parse(arch)
        assert isinstance(cfg, CellConfig)
        return build_cell_network(cfg, self.shape(shape), self.imagenet)


def _copy(doc: Any) -> Any:
    if isinstance(doc, dict):
        return {k: _copy(v) for k, v in doc.items()}
    if isinstance(doc, (list, tuple)):
        return [_copy(v) for v in doc]
    return doc


_CELL_EXAMPLE = (
    '{"aux":false,"depth":12,"drop_prob":0.0,"genotype":{"normal":[["sep_conv_3x3",0],'
    '["skip_connect",1],...],"normal_concat":[...],"reduce":[...],"reduce_concat":[...]},'
    '"width":32}'
)


class _ImageNetCells(NdsCellSpace):
    imagenet = True
    shapes = (IMAGENET,)
    truth_dataset = "imagenet"


@register_space
class NasnetSpace(NdsCellSpace):
    name = "nds-nasnet"
    description = "NDS NASNet design space: 13 ops, 5-node cells, loose-end output (CIFAR-10)"
    file_stem = "NASNet"
    ops = NASNET_OPS
    example = _CELL_EXAMPLE


@register_space
class NasnetInSpace(_ImageNetCells):
    name = "nds-nasnet-in"
    description = "NDS NASNet design space on ImageNet (NetworkImageNet, 224x224)"
    file_stem = "NASNet_in"
    ops = NASNET_OPS
    example = _CELL_EXAMPLE


@register_space
class AmoebaSpace(NdsCellSpace):
    name = "nds-amoeba"
    description = "NDS AmoebaNet design space: 8 ops, 5-node cells, loose-end output (CIFAR-10)"
    file_stem = "Amoeba"
    ops = AMOEBA_OPS
    example = _CELL_EXAMPLE


@register_space
class AmoebaInSpace(_ImageNetCells):
    name = "nds-amoeba-in"
    description = "NDS AmoebaNet design space on ImageNet (NetworkImageNet, 224x224)"
    file_stem = "Amoeba_in"
    ops = AMOEBA_OPS
    example = _CELL_EXAMPLE


@register_space
class PnasSpace(NdsCellSpace):
    name = "nds-pnas"
    description = "NDS PNAS design space: 8 ops, 5-node cells, all nodes concatenated (CIFAR-10)"
    file_stem = "PNAS"
    ops = PNAS_OPS
    loose = False
    example = _CELL_EXAMPLE


@register_space
class PnasInSpace(_ImageNetCells):
    name = "nds-pnas-in"
    description = "NDS PNAS design space on ImageNet (NetworkImageNet, 224x224)"
    file_stem = "PNAS_in"
    ops = PNAS_OPS
    loose = False
    example = _CELL_EXAMPLE


@register_space
class EnasSpace(NdsCellSpace):
    name = "nds-enas"
    description = "NDS ENAS design space: 5 ops, 5-node cells, loose-end output (CIFAR-10)"
    file_stem = "ENAS"
    ops = ENAS_OPS
    example = _CELL_EXAMPLE


@register_space
class EnasInSpace(_ImageNetCells):
    name = "nds-enas-in"
    description = "NDS ENAS design space on ImageNet (NetworkImageNet, 224x224)"
    file_stem = "ENAS_in"
    ops = ENAS_OPS
    example = _CELL_EXAMPLE


@register_space
class DartsSpace(NdsCellSpace):
    name = "nds-darts"
    description = "NDS DARTS design space: 7 ops, 4-node cells, all nodes concatenated (CIFAR-10)"
    file_stem = "DARTS"
    ops = DARTS_OPS
    accepted_ops = ("none", *DARTS_OPS)
    nodes = 4
    loose = False
    example = _CELL_EXAMPLE


@register_space
class DartsInSpace(_ImageNetCells):
    name = "nds-darts-in"
    description = "NDS DARTS design space on ImageNet (NetworkImageNet, 224x224)"
    file_stem = "DARTS_in"
    ops = DARTS_OPS
    accepted_ops = ("none", *DARTS_OPS)
    nodes = 4
    loose = False
    example = _CELL_EXAMPLE


# -- AnyNet spaces ------------------------------------------------------------------------


class NdsAnyNetSpace(NdsSpace):
    block_type: str = ""
    depths: tuple[int, ...] = ()
    widths: tuple[int, ...] = ()
    bot_muls: tuple[float, ...] = ()  # empty: no bottleneck
    groups: tuple[int, ...] = ()

    def __init__(self) -> None:
        self.notation = (
            'NDS `net` JSON: {"block_type":...,"bot_muls":[...],"ds":[1,d1,d2,d3],'
            '"num_gs":[...],"ss":[1,1,2,2],"ws":[16,w1,w2,w3]} (entry 0: the stem)'
        )
        bms = "[0.0,0.25,0.25,0.25]" if self.bot_muls else "[]"
        gs = "[1,1,1,1]" if self.bot_muls else "[]"
        w1, w2, w3 = self.widths[:3]
        self.example = (
            f'{{"block_type":"{self.block_type}","bot_muls":{bms},"ds":[1,4,4,4],'
            f'"num_gs":{gs},"ss":[1,1,2,2],"ws":[16,{w1},{w2},{w3}]}}'
        )

    def _parse(self, obj: Any) -> AnyNetConfig:
        return parse_anynet(obj, self.block_type)

    def draw(self, rng: np.random.Generator) -> str:
        n = len(STAGE_STRIDES)
        ds = [int(self.depths[int(rng.integers(len(self.depths)))]) for _ in range(n)]
        ws = [int(self.widths[int(rng.integers(len(self.widths)))]) for _ in range(n)]
        doc: dict[str, Any] = {
            "block_type": self.block_type,
            "ds": [1, *ds],
            "ss": [1, *STAGE_STRIDES],
            "ws": [STEM_WIDTH, *ws],
        }
        if self.bot_muls:
            bms = [float(self.bot_muls[int(rng.integers(len(self.bot_muls)))]) for _ in range(n)]
            gs = [int(self.groups[int(rng.integers(len(self.groups)))]) for _ in range(n)]
            doc["bot_muls"] = [0.0, *bms]
            doc["num_gs"] = [1, *gs]
        else:
            doc["bot_muls"] = []
            doc["num_gs"] = []
        return self.canonical_object(doc)

    def features(self, arch: str) -> tuple[Any, ...]:
        cfg = self.parse(arch)
        assert isinstance(cfg, AnyNetConfig)
        out: list[Any] = [*cfg.ds[1:], *cfg.ws[1:], *cfg.ss[1:]]
        if cfg.bot_muls is not None and cfg.num_gs is not None:
            out += [*cfg.bot_muls[1:], *cfg.num_gs[1:]]
        return tuple(out)

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """One stage's depth, width (or, with a bottleneck, ratio or groups) changed to
        another value of the space's list."""
        cfg = self.parse(arch)
        assert isinstance(cfg, AnyNetConfig)
        doc = _copy(cfg.doc)
        keys: list[tuple[str, tuple[Any, ...]]] = [("ds", self.depths), ("ws", self.widths)]
        if self.bot_muls:
            keys += [("bot_muls", self.bot_muls), ("num_gs", self.groups)]
        for _ in range(100):
            key, choices = keys[int(rng.integers(len(keys)))]
            stage = 1 + int(rng.integers(len(cfg.ds) - 1))
            trial = _copy(doc)
            trial[key][stage] = _other(rng, choices, doc[key][stage])
            try:
                return self.canonical_object(trial)
            except InvalidArchitectureError:  # e.g. a width the groups do not divide
                continue
        raise InvalidArchitectureError(f"No valid {self.name} neighbour of {arch}.")

    def build(self, arch: str, shape: DatasetShape | int | None = None) -> nn.Module:
        from nasfilter.spaces.nds.anynet_torch import build_anynet

        cfg = self.parse(arch)
        assert isinstance(cfg, AnyNetConfig)
        return build_anynet(cfg, self.shape(shape))


@register_space
class VanillaSpace(NdsAnyNetSpace):
    name = "nds-vanilla"
    description = "NDS Vanilla design space: AnyNet of plain [3x3 conv, BN, ReLU] x 2 blocks"
    file_stem = "Vanilla"
    block_type = "double_plain_block"
    depths = DEPTHS_9
    widths = WIDTHS_12


@register_space
class ResnetSpace(NdsAnyNetSpace):
    name = "nds-resnet"
    description = "NDS ResNet design space: AnyNet of residual basic blocks (CIFAR-10)"
    file_stem = "ResNet"
    block_type = "res_basic_block"
    depths = DEPTHS_9
    widths = WIDTHS_12


@register_space
class ResnextASpace(NdsAnyNetSpace):
    name = "nds-resnext-a"
    description = "NDS ResNeXt-A design space: AnyNet of bottleneck blocks, widths 16-256"
    file_stem = "ResNeXt-A"
    block_type = "res_bottleneck_block"
    depths = DEPTHS_5
    widths = WIDTHS_A
    bot_muls = BOT_MULS_3
    groups = GROUPS_A


@register_space
class ResnextBSpace(NdsAnyNetSpace):
    name = "nds-resnext-b"
    description = "NDS ResNeXt-B design space: AnyNet of bottleneck blocks, widths 64-1024"
    file_stem = "ResNeXt-B"
    block_type = "res_bottleneck_block"
    depths = DEPTHS_5
    widths = WIDTHS_B
    bot_muls = BOT_MULS_3
    groups = GROUPS_B
