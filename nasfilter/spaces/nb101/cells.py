"""NAS-Bench-101 cells: identity, pruning, canonical form, the benchmark's module hash.

A cell is a DAG of ``n`` vertices (2 <= n <= 7): vertex 0 is the input, vertex ``n-1``
the output, and every interior vertex carries one of three operations. Edges go from a
lower to a higher vertex number, there are at most 9 of them, and every vertex lies on a
path from the input to the output (NAS-Bench-101 prunes the others).

A cell is stored as :class:`Cell` ``(n, bits, ops)``:

- ``bits``: the adjacency as the integer NAS-Bench-101's generator iterates over
  (``nasbench/lib/graph_util.py`` ``gen_is_edge_fn``): edge ``i -> j`` is bit
  ``i + j (j - 1) / 2``;
- ``ops``: the operation of vertices ``1 .. n-2`` as indices into :data:`OPS`, the
  benchmark's ``available_ops`` order (its labels 0, 1, 2; input is -1, output -2).

**Canonical form.** Of all the vertex orders of a cell that keep the edges pointing
forward, the canonical one has the smallest ``bits``; among those, the smallest ``ops``
(compared as a tuple, vertex 1 first). This is exactly the representative
NAS-Bench-101's generator kept for each isomorphism class (it walks ``bits`` upward and
the labelings in ``itertools.product`` order and keeps the first graph of each hash), so
the canonical form is the matrix and operations the benchmark itself stores and returns.

**Identity notation.** One token per vertex, in canonical order, joined by ``|``: an
interior vertex is ``op~sources``, the output is ``out~sources``, and ``sources`` are the
vertex numbers feeding it joined by ``+`` (0 is the input; interior vertices are numbered
1, 2, ... in the order listed). Operations are written ``conv3x3``, ``conv1x1``,
``maxpool3x3``. Example (the cell stored first in the benchmark's files)::

    conv3x3~0|maxpool3x3~1|conv3x3~2|conv3x3~0|conv1x1~0+3+4|out~2+5

reads: vertex 1 = conv3x3 of the input, vertex 2 = maxpool of 1, ..., vertex 5 = conv1x1
of the sum of the input (projected), 3 and 4, and the output concatenates 2 and 5. The
smallest cell, the input projected straight to the output, is ``out~0``.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Sequence
from functools import lru_cache
from typing import Any, NamedTuple

from nasfilter.errors import InvalidArchitectureError

#: NAS-Bench-101's operations in its ``available_ops`` order (label = index).
OPS: tuple[str, ...] = ("conv3x3-bn-relu", "conv1x1-bn-relu", "maxpool3x3")
#: Their names in nasfilter's identity notation.
SHORT: tuple[str, ...] = ("conv3x3", "conv1x1", "maxpool3x3")
INPUT, OUTPUT = "input", "output"
MAX_VERTICES = 7
MAX_EDGES = 9
INPUT_LABEL, OUTPUT_LABEL = -1, -2

_OP_OF_NAME: dict[str, int] = {
    **{s: i for i, s in enumerate(SHORT)},
    **{s: i for i, s in enumerate(OPS)},
}
HINT = (
    "Expected tokens 'op~sources' joined by '|', ending with 'out~sources', e.g. "
    "conv3x3~0|maxpool3x3~1|out~0+2; ops: conv3x3, conv1x1, maxpool3x3; sources: earlier "
    "vertex numbers joined by '+' (0 = input). Also accepted: a JSON spec "
    '{"matrix": [[...]], "ops": [...]} or a 32-hex NAS-Bench-101 hash.'
)


class Cell(NamedTuple):
    """A cell: ``n`` vertices, adjacency ``bits`` (generator bit order), interior ``ops``."""

    n: int
    bits: int
    ops: tuple[int, ...]


def bit(i: int, j: int) -> int:
    """The bit of edge ``i -> j`` (i < j) in NAS-Bench-101's generator order."""
    return i + j * (j - 1) // 2


def edges_of(n: int, bits: int) -> list[tuple[int, int]]:
    """The edges ``(i, j)`` of ``bits`` on ``n`` vertices, by target then source."""
    return [(i, j) for j in range(1, n) for i in range(j) if bits >> bit(i, j) & 1]


def bits_of(edges: Sequence[tuple[int, int]]) -> int:
    out = 0
    for i, j in edges:
        out |= 1 << bit(i, j)
    return out


def matrix_of(cell: Cell) -> list[list[int]]:
    """The cell's ``n x n`` upper-triangular 0/1 adjacency matrix."""
    n = cell.n
    m = [[0] * n for _ in range(n)]
    for i, j in edges_of(n, cell.bits):
        m[i][j] = 1
    return m


def ops_of(cell: Cell) -> list[str]:
    """The benchmark's operation list: ``['input', ..., 'output']``."""
    return [INPUT, *(OPS[o] for o in cell.ops), OUTPUT]


def labels_of(cell: Cell) -> list[int]:
    """The benchmark's integer labeling: -1, the op indices, -2."""
    return [INPUT_LABEL, *cell.ops, OUTPUT_LABEL]


def ops_code(ops: Sequence[int]) -> int:
    """The ops as a base-3 number, vertex 1 most significant (the generator's order)."""
    code = 0
    for o in ops:
        code = code * 3 + o
    return code


def ops_from_code(code: int, count: int) -> tuple[int, ...]:
    out = []
    for _ in range(count):
        code, o = divmod(code, 3)
        out.append(o)
    return tuple(reversed(out))


# -- packed keys: one integer per cell, ordered like the enumeration ---------------------
# key = n << 29 | bits << 8 | ops_code   (n <= 7, bits < 2**21, ops_code < 3**5 = 243)


def pack(cell: Cell) -> int:
    return (cell.n << 29) | (cell.bits << 8) | ops_code(cell.ops)


_OPS_OF_CODE: tuple[tuple[tuple[int, ...], ...], ...] = tuple(
    tuple(ops_from_code(code, max(n - 2, 0)) for code in range(3 ** max(n - 2, 0)))
    for n in range(MAX_VERTICES + 1)
)


def unpack(key: int) -> Cell:
    key = int(key)
    n = key >> 29
    return Cell(n, (key >> 8) & 0x1FFFFF, _OPS_OF_CODE[n][key & 0xFF])


# -- canonical form ------------------------------------------------------------------------


@lru_cache(maxsize=8)
def _perms(n: int) -> tuple[tuple[int, ...], ...]:
    """Every permutation of the interior vertices of an n-vertex cell (input and
    output fixed), as ``p`` with ``p[v]`` = the new number of vertex ``v``."""
    inner = range(1, n - 1)
    return tuple((0, *p, n - 1) for p in itertools.permutations(inner))


def canonical_cell(n: int, edges: Sequence[tuple[int, int]], ops: Sequence[int]) -> Cell:
    """The canonical form of a (pruned, valid) cell given in any vertex order.

    Tries every relabeling of the interior vertices that keeps all edges forward and
    keeps the smallest ``bits``, then the smallest ``ops`` among those.
    """
    best_bits = -1
    best_ops: tuple[int, ...] = ()
    for p in _perms(n):
        b = 0
        for i, j in edges:
            pi, pj = p[i], p[j]
            if pi >= pj:
                break
            b |= 1 << (pi + pj * (pj - 1) // 2)
        else:
            if best_bits != -1 and b > best_bits:
                continue
            new = [0] * (n - 2)
            for v in range(1, n - 1):
                new[p[v] - 1] = ops[v - 1]
            t = tuple(new)
            if b < best_bits or best_bits == -1 or t < best_ops:
                best_bits, best_ops = b, t
    if best_bits == -1:  # pragma: no cover - callers pass forward edges
        raise InvalidArchitectureError("The cell has a cycle.", HINT)
    return Cell(n, best_bits, best_ops)


@lru_cache(maxsize=16384)
def _graph_info(n: int, bits: int) -> tuple[tuple[int, ...], ...] | None:
    """The automorphisms of a graph that is canonical (min ``bits`` over its forward
    relabelings), as permutations of the interior positions; None when another vertex
    order of the graph has smaller ``bits``."""
    edges = edges_of(n, bits)
    autos = []
    for p in _perms(n):
        b = 0
        for i, j in edges:
            pi, pj = p[i], p[j]
            if pi >= pj:
                break
            b |= 1 << (pi + pj * (pj - 1) // 2)
        else:
            if b < bits:
                return None
            if b == bits:
                autos.append(tuple(p[v] - 1 for v in range(1, n - 1)))
    return tuple(autos)


def is_canonical(cell: Cell) -> bool:
    """Whether ``cell`` is in canonical form (its graph has the smallest ``bits`` of its
    vertex orders, and no automorphism of the graph gives smaller ``ops``)."""
    autos = _graph_info(cell.n, cell.bits)
    if autos is None:
        return False
    ops = cell.ops
    for a in autos:
        new = [0] * len(ops)
        for v, target in enumerate(a):
            new[target] = ops[v]
        if tuple(new) < ops:
            return False
    return True


def canonicalize(cell: Cell) -> Cell:
    return canonical_cell(cell.n, edges_of(cell.n, cell.bits), cell.ops)


# -- validity and pruning ------------------------------------------------------------------


def check_cell(n: int, edges: Sequence[tuple[int, int]], what: str) -> None:
    """Raise InvalidArchitectureError unless every vertex is on an input -> output path
    and the cell is within the space (<= 7 vertices, <= 9 edges)."""
    if n > MAX_VERTICES:
        raise InvalidArchitectureError(
            f"{what} has {n} vertices; NAS-Bench-101 allows at most {MAX_VERTICES} "
            "(input and output included).",
            HINT,
        )
    if len(edges) > MAX_EDGES:
        raise InvalidArchitectureError(
            f"{what} has {len(edges)} edges; NAS-Bench-101 allows at most {MAX_EDGES}.", HINT
        )
    has_out = {i for i, _ in edges}
    has_in = {j for _, j in edges}
    for v in range(1, n - 1):
        if v not in has_out:
            raise InvalidArchitectureError(
                f"{what}: vertex {v} feeds no later vertex; every vertex must lie on a path "
                "from the input to the output.",
                HINT,
            )
        if v not in has_in:  # pragma: no cover - the notation gives every vertex sources
            raise InvalidArchitectureError(f"{what}: vertex {v} has no input.", HINT)
    if n - 1 not in has_in:
        raise InvalidArchitectureError(f"{what}: the output has no input.", HINT)


def prune(matrix: Sequence[Sequence[int]]) -> list[int] | None:
    """The vertices NAS-Bench-101's ``ModelSpec`` keeps (``model_spec.py`` ``_prune``):
    those reachable from the input and reaching the output, in order; None when the
    input does not reach the output (the benchmark's invalid spec)."""
    n = len(matrix)
    fwd = {0}
    stack = [0]
    while stack:
        top = stack.pop()
        for v in range(top + 1, n):
            if matrix[top][v] and v not in fwd:
                fwd.add(v)
                stack.append(v)
    back = {n - 1}
    stack = [n - 1]
    while stack:
        top = stack.pop()
        for v in range(top):
            if matrix[v][top] and v not in back:
                back.add(v)
                stack.append(v)
    keep = sorted(fwd & back)
    return keep if len(keep) >= 2 else None


# -- identity notation ---------------------------------------------------------------------


@lru_cache(maxsize=4096)
def _templates(n: int, bits: int) -> tuple[tuple[str, ...], str]:
    """The '~sources' suffix of each interior vertex and the output token of a graph."""
    sources: list[list[int]] = [[] for _ in range(n)]
    for i, j in edges_of(n, bits):
        sources[j].append(i)
    suffixes = tuple("~" + "+".join(map(str, sources[v])) for v in range(1, n - 1))
    return suffixes, "out~" + "+".join(map(str, sources[n - 1]))


def format_cell(cell: Cell) -> str:
    """The identity string of a cell (in the vertex order given: pass a canonical cell)."""
    suffixes, out = _templates(cell.n, cell.bits)
    tokens = [SHORT[o] + s for o, s in zip(cell.ops, suffixes, strict=True)]
    tokens.append(out)
    return "|".join(tokens)


#: The operation names of every ops code, per vertex count (``_OPS_OF_CODE`` as names).
_NAMES_OF_CODE: tuple[tuple[tuple[str, ...], ...], ...] = tuple(
    tuple(tuple(SHORT[o] for o in ops) for ops in codes) for codes in _OPS_OF_CODE
)


def format_keys(keys: Sequence[int] | Any) -> list[str]:
    """The identity of each packed key (``format_cell(unpack(key))`` for each, about five
    times faster on runs of keys of one graph, as the enumeration lists them): one
    ``%``-template per graph, filled with the operation names of each key."""
    out: list[str] = []
    append = out.append
    graph = -1
    template = ""
    names: tuple[tuple[str, ...], ...] = ()
    for key in keys.tolist() if hasattr(keys, "tolist") else keys:
        key = int(key)
        if key >> 8 != graph:
            graph = key >> 8
            n = key >> 29
            suffixes, last = _templates(n, (key >> 8) & 0x1FFFFF)
            template = "|".join([*("%s" + s for s in suffixes), last])
            names = _NAMES_OF_CODE[n]
        append(template % names[key & 0xFF])
    return out


_SOURCE = {str(i): i for i in range(MAX_VERTICES)}


def _graph_of_sources(sources: tuple[str, ...]) -> tuple[int, int] | None:
    """(n, bits) of the '~sources' parts of an identity's tokens (the output's last), or
    None when they do not describe a valid cell graph."""
    n = len(sources) + 1
    if n > MAX_VERTICES:
        return None
    bits = 0
    fed = 0  # vertices with an out-edge
    for v, srcs in enumerate(sources, start=1):
        if not srcs:
            return None
        base = v * (v - 1) // 2
        for s in srcs.split("+"):
            i = _SOURCE.get(s)
            if i is None or i >= v:
                return None
            b = 1 << (base + i)
            if bits & b:
                return None
            bits |= b
            fed |= 1 << i
    if fed != (1 << (n - 1)) - 1 or bits.bit_count() > MAX_EDGES:
        return None
    return n, bits


#: (n, bits) by the tuple of source lists of an identity: a cell's graph is parsed once
_GRAPHS: dict[tuple[str, ...], tuple[int, int] | None] = {}


def fast_cell(text: str) -> Cell | None:
    """The cell of a well-formed identity (any forward vertex order) without building
    error messages, or None when ``text`` is anything else (then ``parse_notation``
    says what is wrong)."""
    tokens = text.split("|")
    ops = []
    sources = []
    for tok in tokens:
        name, _, srcs = tok.partition("~")
        op = _OP_OF_NAME.get(name)
        if op is None:
            break
        ops.append(op)
        sources.append(srcs)
    else:
        return None  # no output token
    if len(ops) != len(tokens) - 1 or name != "out":
        return None
    sources.append(srcs)
    key = tuple(sources)
    if key in _GRAPHS:
        graph = _GRAPHS[key]
    else:
        graph = _graph_of_sources(key)
        if len(_GRAPHS) < 100_000:
            _GRAPHS[key] = graph
    if graph is None:
        return None
    return Cell(graph[0], graph[1], tuple(ops))


@lru_cache(maxsize=8)
def _masks(n: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Per vertex: the bits of its out-edges and of its in-edges."""
    rows = tuple(sum(1 << bit(v, j) for j in range(v + 1, n)) for v in range(n))
    cols = tuple(sum(1 << bit(i, v) for i in range(v)) for v in range(n))
    return rows, cols


def valid_graph(n: int, bits: int) -> bool:
    """Every vertex on an input-output path (each but the output has an out-edge, each
    but the input an in-edge), at most 7 vertices and 9 edges."""
    if not 2 <= n <= MAX_VERTICES or bits.bit_count() > MAX_EDGES:
        return False
    rows, cols = _masks(n)
    return all(bits & rows[v] for v in range(n - 1)) and all(bits & cols[v] for v in range(1, n))


def fast_spec(adjacency: str, operations: str) -> Cell | None:
    """The cell of a pruned spec in the benchmark files' string form (row-major 0/1
    matrix, comma-joined op names), in the order given; None when the spec is anything
    else (unpruned, malformed: then ``parse_spec`` says what)."""
    names = operations.split(",")
    n = len(names)
    if n * n != len(adjacency) or n < 2 or names[0] != INPUT or names[-1] != OUTPUT:
        return None
    ops = []
    for name in names[1:-1]:
        op = _OP_OF_NAME.get(name)
        if op is None:
            return None
        ops.append(op)
    bits = 0
    for i in range(n):
        row = adjacency[i * n : i * n + n]
        if "1" in row[: i + 1]:
            return None
        for j in range(i + 1, n):
            c = row[j]
            if c == "1":
                bits |= 1 << (i + j * (j - 1) // 2)
            elif c != "0":
                return None
    if not valid_graph(n, bits):
        return None
    return Cell(n, bits, tuple(ops))


def parse_notation(text: str) -> tuple[int, list[tuple[int, int]], list[int]]:
    """Parse the identity notation (any forward vertex order) into (n, edges, ops);
    validates the cell (raises InvalidArchitectureError)."""
    what = f"NAS-Bench-101 cell {text!r}"
    tokens = text.split("|")
    n = len(tokens) + 1
    edges: list[tuple[int, int]] = []
    ops: list[int] = []
    for v, tok in enumerate(tokens, start=1):
        name, sep, srcs = tok.partition("~")
        last = v == n - 1
        if not sep or not srcs:
            raise InvalidArchitectureError(
                f"Malformed {what}: token {tok!r} is not 'op~sources'.", HINT
            )
        if last:
            if name != "out":
                raise InvalidArchitectureError(
                    f"Malformed {what}: the last token must be 'out~sources', not {tok!r}.", HINT
                )
        else:
            op = _OP_OF_NAME.get(name)
            if op is None:
                raise InvalidArchitectureError(
                    f"Malformed {what}: unknown operation {name!r} (vertex {v}).", HINT
                )
            ops.append(op)
        seen: set[int] = set()
        for s in srcs.split("+"):
            if not s.isdigit() or not s.isascii():
                raise InvalidArchitectureError(
                    f"Malformed {what}: source {s!r} of vertex {v} is not a vertex number.", HINT
                )
            src = int(s)
            if src >= v:
                raise InvalidArchitectureError(
                    f"Malformed {what}: vertex {v} reads from vertex {src}; sources must be "
                    "earlier vertices.",
                    HINT,
                )
            if src in seen:
                raise InvalidArchitectureError(
                    f"Malformed {what}: vertex {v} lists source {src} twice.", HINT
                )
            seen.add(src)
            edges.append((src, v))
    check_cell(n, edges, what)  # sizes: after the tokens, whose errors say more
    return n, edges, ops


def parse_spec(matrix: Any, ops: Any, what: str) -> tuple[int, list[tuple[int, int]], list[int]]:
    """A NAS-Bench-101 ``ModelSpec`` (matrix and op names, unpruned) as a pruned cell
    (n, edges, ops), with the benchmark's own checks; raises InvalidArchitectureError."""
    hint = (
        'A spec is {"matrix": n x n upper-triangular 0/1 lists, "ops": n names, '
        "'input' first, 'output' last, the others conv3x3-bn-relu, conv1x1-bn-relu or "
        "maxpool3x3}."
    )
    if not isinstance(matrix, list) or not matrix or not all(isinstance(r, list) for r in matrix):
        raise InvalidArchitectureError(f"{what}: 'matrix' must be a list of rows.", hint)
    n = len(matrix)
    if any(len(r) != n for r in matrix):
        raise InvalidArchitectureError(f"{what}: the matrix is not square.", hint)
    if not isinstance(ops, list) or len(ops) != n:
        raise InvalidArchitectureError(
            f"{what}: 'ops' must list {n} operations, one per matrix row.", hint
        )
    if n > 32:
        raise InvalidArchitectureError(f"{what}: {n} vertices is far outside the space.", hint)
    for i, row in enumerate(matrix):
        for j, x in enumerate(row):
            if x not in (0, 1) or isinstance(x, float):
                raise InvalidArchitectureError(
                    f"{what}: matrix entry [{i}][{j}] is {x!r}, not 0 or 1.", hint
                )
            if x and j <= i:
                raise InvalidArchitectureError(
                    f"{what}: the matrix is not upper triangular (entry [{i}][{j}]).", hint
                )
    if ops[0] != INPUT or ops[-1] != OUTPUT:
        raise InvalidArchitectureError(
            f"{what}: the first operation must be 'input' and the last 'output'.", hint
        )
    keep = prune(matrix)
    if keep is None:
        raise InvalidArchitectureError(f"{what}: the input is not connected to the output.", hint)
    labels = []
    for v in keep[1:-1]:
        op = ops[v]
        code = _OP_OF_NAME.get(op) if isinstance(op, str) else None
        if code is None:
            raise InvalidArchitectureError(f"{what}: unknown operation {op!r} at vertex {v}.", hint)
        labels.append(code)
    pos = {v: k for k, v in enumerate(keep)}
    edges = [(pos[i], pos[j]) for j in keep for i in keep if i < j and matrix[i][j]]
    check_cell(len(keep), edges, what + " (pruned)")
    return len(keep), edges, labels


def parse_json(text: str) -> tuple[int, list[tuple[int, int]], list[int]]:
    """A JSON spec ``{"matrix": [[...]], "ops": [...]}`` (``"operations"`` also
    accepted), or ``[matrix, ops]``."""
    what = "NAS-Bench-101 spec"
    try:
        obj = json.loads(text)
    except json.JSONDecodeError as e:
        raise InvalidArchitectureError(f"{what} is not valid JSON: {e.msg}.", HINT) from None
    if isinstance(obj, dict):
        matrix = obj.get("matrix", obj.get("module_adjacency"))
        ops = obj.get("ops", obj.get("operations", obj.get("module_operations")))
    elif isinstance(obj, list) and len(obj) == 2:
        matrix, ops = obj
    else:
        raise InvalidArchitectureError(f"{what} must be an object with 'matrix' and 'ops'.", HINT)
    return parse_spec(matrix, ops, what)


def is_hash(text: str) -> bool:
    return len(text) == 32 and all(c in "0123456789abcdef" for c in text.lower())


# -- NAS-Bench-101's module hash -----------------------------------------------------------


try:  # CPython's own MD5 is faster than OpenSSL's for these short strings
    from _md5 import md5 as _md5
except ImportError:  # pragma: no cover
    _md5 = hashlib.md5

_FIRST_ROUND: dict[tuple[int, int, int], str] = {}


def hash_module(n: int, edges: Sequence[tuple[int, int]], labels: Sequence[int]) -> str:
    """NAS-Bench-101's graph hash (``graph_util.hash_module``): MD5 of each vertex's
    (out-degree, in-degree, label), refined ``n`` times with the sorted hashes of the
    in- and out-neighbours, then the MD5 of the sorted vertex hashes. Invariant under
    isomorphism; the benchmark's key of every cell."""
    ins: list[list[int]] = [[] for _ in range(n)]
    outs: list[list[int]] = [[] for _ in range(n)]
    for i, j in edges:
        outs[i].append(j)
        ins[j].append(i)
    return hash_rounds(ins, outs, labels)


def hash_rounds(ins: list[list[int]], outs: list[list[int]], labels: Sequence[int]) -> str:
    """``hash_module`` given each vertex's in- and out-neighbours."""
    n = len(ins)
    hashes = []
    for v in range(n):
        t = (len(outs[v]), len(ins[v]), labels[v])
        h = _FIRST_ROUND.get(t)
        if h is None:
            h = _FIRST_ROUND[t] = _md5(str(t).encode()).hexdigest()
        hashes.append(h)
    for _ in range(n):
        hashes = [
            _md5(
                (
                    "".join(sorted([hashes[w] for w in ins[v]]))
                    + "|"
                    + "".join(sorted([hashes[w] for w in outs[v]]))
                    + "|"
                    + hashes[v]
                ).encode()
            ).hexdigest()
            for v in range(n)
        ]
    return _md5(str(sorted(hashes)).encode()).hexdigest()


def cell_hash(cell: Cell) -> str:
    return hash_module(cell.n, edges_of(cell.n, cell.bits), labels_of(cell))
