"""NATS-Bench spaces: topology (TSS, = NAS-Bench-201) and size (SSS).

Both are the same macro skeleton (xautodl's ``DynamicShapeTinyNet``): a list of channel
widths ``channels`` of length 3N+2, with a ResNet basic block (stride 2) at positions N
and 2N+1 and a cell everywhere else. TSS fixes the widths (C=16, N=5) and varies the
cell; SSS fixes the cell and varies the five widths (N=1).

The analytic costs below follow the network in ``nasfilter.spaces.nats_torch`` exactly;
``tests/test_spaces.py`` holds them equal to measurements of the built network.
"""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

from nasfilter.datasets import DatasetShape
from nasfilter.errors import InvalidArchitectureError
from nasfilter.spaces import register_space
from nasfilter.spaces.base import DATASETS, Costs, MixedRadixSpace

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

TSS_OPS = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
# edges in identity order: node 1 <- 0; node 2 <- 0, 1; node 3 <- 0, 1, 2
EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
SSS_CHOICES = (8, 16, 24, 32, 40, 48, 56, 64)
SSS_CELL = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+"
    "|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|"
)

Genotype = tuple[tuple[tuple[str, int], ...], ...]
#: The figure of ``relu_count_live``: ReLU elements on a path from the input to the output.
LIVE = "relu_count_live"


@lru_cache(maxsize=65536)
def parse_cell(arch: str) -> Genotype:
    """Parse ``|op~0|+|op~0|op~1|+|op~0|op~1|op~2|`` into per-node (op, input) tuples."""
    if not isinstance(arch, str) or not arch:
        raise InvalidArchitectureError(
            f"Malformed TSS cell {arch!r}.", "Expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2|."
        )
    nodes = arch.split("+")
    if len(nodes) != 3:
        raise InvalidArchitectureError(
            f"Malformed TSS cell {arch!r}: expected 3 nodes separated by '+', got {len(nodes)}.",
            "Expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2|.",
        )
    genotype = []
    for node_index, node in enumerate(nodes, start=1):
        if not (node.startswith("|") and node.endswith("|")):
            raise InvalidArchitectureError(
                f"Malformed TSS cell {arch!r}: node {node_index} must be wrapped in '|'.",
                "Expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2|.",
            )
        edges = node[1:-1].split("|")
        if len(edges) != node_index:
            raise InvalidArchitectureError(
                f"Malformed TSS cell {arch!r}: node {node_index} needs {node_index} "
                f"edge(s), got {len(edges)}.",
                "Expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2|.",
            )
        node_ops = []
        for expected_input, edge in enumerate(edges):
            op, sep, src = edge.partition("~")
            if not sep or op not in TSS_OPS:
                raise InvalidArchitectureError(
                    f"Malformed TSS cell {arch!r}: unknown operation {op!r}.",
                    f"Operations are: {', '.join(TSS_OPS)}.",
                )
            if src != str(expected_input):
                raise InvalidArchitectureError(
                    f"Malformed TSS cell {arch!r}: edge {edge!r} of node {node_index} "
                    f"must read from node {expected_input}.",
                    "Expected |op~0|+|op~0|op~1|+|op~0|op~1|op~2|.",
                )
            node_ops.append((op, expected_input))
        genotype.append(tuple(node_ops))
    return tuple(genotype)


def format_cell(genotype: Genotype) -> str:
    return "+".join("|" + "|".join(f"{op}~{src}" for op, src in node) + "|" for node in genotype)


def _op_costs(op: str, c_in: int, c_out: int, hw: int) -> tuple[int, int, int]:
    """(params, flops, relu) of one cell edge at stride 1 on an hw x hw map."""
    area = hw * hw
    if op == "none":
        return 0, 0, 0
    if op == "skip_connect":
        if c_in == c_out:
            return 0, 0, 0
        # FactorizedReduce at stride 1: conv1x1 + BN, its ReLU is never called.
        return c_in * c_out + 2 * c_out, c_in * c_out * area, 0
    if op in ("nor_conv_1x1", "nor_conv_3x3"):
        k = 1 if op == "nor_conv_1x1" else 3
        return k * k * c_in * c_out + 2 * c_out, k * k * c_in * c_out * area, c_in * area
    if op == "avg_pool_3x3":
        if c_in == c_out:
            return 0, 0, 0
        # 1x1 ReLUConvBN preprocessing, then the pooling (not counted as flops)
        return c_in * c_out + 2 * c_out, c_in * c_out * area, c_in * area
    raise InvalidArchitectureError(f"Unknown operation {op!r}.")  # pragma: no cover


def live_nodes(genotype: Genotype) -> tuple[tuple[bool, ...], tuple[bool, ...]]:
    """Which nodes of a cell are live: ``(reached, reaching)``, per node 0..3.

    ``reached[j]``: node j depends on the cell's input (node 0): a chain of edges other
    than ``none`` leads to it from node 0 (a node whose every incoming edge is ``none`` is
    the constant zero). ``reaching[i]``: node i reaches the cell's output (node 3) through
    such a chain (otherwise nothing it computes is ever used).
    """
    n = len(genotype) + 1
    reached = [True] + [False] * (n - 1)
    for j, node in enumerate(genotype, start=1):
        reached[j] = any(op != "none" and reached[src] for op, src in node)
    reaching = [False] * (n - 1) + [True]
    for j in range(n - 1, 0, -1):
        if reaching[j]:
            for op, src in genotype[j - 1]:
                if op != "none":
                    reaching[src] = True
    return tuple(reached), tuple(reaching)


@lru_cache(maxsize=4096)
def _cell_costs(genotype: Genotype, c_in: int, c_out: int, hw: int) -> tuple[int, int, int, int]:
    """(params, flops, relu, live relu) of one cell; cached (SSS has 8 x 8 width pairs per
    stage). An edge's ReLU elements are live when its source node is reached from the
    cell's input and its target node reaches the cell's output (``live_nodes``)."""
    reached, reaching = live_nodes(genotype)
    params = flops = relu = live = 0
    for j, node in enumerate(genotype, start=1):
        for op, src in node:
            p, f, r = _op_costs(op, c_in if src == 0 else c_out, c_out, hw)
            params += p
            flops += f
            relu += r
            if reached[src] and reaching[j]:
                live += r
    return params, flops, relu, live


@lru_cache(maxsize=65536)
def network_costs(channels: tuple[int, ...], genotype: Genotype, dataset: DatasetShape) -> Costs:
    """Analytic costs of the NATS skeleton with these widths and this cell.

    Cached: a run asks for several metrics of the same architecture.
    """
    n = len(channels) // 3
    reductions = [False] * n + [True] + [False] * n + [True] + [False] * n
    hw = dataset.resolution
    c0 = channels[0]
    params = 9 * dataset.channels * c0 + 2 * c0  # stem conv + BN
    flops = 9 * dataset.channels * c0 * hw * hw
    relu = live = 0
    c_prev = c0
    for c_curr, reduction in zip(channels, reductions, strict=True):
        if reduction:
            h2 = (hw + 1) // 2  # 3x3 conv, stride 2, padding 1
            area_out = h2 * h2
            relu += c_prev * hw * hw + c_curr * area_out
            live += c_prev * hw * hw + c_curr * area_out
            params += 9 * c_prev * c_curr + 2 * c_curr  # conv_a
            params += 9 * c_curr * c_curr + 2 * c_curr  # conv_b
            params += c_prev * c_curr  # downsample: avg pool + 1x1 conv
            flops += (9 * c_prev * c_curr + 9 * c_curr * c_curr) * area_out
            flops += c_prev * c_curr * (hw // 2) * (hw // 2)
            hw = h2
        else:
            p, f, r, lv = _cell_costs(genotype, c_prev, c_curr, hw)
            params += p
            flops += f
            relu += r
            live += lv
        c_prev = c_curr
    params += 2 * c_prev  # lastact BN
    relu += c_prev * hw * hw  # lastact ReLU
    live += c_prev * hw * hw
    params += c_prev * dataset.num_classes + dataset.num_classes  # classifier
    flops += c_prev * dataset.num_classes + dataset.num_classes
    if not live_nodes(genotype)[0][-1]:  # the cell cuts the input off: every value after
        live = 0  # the first cell is a constant, no ReLU sees the input
    return Costs(params=params, flops=flops, relu_count=relu, extra={LIVE: float(live)})


# -- TSS fast path ------------------------------------------------------------------------
# In TSS every cell maps C channels to C channels, so each edge's cost depends only on its
# operation and position: costs are the all-'none' network plus one table entry per edge.
# tests/test_spaces.py holds this equal to ``network_costs`` on every cell of the space.

_EDGE_TOKENS = tuple({f"{op}~{src}": i for i, op in enumerate(TSS_OPS)} for _, src in EDGES)
_TOKEN_SLOTS = (1, 3, 4, 6, 7, 8)  # positions of the six edges in arch.split("|")


def tss_digits(arch: str) -> tuple[int, ...] | None:
    """Op indices of the six edges of a canonical TSS string, or None if not canonical."""
    parts = arch.split("|") if isinstance(arch, str) else ()
    if len(parts) != 10 or parts[2] != "+" or parts[5] != "+" or parts[0] or parts[9]:
        return None
    try:
        return tuple(_EDGE_TOKENS[e][parts[slot]] for e, slot in enumerate(_TOKEN_SLOTS))
    except KeyError:
        return None


@lru_cache(maxsize=16)
def _tss_tables(channels: tuple[int, ...], dataset: DatasetShape) -> tuple[Costs, tuple]:
    empty = tuple(tuple(("none", src) for src in range(node)) for node in (1, 2, 3))
    base = network_costs(channels, empty, dataset)
    deltas = []
    for node, src in EDGES:
        row = []
        for op in TSS_OPS:
            geno = [list(n) for n in empty]
            geno[node - 1][src] = (op, src)
            c = network_costs(channels, tuple(tuple(n) for n in geno), dataset)
            row.append(tuple(_ints(c)[i] - _ints(base)[i] for i in range(3)))
        deltas.append(tuple(row))
    return base, tuple(deltas)


def _ints(c: Costs) -> tuple[int, int, int]:
    """(params, flops, relu_count) of NATS costs, which always has all three."""
    assert c.params is not None and c.flops is not None and c.relu_count is not None
    return c.params, c.flops, c.relu_count


@lru_cache(maxsize=len(TSS_OPS) ** len(EDGES))
def _tss_live_edges(digits: tuple[int, ...]) -> tuple[bool, ...] | None:
    """Per edge (identity order), whether its ReLU elements are live; None when the
    cell cuts its input off from its output (nothing is live then)."""
    it = iter(TSS_OPS[d] for d in digits)
    geno = tuple(tuple((next(it), src) for src in range(node)) for node in (1, 2, 3))
    reached, reaching = live_nodes(geno)
    if not reached[-1]:
        return None
    return tuple(reached[src] and reaching[node] for node, src in EDGES)


def tss_costs(channels: tuple[int, ...], digits: tuple[int, ...], dataset: DatasetShape) -> Costs:
    base, deltas = _tss_tables(channels, dataset)
    params, flops, relu = _ints(base)
    live_edges = _tss_live_edges(digits)
    live = relu if live_edges is not None else 0  # the all-'none' network's ReLUs: fixed
    for e, (row, d) in enumerate(zip(deltas, digits, strict=True)):
        p, f, r = row[d]
        params += p
        flops += f
        relu += r
        if live_edges is not None and live_edges[e]:
            live += r
    return Costs(params=params, flops=flops, relu_count=relu, extra={LIVE: float(live)})


def _build(channels: tuple[int, ...], genotype: Genotype, num_classes: int) -> nn.Module:
    from nasfilter.spaces.nats_torch import NATSNetwork

    return NATSNetwork(list(channels), genotype, num_classes)


@register_space
class NatsTSS(MixedRadixSpace):
    name = "nats-tss"
    description = "NATS-Bench topology space (NAS-Bench-201): 5 ops on 6 edges, C=16, N=5"
    size = len(TSS_OPS) ** len(EDGES)
    notation = "|op~0|+|op~0|op~1|+|op~0|op~1|op~2|"
    figures = frozenset({"params", "flops", "relu_count", LIVE})
    truth_format = "nats-bench"
    truth_sample = "nasfilter.truth.table:load_sample"
    radices = (len(TSS_OPS),) * len(EDGES)  # one operation per edge, in identity order
    channels = (16,) * 5 + (32,) + (32,) * 5 + (64,) + (64,) * 5

    def parse(self, arch: str) -> Genotype:
        return parse_cell(arch)

    def format(self, parsed: Genotype) -> str:
        return format_cell(parsed)

    def unrank(self, index: int) -> str:
        if not 0 <= index < self.size:
            raise IndexError(index)
        ops = []
        for _ in EDGES:
            index, digit = divmod(index, len(TSS_OPS))
            ops.append(TSS_OPS[digit])
        it = iter(ops)
        return format_cell(
            tuple(tuple((next(it), src) for src in range(node)) for node in (1, 2, 3))
        )

    def rank(self, arch: str) -> int:
        genotype = self.parse(arch)
        index = 0
        for op, _src in reversed([e for node in genotype for e in node]):
            index = index * len(TSS_OPS) + TSS_OPS.index(op)
        return index

    def costs(self, arch: str, dataset: DatasetShape | None = None) -> Costs:
        dataset = dataset or DATASETS["cifar10"]
        digits = tss_digits(arch)
        if digits is None:  # not canonical: parse for the error message (or the genotype)
            return network_costs(self.channels, self.parse(arch), dataset)
        return tss_costs(self.channels, digits, dataset)

    def build(self, arch: str, shape: DatasetShape | int | None = None) -> nn.Module:
        return _build(self.channels, self.parse(arch), self.shape(shape).num_classes)


_SSS_GENOTYPE = parse_cell(SSS_CELL)
_WIDTH_OF = {str(w): w for w in SSS_CHOICES}


@register_space
class NatsSSS(MixedRadixSpace):
    name = "nats-sss"
    description = "NATS-Bench size space: 5 widths in {8..64}, fixed cell, N=1"
    size = len(SSS_CHOICES) ** 5
    notation = "c1:c2:c3:c4:c5, each in 8,16,...,64"
    figures = frozenset({"params", "flops", "relu_count", LIVE})
    truth_format = "nats-bench"
    radices = (len(SSS_CHOICES),) * 5  # one width per layer

    def parse(self, arch: str) -> tuple[int, ...]:
        if isinstance(arch, str):  # fast path: canonical widths
            parts = arch.split(":")
            if len(parts) == 5:
                try:
                    return tuple(_WIDTH_OF[p] for p in parts)
                except KeyError:
                    pass
        hint = "Expected five widths from 8,16,24,32,40,48,56,64 joined by ':', e.g. 8:16:24:32:64."
        if not isinstance(arch, str):
            raise InvalidArchitectureError(f"Malformed SSS architecture {arch!r}.", hint)
        parts = arch.split(":")
        if len(parts) != 5:
            raise InvalidArchitectureError(
                f"Malformed SSS architecture {arch!r}: {len(parts)} "
                f"width{'' if len(parts) == 1 else 's'} (5 needed).",
                hint,
            )
        try:
            widths = tuple(int(p) for p in parts)
        except ValueError:
            raise InvalidArchitectureError(
                f"Malformed SSS architecture {arch!r}: widths must be integers.", hint
            ) from None
        for w in widths:
            if w not in SSS_CHOICES:
                raise InvalidArchitectureError(
                    f"Malformed SSS architecture {arch!r}: width {w} is not allowed.", hint
                )
        return widths

    def format(self, parsed: tuple[int, ...]) -> str:
        return ":".join(str(w) for w in parsed)

    def unrank(self, index: int) -> str:
        if not 0 <= index < self.size:
            raise IndexError(index)
        widths = []
        for _ in range(5):
            index, digit = divmod(index, len(SSS_CHOICES))
            widths.append(SSS_CHOICES[digit])
        return ":".join(str(w) for w in widths)

    def rank(self, arch: str) -> int:
        index = 0
        for w in reversed(self.parse(arch)):
            index = index * len(SSS_CHOICES) + SSS_CHOICES.index(w)
        return index

    def costs(self, arch: str, dataset: DatasetShape | None = None) -> Costs:
        return network_costs(self.parse(arch), _SSS_GENOTYPE, dataset or DATASETS["cifar10"])

    def build(self, arch: str, shape: DatasetShape | int | None = None) -> nn.Module:
        return _build(self.parse(arch), _SSS_GENOTYPE, self.shape(shape).num_classes)
