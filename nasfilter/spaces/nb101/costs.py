"""Analytic parameters, FLOPs and ReLU count of NAS-Bench-101's network.

The network (``nasbench/lib/model_builder.py`` with ``config.py``'s defaults): a stem
conv3x3-BN-ReLU with 128 channels, three stacks of three cells each, a 2x2 max-pool
(stride 2, 'same') before stacks 2 and 3 that halves the resolution while the cells
double the channels (128, 256, 512), global average pooling and a dense layer.

Inside a cell with ``C_in`` input and ``C_out`` output channels (NB101's
``compute_vertex_channels``): the output channels are split evenly over the interior
vertices that feed the output, the first ``C_out mod k`` of them (in vertex order) get
one more; every other interior vertex takes the largest channel count among the
vertices it feeds. A vertex adds its inputs: an edge from the input is a 1x1
conv-BN-ReLU projection ``C_in -> c``, an edge from an interior vertex is sliced to
``c`` channels (no parameters). The vertex then applies its operation at ``c`` channels
(conv3x3-BN-ReLU, conv1x1-BN-ReLU, or a 3x3 max-pool). The output concatenates the
interior vertices that feed it, and adds a projection ``C_in -> C_out`` of the input when
the input feeds the output (with no interior vertex, the output is that projection).

Convolutions have no bias; BatchNorm has two trainable parameters per channel (TF's
``batch_normalization``: gamma and beta; its moving statistics are not trainable); the
dense layer has a bias. This is the count NAS-Bench-101 stores as
``trainable_parameters``. FLOPs follow nasfilter's counter (``nasfilter.metrics.probe``):
multiply-accumulates of convolutions and the dense layer plus its bias adds; BatchNorm,
pooling, ReLU, additions and slicing are not counted. ``relu_count`` counts the elements
entering every ReLU (one per conv-BN-ReLU), per sample.

Because the channel remainder goes to the lowest-numbered output vertices, the counts
are those of the canonical vertex order (the order the benchmark trained); a relabeled
but isomorphic cell can differ by a few parameters.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

from nasfilter.datasets import DatasetShape
from nasfilter.spaces.base import Costs
from nasfilter.spaces.nb101.cells import MAX_VERTICES, Cell, edges_of

STEM_CHANNELS = 128
NUM_STACKS = 3
MODULES_PER_STACK = 3
CONV3X3, CONV1X1, MAXPOOL3X3 = 0, 1, 2


def vertex_channels(c_in: int, c_out: int, n: int, edges: set[tuple[int, int]]) -> list[int]:
    """Channels of every vertex (NB101's ``compute_vertex_channels``)."""
    vc = [0] * n
    vc[0], vc[n - 1] = c_in, c_out
    if n == 2:
        return vc
    feeding = [v for v in range(1, n - 1) if (v, n - 1) in edges]
    base, extra = divmod(c_out, len(feeding))
    for v in feeding:
        vc[v] = base + (1 if extra > 0 else 0)
        extra -= 1
    for v in range(n - 3, 0, -1):
        if (v, n - 1) not in edges:
            vc[v] = max(vc[d] for d in range(v + 1, n - 1) if (v, d) in edges)
    return vc


def module_plan(shape: DatasetShape) -> list[tuple[int, int, int, int]]:
    """(C_in, C_out, height, width) of each of the nine cells, in order."""
    h, w = shape.hw
    plan = []
    c_in = c = STEM_CHANNELS
    for stack in range(NUM_STACKS):
        if stack > 0:  # 2x2 max-pool, stride 2, 'same' padding
            h, w = (h + 1) // 2, (w + 1) // 2
            c *= 2
        for _ in range(MODULES_PER_STACK):
            plan.append((c_in, c, h, w))
            c_in = c
    return plan


Triple = tuple[int, int, int]


def _add(a: Triple, b: Triple) -> Triple:
    return a[0] + b[0], a[1] + b[1], a[2] + b[2]


def _conv(k: int, c_in: int, c_out: int, area: int) -> Triple:
    """(params, flops, relu) of a k x k conv (no bias) + BN + ReLU."""
    return k * k * c_in * c_out + 2 * c_out, k * k * c_in * c_out * area, c_out * area


@lru_cache(maxsize=8192)
def graph_tables(
    n: int, bits: int, shape: DatasetShape
) -> tuple[Triple, tuple[tuple[Triple, ...], ...]]:
    """For one cell graph: the costs of the whole network that do not depend on the
    operations (stem, projections, classifier), and per interior vertex the cost of
    each operation there (summed over the nine cells)."""
    edges = set(edges_of(n, bits))
    h, w = shape.hw
    area0 = h * w
    base: Triple = _conv(3, shape.channels, STEM_CHANNELS, area0)
    per_vertex = [[(0, 0, 0)] * 3 for _ in range(n)]
    c_last = STEM_CHANNELS
    for c_in, c_out, mh, mw in module_plan(shape):
        area = mh * mw
        vc = vertex_channels(c_in, c_out, n, edges)
        for v in range(1, n - 1):
            c = vc[v]
            if (0, v) in edges:
                base = _add(base, _conv(1, c_in, c, area))
            row = per_vertex[v]
            row[CONV3X3] = _add(row[CONV3X3], _conv(3, c, c, area))
            row[CONV1X1] = _add(row[CONV1X1], _conv(1, c, c, area))
        if (0, n - 1) in edges:
            base = _add(base, _conv(1, c_in, c_out, area))
        c_last = c_out
    k = shape.num_classes
    base = _add(base, (c_last * k + k, c_last * k + k, 0))
    return base, tuple(tuple(r) for r in per_vertex[1 : n - 1])


_TABLES_BY_SHAPE: dict[DatasetShape, dict[int, tuple[Triple, tuple[tuple[Triple, ...], ...]]]] = {}


def cell_costs(cell: Cell, shape: DatasetShape) -> Costs:
    """Analytic costs of the network built from ``cell`` (in the vertex order given:
    pass the canonical cell)."""
    tables = _TABLES_BY_SHAPE.get(shape)
    if tables is None:
        tables = _TABLES_BY_SHAPE.setdefault(shape, {})
    key = cell.n << 21 | cell.bits
    got = tables.get(key)
    if got is None:
        got = tables[key] = graph_tables(cell.n, cell.bits, shape)
    (p, f, r), table = got
    for row, op in zip(table, cell.ops, strict=True):
        dp, df, dr = row[op]
        p += dp
        f += df
        r += dr
    return Costs(params=p, flops=f, relu_count=r)


def costs_arrays(keys: np.ndarray, shape: DatasetShape) -> dict[str, np.ndarray]:
    """``params``, ``flops``, ``relu_count`` (int64 arrays) of many cells at once, from
    their packed keys (``cells.pack``): the per-graph tables of :func:`graph_tables`
    gathered with numpy, so the whole space takes about a second."""
    keys = np.asarray(keys, dtype=np.int64)
    graphs, inverse = np.unique(keys >> 8, return_inverse=True)
    width = MAX_VERTICES - 2
    base = np.zeros((len(graphs), 3), dtype=np.int64)
    per_op = np.zeros((len(graphs), width, 3, 3), dtype=np.int64)  # graph, vertex, op, figure
    for g, key in enumerate(graphs.tolist()):
        n, bits = key >> 21, key & 0x1FFFFF
        b, table = graph_tables(n, bits, shape)
        base[g] = b
        for v, row in enumerate(table):
            per_op[g, v] = row
    total = base[inverse]
    n = keys >> 29
    code = keys & 0xFF
    for v in range(width):
        k = n - 2
        present = v < k
        digit = np.where(present, (code // 3 ** np.maximum(k - 1 - v, 0)) % 3, 0)
        total += np.where(present[:, None], per_op[inverse, v, digit], 0)
    return {"params": total[:, 0], "flops": total[:, 1], "relu_count": total[:, 2]}
