"""The NAS-Bench-101 space (``nb101``): 423,624 cells, their costs and networks.

- ``cells``: identity notation, pruning, canonical form, the benchmark's module hash;
- ``enumeration``: every cell in pure numpy, in the generator's order, cached on disk;
- ``costs``: analytic params / FLOPs / ReLU count of the benchmark's network;
- ``nb101_torch``: that network in PyTorch (imported only by ``build``).

See docs/spaces.md.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import numpy as np

from nasfilter.datasets import DatasetShape
from nasfilter.errors import InvalidArchitectureError
from nasfilter.spaces import register_space
from nasfilter.spaces.base import Costs, Space
from nasfilter.spaces.nb101 import enumeration
from nasfilter.spaces.nb101.cells import (
    HINT,
    MAX_EDGES,
    MAX_VERTICES,
    OPS,
    Cell,
    bits_of,
    canonical_cell,
    canonicalize,
    cell_hash,
    check_cell,
    edges_of,
    fast_cell,
    format_cell,
    is_canonical,
    is_hash,
    matrix_of,
    ops_of,
    parse_json,
    parse_notation,
    parse_spec,
)
from nasfilter.spaces.nb101.costs import cell_costs, costs_arrays

if TYPE_CHECKING:  # pragma: no cover
    import torch.nn as nn

#: Length of ``features``: the 21 upper-triangular entries of the 7 x 7 matrix, then
#: the 5 interior operations (padded cells: see ``features``).
FEATURES = MAX_VERTICES * (MAX_VERTICES - 1) // 2 + (MAX_VERTICES - 2)


def _known(cell: Cell) -> Cell:
    """``cell`` in canonical form: a quick check when it already is (the common case:
    the graph's automorphisms, cached per graph), the full canonicalization otherwise."""
    return cell if is_canonical(cell) else canonicalize(cell)


@lru_cache(maxsize=65536)
def parse_cell(text: str) -> Cell:
    """The canonical cell of any accepted notation (identity, JSON spec, hash)."""
    if not isinstance(text, str):
        raise InvalidArchitectureError(f"Malformed NAS-Bench-101 cell {text!r}.", HINT)
    s = text.strip()
    if not s:
        raise InvalidArchitectureError("Empty NAS-Bench-101 cell.", HINT)
    if s[0] in "{[":
        n, edges, ops = parse_json(s)
        return canonical_cell(n, edges, ops)
    if is_hash(s):
        t = enumeration.table()
        i = t.index_of_hash(s.lower())
        if i < 0:
            raise InvalidArchitectureError(
                f"{s!r} is not the hash of any NAS-Bench-101 cell.",
                "Hashes are NAS-Bench-101's 32-hex module hashes (graph_util.hash_module).",
            )
        return t.cell(i)
    cell = fast_cell(s)
    if cell is None:
        n, edges, ops = parse_notation(s)  # raises with the reason
        cell = Cell(n, bits_of(edges), tuple(ops))
    return _known(cell)


def spec_of(cell: Cell) -> dict[str, list[Any]]:
    """The cell as NAS-Bench-101's ``ModelSpec`` arguments (canonical: the matrix and
    operations the benchmark stores)."""
    return {"matrix": matrix_of(cell), "ops": ops_of(cell)}


def spec_costs(matrix: Any, ops: Any, shape: DatasetShape | None = None) -> Costs:
    """Costs of a ``ModelSpec`` built in the vertex order it is given (pruned, not
    canonicalized), as NAS-Bench-101's model builder would build that spec. The costs
    of the benchmark's own network for that cell are ``space.costs(canonical)``; the two
    differ only when the spec lists the cell in another order and the output's channels
    do not divide evenly (see docs/spaces.md)."""
    from nasfilter.datasets import get_shape

    n, edges, labels = parse_spec(matrix, ops, "NAS-Bench-101 spec")
    return cell_costs(Cell(n, bits_of(edges), tuple(labels)), shape or get_shape("cifar10"))


def _features(cell: Cell) -> tuple[int, ...]:
    """21 adjacency entries of the cell padded to 7 vertices (padding vertices inserted
    before the output, unconnected), then 5 op labels (-1 for padding)."""
    n = cell.n
    pos = list(range(n - 1)) + [MAX_VERTICES - 1]  # vertex -> padded vertex
    present = set()
    for i, j in edges_of(n, cell.bits):
        present.add((pos[i], pos[j]))
    adj = tuple(int((i, j) in present) for j in range(1, MAX_VERTICES) for i in range(j))
    ops = tuple(cell.ops) + (-1,) * (MAX_VERTICES - n)
    return adj + ops


def _neighbour_cells(cell: Cell) -> set[Cell]:
    """Canonical cells one mutation away: flip one edge or change one operation of the
    cell padded to 7 vertices, or (cells with fewer than 7 vertices) add a vertex fed by
    the input and feeding one existing vertex; results outside the space (disconnected,
    over 9 edges) are skipped, and so is the cell itself."""
    n = cell.n
    edges = set(edges_of(n, cell.bits))
    ops = list(cell.ops)
    out: set[Cell] = set()

    def consider(m: int, es: set[tuple[int, int]], labels: list[int]) -> None:
        matrix = [[0] * m for _ in range(m)]
        for i, j in es:
            matrix[i][j] = 1
        names = ["input", *(OPS[o] for o in labels), "output"]
        try:
            k, pe, pl = parse_spec(matrix, names, "mutant")
        except InvalidArchitectureError:
            return
        c = canonical_cell(k, pe, pl)
        if c != cell:
            out.add(c)

    # edge flips on the cell's own vertices
    for j in range(1, n):
        for i in range(j):
            consider(n, edges ^ {(i, j)}, ops)
    # operation changes
    for v in range(n - 2):
        for o in range(len(OPS)):
            if o != ops[v]:
                consider(n, edges, ops[:v] + [o] + ops[v + 1 :])
    # growth: a new vertex 1 (the others shift up by one) fed by the input and feeding
    # one existing vertex (interior or output)
    if n < MAX_VERTICES:
        shifted = {(i + 1 if i else 0, j + 1) for i, j in edges}
        for o in range(len(OPS)):
            for target in range(2, n + 1):
                consider(n + 1, shifted | {(0, 1), (1, target)}, [o, *ops])
    return out


@register_space
class NB101(Space):
    name = "nb101"
    description = (
        "NAS-Bench-101: cells of up to 7 vertices and 9 edges, ops conv3x3/conv1x1/"
        "maxpool3x3, 3 stacks x 3 cells, C=128 (CIFAR-10)"
    )
    notation = "op~src+src|...|out~src+src (ops conv3x3, conv1x1, maxpool3x3; 0 = input)"
    size = enumeration.SIZE
    enumerable = True
    figures = frozenset({"params", "flops", "relu_count"})
    shapes = ("cifar10",)
    truth_format = "nb101-tfrecord"
    truth_sample = "nasfilter.truth.nb101:load_nb101_sample"

    def __init__(self) -> None:
        self._default_shape = self.shape(None)
        self._last_costs: tuple[str, DatasetShape, Costs] | None = None
        self._all_costs: dict[DatasetShape, dict[str, np.ndarray]] = {}

    # -- identity ---------------------------------------------------------------------------
    def parse(self, arch: str) -> Cell:
        return parse_cell(arch)

    def format(self, parsed: Cell) -> str:
        return format_cell(parsed)

    def canonical(self, arch: str) -> str:
        return canonical_identity(arch)

    def hash(self, arch: str) -> str:
        """NAS-Bench-101's own module hash of ``arch`` (any accepted notation)."""
        return cell_hash(self.parse(arch))

    def spec(self, arch: str) -> dict[str, list[Any]]:
        """``{"matrix": ..., "ops": ...}``: the cell as the benchmark stores it."""
        return spec_of(self.parse(arch))

    # -- enumeration ------------------------------------------------------------------------
    def unrank(self, index: int) -> str:
        if not 0 <= index < enumeration.SIZE:
            raise IndexError(index)
        return format_cell(enumeration.table().cell(index))

    def rank(self, arch: str) -> int:
        return enumeration.table().rank(self.parse(arch))  # parse gives a canonical cell

    def enumerate(self) -> Iterator[str]:
        """Every identity in enumeration order (formatted once per process, then kept
        with the table: ``Table.identities``)."""
        return iter(enumeration.table().identities())

    # -- neighbourhood ----------------------------------------------------------------------
    def neighbours(self, arch: str) -> list[str]:
        """Every cell one mutation away (see ``_neighbour_cells``), in enumeration order."""
        t = enumeration.table()
        cells = sorted(_neighbour_cells(self.parse(arch)), key=t.rank)
        return [format_cell(c) for c in cells]

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """A uniformly drawn neighbour: flip an edge, change an operation, or add a
        vertex; always valid, canonical and different from ``arch``."""
        options = self.neighbours(arch)
        return options[int(rng.integers(len(options)))]

    def features(self, arch: str) -> tuple[int, ...]:
        return _features(self.parse(arch))

    # -- costs and networks -----------------------------------------------------------------
    def costs(self, arch: str, dataset: DatasetShape | None = None) -> Costs:
        if dataset is None:
            shape = self._default_shape
        elif isinstance(dataset, DatasetShape) and dataset.name in self.shapes:
            shape = dataset
        else:
            shape = self.shape(dataset)
        last = self._last_costs
        if last is not None and last[0] == arch and last[1] == shape:
            return last[2]  # the engine asks for several figures of one architecture
        out = cell_costs(parse_cell(arch), shape)
        self._last_costs = (arch, shape, out)
        return out

    def all_costs(self, dataset: DatasetShape | None = None) -> dict[str, np.ndarray]:
        """``params``, ``flops``, ``relu_count`` of every cell, in enumeration order
        (int64 arrays; about a second): the bulk form of ``costs`` for whole-space runs."""
        shape = self.shape(dataset)
        got = self._all_costs.get(shape)
        if got is None:
            got = self._all_costs[shape] = costs_arrays(enumeration.table().keys, shape)
        return got

    def _costs_many(
        self, archs: Sequence[str], dataset: DatasetShape | None = None
    ) -> dict[str, np.ndarray]:
        """The figures of many cells from the whole-space table (``all_costs``): a run of
        consecutive identities of the enumeration (a whole-space run's chunks) by one
        slice; other large batches by an identity -> position index (built once, from
        the enumeration), small ones by rank; identities not in canonical form are parsed
        one by one."""
        table = self.all_costs(dataset)
        try:
            span = self._enumeration_span(archs)
            if span is not None:
                return {f: table[f][span].astype(np.float64) for f in self.figures}
            if len(archs) >= 2048:
                index = self._identity_index()
                idx = np.fromiter((index[a] for a in archs), dtype=np.int64, count=len(archs))
            else:
                t = enumeration.table()
                idx = np.fromiter(
                    (t.rank(self.parse(a)) for a in archs), dtype=np.int64, count=len(archs)
                )
        except Exception:  # noqa: BLE001 - fall back to the per-cell path (and its errors)
            return super()._costs_many(archs, dataset)
        return {f: table[f][idx].astype(np.float64) for f in self.figures}

    def _enumeration_span(self, archs: Sequence[str]) -> slice | None:
        """The slice of the enumeration that ``archs`` is, exactly, or None (checked
        element by element against ``Table.identities``; the engine's chunks of a
        whole-space run hold the very same string objects, so this is a pointer check)."""
        n = len(archs)
        if n < 2048:  # small batches: rank each
            return None
        t = enumeration.table()
        ids = t.identities()
        first = archs[0]
        i = t.rank(self.parse(first)) if isinstance(first, str) else -1
        if i < 0 or ids[i] != first or i + n > len(ids):
            return None
        span = slice(i, i + n)
        return span if ids[span] == list(archs) else None

    def _identity_index(self) -> dict[str, int]:
        """Canonical identity -> enumeration position, for the current table (~30 MB
        over the strings of ``Table.identities``)."""
        t = enumeration.table()
        got = self.__dict__.get("_index")
        if got is None or got[0] is not t:
            ids = t.identities()
            got = (t, dict(zip(ids, range(len(ids)), strict=True)))
            self.__dict__["_index"] = got
        return got[1]  # type: ignore[no-any-return]

    def build(self, arch: str, shape: DatasetShape | int | None = None) -> nn.Module:
        from nasfilter.spaces.nb101.nb101_torch import NB101Network

        sh = self.shape(shape)
        return NB101Network(self.parse(arch), sh.num_classes, in_channels=sh.channels)


def canonical_identity(text: str) -> str:
    return format_cell(parse_cell(text))


__all__ = [
    "FEATURES",
    "MAX_EDGES",
    "NB101",
    "canonical_identity",
    "check_cell",
    "parse_cell",
    "spec_costs",
    "spec_of",
]
