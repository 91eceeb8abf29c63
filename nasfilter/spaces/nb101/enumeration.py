"""Every NAS-Bench-101 cell, enumerated in pure numpy, cached on disk.

**Algorithm.** For each vertex count ``n`` = 2..7, every adjacency ``bits`` (the
``n(n-1)/2`` upper-triangular entries, the generator's bit order) is tested at once with
integer masks: every vertex but the output has an out-edge, every vertex but the input
an in-edge (``graph_util.is_full_dag``), at most 9 edges. The valid graphs are then
reduced to canonical ones: for each of the ``(n-2)!`` relabelings of the interior
vertices, the relabeled ``bits`` of every graph is computed with bit operations on the
whole array, and a graph is canonical when no forward relabeling gives a smaller
``bits``. For each canonical graph, the relabelings that map it onto itself (its
automorphisms) act on the ``3**(n-2)`` operation labelings; a labeling is kept when no
automorphism gives a smaller one. What is kept is exactly one cell per isomorphism class,
in canonical form (see ``cells.py``): 423,624 of them.

**Order.** Cells are listed by vertex count, then ``bits``, then operations (base 3,
vertex 1 most significant): the order in which NAS-Bench-101's own generator
(``nasbench/scripts/generate_graphs.py``) first meets each class. ``unrank(i)`` is the
i-th cell of that list; each cell is stored as one packed 32-bit key
(``cells.pack``), so ``rank`` is a binary search.

**Cache.** The list is computed once and written to ``nb101_cells.v{VERSION}.bin`` in the
cache directory (``$NASFILTER_CACHE``, else ``$XDG_CACHE_HOME/nasfilter``, else
``~/.cache/nasfilter``): a header line (format name, version, count, SHA-256 of the
payload) and the keys as little-endian uint32. A file whose header, size or checksum does
not match is rebuilt, with one line on stderr saying why. The optional hash index
(``nb101_hashes.v{VERSION}.bin``, each cell's NAS-Bench-101 hash in enumeration order,
16 bytes each) is built the first time a hash is looked up: it takes an MD5 pass over
every cell (about a minute).
"""

from __future__ import annotations

import hashlib
import itertools
import os
import sys
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from nasfilter.spaces.nb101.cells import (
    MAX_EDGES,
    MAX_VERTICES,
    Cell,
    bit,
    edges_of,
    format_keys,
    labels_of,
    pack,
    unpack,
)

#: Bump when the enumeration, its order or the file layout changes.
VERSION = 1
SIZE = 423_624
CELLS_FILE = f"nb101_cells.v{VERSION}.bin"
HASHES_FILE = f"nb101_hashes.v{VERSION}.bin"
_MAGIC_CELLS = "nasfilter-nb101-cells"
_MAGIC_HASHES = "nasfilter-nb101-hashes"
ENV_VAR = "NASFILTER_CACHE"


def notice(message: str) -> None:
    """One line on stderr (replaceable, e.g. by a CLI that renders its own notices)."""
    print(f"nasfilter: {message}", file=sys.stderr, flush=True)


def cache_dir() -> Path:
    """``$NASFILTER_CACHE``, else ``$XDG_CACHE_HOME/nasfilter``, else
    ``~/.cache/nasfilter`` (always absolute, never the working directory)."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return Path(env).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "nasfilter"
    return Path.home().absolute() / ".cache" / "nasfilter"


# -- the enumeration -------------------------------------------------------------------------


def _popcount(x: np.ndarray) -> np.ndarray:
    x = x - ((x >> 1) & 0x55555555)
    x = (x & 0x33333333) + ((x >> 2) & 0x33333333)
    x = (x + (x >> 4)) & 0x0F0F0F0F
    return (x * 0x01010101 & 0xFFFFFFFF) >> 24


def _valid_graphs(n: int, max_edges: int) -> np.ndarray:
    """Every ``bits`` on n vertices with all vertices on an input-output path and at most
    ``max_edges`` edges, ascending (int64)."""
    e = n * (n - 1) // 2
    masks = np.arange(1 << e, dtype=np.int64)
    ok = _popcount(masks) <= max_edges
    for v in range(n):
        row = sum(1 << bit(v, j) for j in range(v + 1, n))
        col = sum(1 << bit(i, v) for i in range(v))
        if v < n - 1:
            ok &= (masks & row) != 0
        if v > 0:
            ok &= (masks & col) != 0
    return masks[ok]


def _relabelings(n: int) -> list[tuple[tuple[int, ...], int, list[tuple[int, int]]]]:
    """Per interior permutation p: (p, the bits of edges p turns backward, [(source bit,
    target bit)] for the edges it keeps forward)."""
    out = []
    for inner in itertools.permutations(range(1, n - 1)):
        p = (0, *inner, n - 1)
        back = 0
        moves = []
        for j in range(1, n):
            for i in range(j):
                pi, pj = p[i], p[j]
                if pi > pj:
                    back |= 1 << bit(i, j)
                else:
                    moves.append((bit(i, j), bit(pi, pj)))
        out.append((p, back, moves))
    return out


def _relabel(masks: np.ndarray, moves: list[tuple[int, int]]) -> np.ndarray:
    out = np.zeros_like(masks)
    for src, dst in moves:
        out |= ((masks >> src) & 1) << dst
    return out


def iter_blocks(
    max_vertices: int = MAX_VERTICES, max_edges: int = MAX_EDGES
) -> Iterator[np.ndarray]:
    """The packed keys of every canonical cell, in enumeration order, one block (numpy
    uint32 array) per canonical graph. ``max_vertices``/``max_edges`` give the smaller
    spaces of the same family (the generator's flags); the default is NAS-Bench-101."""
    for n in range(2, max_vertices + 1):
        graphs = _valid_graphs(n, max_edges)
        if not len(graphs):
            continue
        rels = _relabelings(n)
        # a graph is canonical when no forward relabeling has smaller bits
        canonical = np.ones(len(graphs), dtype=bool)
        images = []
        for _p, back, moves in rels:
            fwd = (graphs & back) == 0
            img = _relabel(graphs, moves)
            canonical &= ~(fwd & (img < graphs))
            images.append((fwd, img))
        k = n - 2
        count = 3**k
        codes = np.arange(count, dtype=np.int64)
        digits = np.zeros((count, k), dtype=np.int64)
        for t in range(k):
            digits[:, t] = (codes // 3 ** (k - 1 - t)) % 3
        weights = np.array([3 ** (k - 1 - t) for t in range(k)], dtype=np.int64)
        # the labeling a relabeling p makes of each labeling: new[p[v]] = old[v]
        label_maps = []
        for p, _back, _moves in rels:
            new = np.empty_like(digits)
            for v in range(1, n - 1):
                new[:, p[v] - 1] = digits[:, v - 1]
            label_maps.append(new @ weights)
        for g in np.flatnonzero(canonical):
            b = int(graphs[g])
            best = codes
            for (fwd, img), lm in zip(images, label_maps, strict=True):
                if fwd[g] and img[g] == b:  # an automorphism
                    best = np.minimum(best, lm)
            kept = codes[best == codes]
            yield ((n << 29) | (b << 8) | kept).astype(np.uint32)


def enumerate_keys(max_vertices: int = MAX_VERTICES, max_edges: int = MAX_EDGES) -> np.ndarray:
    """All packed keys, in order (uint32)."""
    blocks = list(iter_blocks(max_vertices, max_edges))
    return np.concatenate(blocks) if blocks else np.zeros(0, dtype=np.uint32)


# -- the on-disk cache -----------------------------------------------------------------------


def _header(magic: str, count: int, digest: str) -> bytes:
    return f"{magic} v{VERSION} count={count} sha256={digest}\n".encode("ascii")


def _write(path: Path, magic: str, payload: bytes, count: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256(payload).hexdigest()
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(_header(magic, count, digest))
            f.write(payload)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _read(path: Path, magic: str, count: int, itemsize: int) -> tuple[bytes | None, str]:
    """(payload, '') when the file is sound, else (None, why)."""
    try:
        with open(path, "rb") as f:
            head = f.readline(200)
            payload = f.read()
    except (FileNotFoundError, NotADirectoryError):
        return None, "missing"
    except OSError as e:
        return None, f"unreadable ({e.strerror})"
    parts = head.decode("ascii", "replace").split()
    if len(parts) != 4 or parts[0] != magic:
        return None, "not a nasfilter cache file"
    if parts[1] != f"v{VERSION}":
        return None, f"stale (format {parts[1]}, expected v{VERSION})"
    if parts[2] != f"count={count}" or len(payload) != count * itemsize:
        return None, "truncated or of the wrong size"
    if parts[3] != "sha256=" + hashlib.sha256(payload).hexdigest():
        return None, "corrupt (checksum mismatch)"
    return payload, ""


class Table:
    """The enumeration (and, on demand, the hash index) of NAS-Bench-101, from the cache
    in ``directory`` (default :func:`cache_dir`), built there when missing or bad."""

    def __init__(self, directory: Path | None = None, on_notice: Callable[[str], None] = notice):
        self.directory = directory if directory is not None else cache_dir()
        self.on_notice = on_notice
        self.keys = self._load_keys()
        self._hash_hi: np.ndarray | None = None  # sorted first 8 bytes of each hash
        self._hash_order: np.ndarray | None = None  # positions in that order
        self._hashes: np.ndarray | None = None  # (SIZE, 16) uint8, enumeration order
        self._identities: list[str] | None = None

    @property
    def cells_path(self) -> Path:
        return self.directory / CELLS_FILE

    @property
    def hashes_path(self) -> Path:
        return self.directory / HASHES_FILE

    def _load_keys(self) -> np.ndarray:
        payload, why = _read(self.cells_path, _MAGIC_CELLS, SIZE, 4)
        if payload is not None:
            return np.frombuffer(payload, dtype="<u4").astype(np.uint32)
        if why != "missing":
            self.on_notice(f"the NAS-Bench-101 cache {self.cells_path} is {why}; rebuilding it.")
        keys = enumerate_keys()
        if len(keys) != SIZE:  # pragma: no cover - the enumeration is fixed
            raise RuntimeError(f"NAS-Bench-101 enumeration gave {len(keys)} cells, not {SIZE}")
        self._save(self.cells_path, _MAGIC_CELLS, keys.astype("<u4").tobytes())
        return keys

    def _save(self, path: Path, magic: str, payload: bytes) -> None:
        """Write a cache file; if the folder is not writable, say so and go on (the
        caller keeps what it computed in memory)."""
        try:
            _write(path, magic, payload, SIZE)
        except OSError as e:
            self.on_notice(
                f"cannot write the NAS-Bench-101 cache {path} ({e.strerror or e}); using it "
                f"from memory this time. Set {ENV_VAR} to a writable folder."
            )

    def __len__(self) -> int:
        return len(self.keys)

    def cell(self, index: int) -> Cell:
        return unpack(int(self.keys[index]))

    def rank(self, cell: Cell) -> int:
        """Position of a canonical cell, or -1 if ``cell`` is not canonical."""
        key = pack(cell)
        i = int(np.searchsorted(self.keys, np.uint32(key)))
        return i if i < len(self.keys) and int(self.keys[i]) == key else -1

    def identities(self) -> list[str]:
        """Every cell's identity, in enumeration order (formatted once, on first use, in
        about half a second; ~50 MB). Callers must not modify the list."""
        if self._identities is None:
            self._identities = format_keys(self.keys)
        return self._identities

    # -- hashes -----------------------------------------------------------------------
    def hashes(self) -> np.ndarray:
        """Every cell's NAS-Bench-101 hash as 16 bytes, enumeration order ((SIZE, 16)
        uint8); built and cached on first use."""
        if self._hashes is None:
            payload, why = _read(self.hashes_path, _MAGIC_HASHES, SIZE, 16)
            if payload is None:
                if why != "missing":
                    self.on_notice(
                        f"the NAS-Bench-101 hash index {self.hashes_path} is {why}; rebuilding it."
                    )
                else:
                    self.on_notice(
                        "building the NAS-Bench-101 hash index (once, about a minute): "
                        f"{self.hashes_path}"
                    )
                payload = compute_hashes(self.keys)
                self._save(self.hashes_path, _MAGIC_HASHES, payload)
            self._hashes = np.frombuffer(payload, dtype=np.uint8).reshape(-1, 16)
        return self._hashes

    def index_of_hash(self, hexhash: str) -> int:
        """Position of the cell whose NAS-Bench-101 hash is ``hexhash``, or -1."""
        if self._hash_hi is None:
            h = self.hashes()
            hi = h[:, :8].copy().view(">u8").ravel()
            order = np.argsort(hi, kind="stable")
            self._hash_hi, self._hash_order = hi[order], order
        assert self._hash_order is not None
        raw = bytes.fromhex(hexhash)
        target = np.frombuffer(raw[:8], dtype=">u8")[0]
        i = int(np.searchsorted(self._hash_hi, target))
        while i < len(self._hash_hi) and self._hash_hi[i] == target:
            pos = int(self._hash_order[i])
            if bytes(self.hashes()[pos]) == raw:
                return pos
            i += 1
        return -1


def compute_hashes(keys: np.ndarray) -> bytes:
    """The NAS-Bench-101 hash of every packed key, as concatenated 16-byte digests
    (``cells.hash_module``, with the per-graph adjacency lists and the first round's
    digests shared by consecutive keys)."""
    from nasfilter.spaces.nb101.cells import hash_rounds

    out = bytearray()
    prev_graph = -1
    ins: list[list[int]] = []
    outs: list[list[int]] = []
    for key in keys.tolist():
        graph = key >> 8
        cell = unpack(key)
        if graph != prev_graph:
            prev_graph = graph
            ins = [[] for _ in range(cell.n)]
            outs = [[] for _ in range(cell.n)]
            for i, j in edges_of(cell.n, cell.bits):
                outs[i].append(j)
                ins[j].append(i)
        out += bytes.fromhex(hash_rounds(ins, outs, labels_of(cell)))
    return bytes(out)


_TABLES: dict[Path, Table] = {}
_DEFAULT: list[tuple[tuple[str, str], Table]] = []  # ((env values), table) of the default dir
_LOCK = threading.Lock()


def table(directory: Path | None = None) -> Table:
    """The process-wide table for ``directory`` (default: :func:`cache_dir`, read when
    called, so ``$NASFILTER_CACHE`` set later is honoured)."""
    if directory is None:
        env = (os.environ.get(ENV_VAR, ""), os.environ.get("XDG_CACHE_HOME", ""))
        if _DEFAULT and _DEFAULT[0][0] == env:
            return _DEFAULT[0][1]
        t = table(cache_dir())
        _DEFAULT[:] = [(env, t)]
        return t
    with _LOCK:
        found = _TABLES.get(directory)
        if found is None:
            found = _TABLES[directory] = Table(directory)
        return found
