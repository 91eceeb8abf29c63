"""The NAS-Bench-101 space: count, canonical form, official hashes, isomorphism, costs
against the benchmark and the built network, enumeration cache, mutation.

References written here from the NAS-Bench-101 authors' code (google-research/nasbench,
Apache-2.0): ``ref_hash_module`` from ``nasbench/lib/graph_util.py`` ``hash_module``;
``ref_generator`` from ``nasbench/scripts/generate_graphs.py`` (with ``gen_is_edge_fn``
and ``is_full_dag``); the vertex-channel cases from ``nasbench/tests/model_builder_test.py``.
"""

from __future__ import annotations

import csv
import hashlib
import itertools
import json
import os
import random
import time
from importlib import resources
from pathlib import Path

import numpy as np
import pytest

from nasfilter.datasets import get_shape
from nasfilter.errors import InvalidArchitectureError
from nasfilter.spaces import get_space
from nasfilter.spaces.nb101 import FEATURES, enumeration, spec_costs
from nasfilter.spaces.nb101.cells import (
    OPS,
    Cell,
    bits_of,
    format_cell,
    format_keys,
    is_canonical,
    pack,
    parse_spec,
    unpack,
)
from nasfilter.spaces.nb101.costs import vertex_channels

SP = get_space("nb101")
CIFAR = get_shape("cifar10")

# The first record of the benchmark's files (NNI's NAS-Bench-101 example, nni docs
# BenchmarksExample.ipynb; also the first entry of the dataset dumps): hash, stored spec
# and trainable_parameters 8,555,530 ("parameters": 8.55553 M).
FIRST_HASH = "00005c142e6f48ac74fdcf73e3439874"
FIRST_MATRIX = [
    [0, 1, 0, 0, 1, 1, 0],
    [0, 0, 1, 0, 0, 0, 0],
    [0, 0, 0, 1, 0, 0, 1],
    [0, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 1, 0],
    [0, 0, 0, 0, 0, 0, 1],
    [0, 0, 0, 0, 0, 0, 0],
]
FIRST_OPS = [
    "input",
    "conv3x3-bn-relu",
    "maxpool3x3",
    "conv3x3-bn-relu",
    "conv3x3-bn-relu",
    "conv1x1-bn-relu",
    "output",
]
FIRST_ID = "conv3x3~0|maxpool3x3~1|conv3x3~2|conv3x3~0|conv1x1~0+3+4|out~2+5"

# The README/colab's Inception-like query and what the benchmark returned for it
# (google-research/nasbench NASBench.ipynb, "Basic usage"): the stored matrix is the
# same cell in the benchmark's own vertex order; trainable_parameters 2,694,282.
INCEPTION_QUERY = {
    "matrix": [
        [0, 1, 1, 1, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    "ops": [
        "input",
        "conv1x1-bn-relu",
        "conv3x3-bn-relu",
        "conv3x3-bn-relu",
        "conv3x3-bn-relu",
        "maxpool3x3",
        "output",
    ],
}
INCEPTION_STORED = {
    "matrix": [
        [0, 1, 1, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 1, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 0, 0],
    ],
    "ops": [
        "input",
        "conv3x3-bn-relu",
        "conv1x1-bn-relu",
        "maxpool3x3",
        "conv3x3-bn-relu",
        "conv3x3-bn-relu",
        "output",
    ],
}


# -- references from the authors' definitions ----------------------------------------------


def ref_hash_module(matrix: np.ndarray, labeling: list[int]) -> str:
    """graph_util.hash_module, from its definition."""
    vertices = matrix.shape[0]
    in_edges = np.sum(matrix, axis=0).tolist()
    out_edges = np.sum(matrix, axis=1).tolist()
    hashes = [
        hashlib.md5(str(h).encode("utf-8")).hexdigest()
        for h in zip(out_edges, in_edges, labeling, strict=True)
    ]
    for _ in range(vertices):
        new = []
        for v in range(vertices):
            ins = [hashes[w] for w in range(vertices) if matrix[w, v]]
            outs = [hashes[w] for w in range(vertices) if matrix[v, w]]
            new.append(
                hashlib.md5(
                    ("".join(sorted(ins)) + "|" + "".join(sorted(outs)) + "|" + hashes[v]).encode(
                        "utf-8"
                    )
                ).hexdigest()
            )
        hashes = new
    return hashlib.md5(str(sorted(hashes)).encode("utf-8")).hexdigest()


def ref_generator(max_vertices: int, max_edges: int, num_ops: int = 3) -> list[tuple]:
    """generate_graphs.py: every bitmask per vertex count, kept when full DAG and within
    the edge limit, every labeling, the first graph of each hash kept (in order)."""
    buckets: dict[str, tuple] = {}
    for vertices in range(2, max_vertices + 1):
        for bits in range(2 ** (vertices * (vertices - 1) // 2)):
            m = np.zeros((vertices, vertices), dtype=np.int8)
            for y in range(vertices):
                for x in range(y):
                    if (bits >> (x + y * (y - 1) // 2)) % 2 == 1:
                        m[x, y] = 1
            rows_bad = np.any(np.all(m[: vertices - 1, :] == 0, axis=1))
            cols_bad = np.any(np.all(m[:, 1:] == 0, axis=0))
            if rows_bad or cols_bad or m.sum() > max_edges:
                continue
            for labeling in itertools.product(*[range(num_ops) for _ in range(vertices - 2)]):
                lab = [-1, *labeling, -2]
                h = ref_hash_module(m, lab)
                if h not in buckets:
                    buckets[h] = (vertices, bits, tuple(labeling))
    return list(buckets.values())


def _random_relabel(matrix: list[list[int]], ops: list[str], rng: random.Random):  # type: ignore[no-untyped-def]
    """The same cell with its interior vertices renumbered in a random topological order."""
    n = len(matrix)
    order = [0]
    placed = {0}
    while len(order) < n - 1:
        cands = [
            v
            for v in range(1, n - 1)
            if v not in placed and all(not matrix[u][v] or u in placed for u in range(n))
        ]
        v = rng.choice(cands)
        order.append(v)
        placed.add(v)
    order.append(n - 1)
    new_of = {old: new for new, old in enumerate(order)}
    m2 = [[0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            if matrix[i][j]:
                m2[new_of[i]][new_of[j]] = 1
    ops2 = [ops[old] for old in order]
    return m2, ops2


# -- the space's size and order ------------------------------------------------------------


def test_the_space_has_exactly_423624_cells() -> None:
    """The whole enumeration, computed afresh (about a second), and the cached table the
    session built: both 423,624 distinct cells, in increasing key order."""
    t = time.perf_counter()
    keys = enumeration.enumerate_keys()
    took = time.perf_counter() - t
    assert len(keys) == 423_624 == SP.size
    assert np.all(np.diff(keys.astype(np.int64)) > 0)
    assert np.array_equal(enumeration.table().keys, keys)
    assert took < 60, took


def test_small_spaces_equal_the_original_generator_and_its_representatives() -> None:
    """Up to 5 vertices (any edge count) and up to 5 vertices / 4 edges: the same cells,
    in the same order, as the generator's first graph of each hash. So the canonical
    form is the benchmark's stored representative."""
    ref = ref_generator(5, 9)
    assert len(ref) == 2532
    for max_v, max_e in ((5, 9), (5, 4), (4, 9)):
        # with an edge cap every isomorphic version has the same edge count, so the
        # capped generator keeps exactly the uncapped one's representatives within it
        want = [pack(Cell(n, b, ops)) for n, b, ops in ref if n <= max_v and b.bit_count() <= max_e]
        assert enumeration.enumerate_keys(max_v, max_e).tolist() == want, (max_v, max_e)


def test_rank_unrank_round_trip_and_seeded_sampling() -> None:
    assert SP.unrank(0) == "out~0"
    assert SP.rank("out~0") == 0
    assert SP.unrank(SP.size - 1).count("|") == 5
    rng = np.random.default_rng(3)
    for i in rng.choice(SP.size, 200, replace=False).tolist():
        arch = SP.unrank(i)
        assert SP.rank(arch) == i
        assert SP.canonical(arch) == arch
    a = SP.sample(50, seed=11)
    assert a == SP.sample(50, seed=11) and len(set(a)) == 50
    assert a != SP.sample(50, seed=12)
    with pytest.raises(IndexError):
        SP.unrank(SP.size)
    first = list(itertools.islice(SP.enumerate(), 3))
    assert first == [SP.unrank(0), SP.unrank(1), SP.unrank(2)]


# -- identity, hash, isomorphism -----------------------------------------------------------


def test_official_hash_and_stored_form_of_the_first_record() -> None:
    spec = json.dumps({"matrix": FIRST_MATRIX, "ops": FIRST_OPS})
    assert SP.canonical(spec) == FIRST_ID
    assert SP.hash(FIRST_ID) == FIRST_HASH == SP.hash(spec)
    assert SP.spec(FIRST_ID) == {"matrix": FIRST_MATRIX, "ops": FIRST_OPS}
    assert ref_hash_module(np.array(FIRST_MATRIX), [-1, 0, 2, 0, 0, 1, -2]) == FIRST_HASH
    assert SP.costs(FIRST_ID).params == 8_555_530


def test_canonical_form_is_what_the_benchmark_returns_for_the_readme_query() -> None:
    arch = SP.canonical(json.dumps(INCEPTION_QUERY))
    assert SP.spec(arch) == INCEPTION_STORED
    assert arch == "conv3x3~0|conv1x1~0|maxpool3x3~0|conv3x3~0|conv3x3~4|out~1+2+3+5"
    assert SP.costs(arch).params == 2_694_282
    lab = [-1] + [OPS.index(o) for o in INCEPTION_QUERY["ops"][1:-1]] + [-2]
    assert SP.hash(arch) == ref_hash_module(np.array(INCEPTION_QUERY["matrix"]), lab)


def test_hash_equals_the_reference_on_random_cells_and_is_isomorphism_invariant() -> None:
    rng = random.Random(5)
    for i in np.random.default_rng(5).choice(SP.size, 60, replace=False).tolist():
        arch = SP.unrank(i)
        spec = SP.spec(arch)
        lab = [-1] + [OPS.index(o) for o in spec["ops"][1:-1]] + [-2]
        h = ref_hash_module(np.array(spec["matrix"]), lab)
        assert SP.hash(arch) == h
        for _ in range(3):
            m2, o2 = _random_relabel(spec["matrix"], spec["ops"], rng)
            other = json.dumps({"matrix": m2, "ops": o2})
            assert SP.canonical(other) == arch
            assert SP.hash(other) == h
            # the same relabeling written in the identity notation
            n, edges, labels = parse_spec(m2, o2, "x")
            relabeled = format_cell(Cell(n, bits_of(edges), tuple(labels)))
            assert SP.canonical(relabeled) == arch
            assert is_canonical(SP.parse(relabeled)) and (relabeled == arch) == is_canonical(
                Cell(n, bits_of(edges), tuple(labels))
            )


def test_unpruned_specs_are_pruned_like_the_benchmark() -> None:
    # vertex 5 feeds nothing and vertex 2 is fed by nothing: both pruned
    m = [
        [0, 1, 0, 1, 1, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 1, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 1],
        [0, 0, 0, 0, 0, 1, 1],
        [0, 0, 0, 0, 0, 0, 0],
        [0, 0, 0, 0, 0, 0, 0],
    ]
    ops = ["input", "conv1x1-bn-relu", "maxpool3x3", "conv3x3-bn-relu", "maxpool3x3",
           "conv3x3-bn-relu", "output"]  # fmt: skip
    arch = SP.canonical(json.dumps({"matrix": m, "ops": ops}))
    assert arch.count("|") == 3  # 5 vertices left
    assert SP.canonical(json.dumps([m, ops])) == arch


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [
        # graph_util_test: diamond with its two labels swapped
        ("conv1x1~0|maxpool3x3~0|out~1+2", "maxpool3x3~0|conv1x1~0|out~1+2", True),
        # a chain vs. the same labels in another order along it
        ("conv1x1~0|conv3x3~1|conv3x3~2|out~3", "conv3x3~0|conv3x3~1|conv1x1~2|out~3", False),
        # directed edges matter
        ("conv1x1~0|conv3x3~1|out~0+2", "conv3x3~0|conv1x1~1|out~0+2", False),
        # two symmetric branches
        (
            "conv3x3~0|conv3x3~1|conv1x1~0|conv1x1~3|out~2+4",
            "conv1x1~0|conv1x1~1|conv3x3~0|conv3x3~3|out~2+4",
            True,
        ),  # fmt: skip
    ],
)
def test_isomorphism_cases(a: str, b: str, same: bool) -> None:
    assert (SP.canonical(a) == SP.canonical(b)) is same
    assert (SP.hash(a) == SP.hash(b)) is same


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "Empty"),
        ("conv3x3~0", "last token must be 'out"),
        ("conv5x5~0|out~1", "unknown operation 'conv5x5'"),
        ("conv3x3~1|out~1", "sources must be earlier"),
        ("conv3x3~0|out~0+0", "twice"),
        ("conv3x3~0|conv3x3~0|out~1", "vertex 2 feeds no later vertex"),
        ("conv3x3~0|out~x", "not a vertex number"),
        ("conv3x3|out~1", "not 'op~sources'"),
        (
            "conv3x3~0|conv3x3~0|conv3x3~0|conv3x3~0|conv3x3~0|conv3x3~0|out~1+2+3+4+5+6",
            "at most 7",
        ),  # fmt: skip
        ("conv3x3~0|conv3x3~0+1|conv3x3~0+1+2|conv3x3~0+1+2+3|out~1+2+3+4", "has 14 edges"),
        ('{"matrix": [[0, 1], [1, 0]], "ops": ["input", "output"]}', "upper triangular"),
        ('{"matrix": [[0, 0], [0, 0]], "ops": ["input", "output"]}', "not connected"),
        ('{"matrix": [[0, 1], [0, 0]], "ops": ["output", "input"]}', "'input' and the last"),
        (
            '{"matrix": [[0, 1, 0], [0, 0, 1], [0, 0, 0]], "ops": ["input", "conv", "output"]}',
            "unknown operation 'conv'",
        ),  # fmt: skip
        ('{"matrix": [[0, 1], [0, 0]]', "not valid JSON"),
        ("deadbeef" * 4, "not the hash of any"),
    ],
)
def test_malformed_cells_are_refused_with_the_reason(
    bad: str, why: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if bad == "deadbeef" * 4:  # needs a hash index: a small genuine one (see below)
        _partial_hash_index(tmp_path, monkeypatch, step=100_000)
    with pytest.raises(InvalidArchitectureError, match=why):
        SP.canonical(bad)


def _partial_hash_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, step: int
) -> enumeration.Table:
    """A private cache directory whose hash index holds the genuine hash of every
    ``step``-th cell (zeros elsewhere), so hash lookups are tested without the
    one-minute pass over all cells (and without touching the session's cache)."""
    session = enumeration.table()
    (tmp_path / enumeration.CELLS_FILE).write_bytes(session.cells_path.read_bytes())
    monkeypatch.setenv("NASFILTER_CACHE", str(tmp_path))
    t = enumeration.table()
    assert t.directory == tmp_path
    payload = bytearray(16 * enumeration.SIZE)
    digests = enumeration.compute_hashes(t.keys[::step])
    for k, i in enumerate(range(0, enumeration.SIZE, step)):
        payload[16 * i : 16 * i + 16] = digests[16 * k : 16 * k + 16]
    enumeration._write(t.hashes_path, enumeration._MAGIC_HASHES, bytes(payload), enumeration.SIZE)
    return t


def test_canonical_accepts_the_official_hash(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    t = _partial_hash_index(tmp_path, monkeypatch, step=997)
    for i in (0, 997 * 5, 997 * 400):
        arch = SP.unrank(i)
        h = SP.hash(arch)
        assert SP.canonical(h) == arch
        assert SP.canonical(h.upper()) == arch
    assert t.index_of_hash("f" * 32) == -1


@pytest.mark.skipif(
    not os.environ.get("NASFILTER_SLOW_TESTS"), reason="builds the full hash index (~1-2 min)"
)
def test_the_hash_index_covers_every_cell_and_hashes_are_distinct() -> None:
    t = enumeration.table()
    h = t.hashes()
    assert len({bytes(r) for r in h}) == enumeration.SIZE
    assert SP.canonical(FIRST_HASH) == FIRST_ID


# -- costs ---------------------------------------------------------------------------------


def test_vertex_channels_match_the_authors_test_cases() -> None:
    def vc(c_in: int, c_out: int, m: list[list[int]]) -> list[int]:
        n = len(m)
        return vertex_channels(
            c_in, c_out, n, {(i, j) for i in range(n) for j in range(n) if m[i][j]}
        )

    chain = [[0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert vc(8, 8, chain) == [8, 8, 8, 8]
    assert vc(8, 16, chain) == [8, 16, 16, 16]
    assert vc(16, 8, chain) == [16, 8, 8, 8]
    assert vc(1, 5, [[0, 1], [0, 0]]) == [1, 5]
    diamond = [[0, 1, 1, 0], [0, 0, 0, 1], [0, 0, 0, 1], [0, 0, 0, 0]]
    assert vc(8, 8, diamond) == [8, 4, 4, 8]
    assert vc(8, 15, diamond) == [8, 8, 7, 15]
    three = [[0, 1, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0] * 5]
    assert vc(8, 8, three) == [8, 3, 3, 2, 8]
    assert vc(8, 15, three) == [8, 5, 5, 5, 15]
    mx = [[0, 1, 0, 0, 0], [0, 0, 1, 1, 0], [0, 0, 0, 0, 1], [0, 0, 0, 0, 1], [0] * 5]
    assert vc(8, 8, mx) == [8, 4, 4, 4, 8]
    assert vc(8, 9, mx) == [8, 5, 5, 4, 9]
    mx2 = [[0, 1, 0, 1, 0], [0, 0, 1, 0, 1], [0, 0, 0, 1, 0], [0, 0, 0, 0, 1], [0] * 5]
    assert vc(8, 8, mx2) == [8, 4, 4, 4, 8]
    assert vc(8, 15, mx2) == [8, 8, 7, 7, 15]


def _sample_rows() -> list[dict[str, str]]:
    text = resources.files("nasfilter.sample_data").joinpath("nb101_sample.csv").read_text()
    return list(csv.DictReader(text.splitlines()))


def test_params_equal_the_sample_on_all_500_rows() -> None:
    """The shipped NAS-Bench-Suite-Zero rows give each spec's parameter count, counted on
    the spec in its own vertex order: ours equals it exactly on every row. The
    benchmark's own network for the cell (canonical order) has the same count whenever
    the output's channels split evenly (fan-in 1, 2 or 4); with fan-in 3 or 5 the vertex
    that gets one channel less depends on the order."""
    rows = _sample_rows()
    assert len(rows) == 500
    differ = 0
    for r in rows:
        m, ops = json.loads(r["matrix"]), json.loads(r["ops"])
        expected = round(float(r["params"]) * 1e6)
        assert spec_costs(m, ops).params == expected, r
        arch = SP.canonical(json.dumps({"matrix": m, "ops": ops}))
        fan_in = len([s for s in arch.rsplit("out~", 1)[1].split("+") if s != "0"])
        if fan_in in (3, 5):
            differ += SP.costs(arch).params != expected
        else:
            assert SP.costs(arch).params == expected, r
    assert differ == 28


def test_the_sample_counts_the_same_cell_differently_in_different_orders() -> None:
    """Why the benchmark's count is the canonical one: some cells appear in the file
    more than once, listed in different vertex orders, with different counts; the
    benchmark stores one count per hash (the order it trained)."""
    groups: dict[str, set[int]] = {}
    for r in _sample_rows():
        spec = json.dumps({"matrix": json.loads(r["matrix"]), "ops": json.loads(r["ops"])})
        groups.setdefault(SP.canonical(spec), set()).add(round(float(r["params"]) * 1e6))
    split = {a: v for a, v in groups.items() if len(v) > 1}
    assert len(groups) == 292
    assert split == {
        "conv1x1~0|conv1x1~1|conv3x3~0|out~1+2+3": {1_861_666, 1_865_770},
        "conv3x3~0|conv3x3~1|maxpool3x3~0|out~1+2+3": {2_653_744, 2_658_367},
        "conv3x3~0|maxpool3x3~0|maxpool3x3~0|out~1+2+3": {1_907_355, 1_923_492},
    }
    # the benchmark's order is a third one for the first cell
    assert SP.costs("conv1x1~0|conv1x1~1|conv3x3~0|out~1+2+3").params == 1_849_766


def _measured(arch: str) -> tuple[int, int, int]:
    """(params, FLOPs, ReLU count) of the built network: parameters counted, FLOPs by
    the probe's conv/linear hooks (NATS-Bench's counter), N_A by
    ``nasfilter.metrics.relu_count``; batch 1 (the networks are large for CPU tests)."""
    import torch

    from nasfilter.metrics import relu_count
    from nasfilter.metrics.probe import ModelProbe

    torch.manual_seed(0)
    model = SP.build(arch)
    probe = ModelProbe(model, torch.zeros(1, 3, 32, 32), bn_mode="eval")
    assert probe.run().output.shape == (1, 10)
    return probe.param_count(), probe.flops(), relu_count(model, (1, 3, 32, 32))


@pytest.mark.parametrize(
    "arch",
    [
        "out~0",  # the input projected straight to the output
        "conv1x1~0|out~0+1",  # the output: one vertex plus the input's projection added
        # 128 = 43 + 43 + 42: the remainder channels go to the first output vertices
        "conv1x1~0|maxpool3x3~0|conv3x3~0|out~1+2+3",
        # vertex 4 (42 channels) reads vertex 2 (43): the extra channel is sliced off
        "maxpool3x3~0|maxpool3x3~1|maxpool3x3~2|maxpool3x3~2|out~1+3+4",
        # the cell with the fewest parameters of the space
        "maxpool3x3~0|maxpool3x3~1|maxpool3x3~1|maxpool3x3~1|out~1+2+3+4",
    ],
)
def test_analytic_costs_equal_the_built_network(arch: str) -> None:
    c = SP.costs(arch)
    assert (c.params, c.flops, c.relu_count) == _measured(arch)


def test_analytic_costs_equal_the_built_network_on_a_seeded_sample() -> None:
    """The three cheapest (by FLOPs) of a seeded sample of 40: any cell would do, these
    keep the CPU time of the test small."""
    archs = sorted(SP.sample(40, seed=2024), key=lambda a: SP.costs(a).flops)[:3]
    for arch in archs:
        c = SP.costs(arch)
        assert (c.params, c.flops, c.relu_count) == _measured(arch), arch


def test_whole_space_cost_arrays_equal_per_cell_costs() -> None:
    arrays = SP.all_costs()
    assert all(len(v) == SP.size for v in arrays.values())
    for i in np.random.default_rng(1).choice(SP.size, 300, replace=False).tolist():
        c = SP.costs(SP.unrank(i))
        assert (c.params, c.flops, c.relu_count) == (
            arrays["params"][i], arrays["flops"][i], arrays["relu_count"][i]
        )  # fmt: skip
    smallest = SP.unrank(int(arrays["params"].argmin()))
    assert smallest == "maxpool3x3~0|maxpool3x3~1|maxpool3x3~1|maxpool3x3~1|out~1+2+3+4"
    assert int(arrays["params"].min()) == SP.costs(smallest).params


def test_identities_are_formatted_once_and_equal_format_cell() -> None:
    """``Table.identities`` (``format_keys``: one template per graph) gives what
    ``format_cell(unpack(key))`` gives, on windows across graph boundaries and a strided
    sample; every identity is distinct and canonical; ``enumerate`` serves that list."""
    t = enumeration.table()
    ids = t.identities()
    assert ids is t.identities() and len(ids) == SP.size
    keys = t.keys
    windows = [range(0, 3000), range(200_000, 203_000), range(SP.size - 3000, SP.size)]
    picks = [i for w in windows for i in w] + list(range(0, SP.size, 97))
    for i in picks:
        assert ids[i] == format_cell(unpack(int(keys[i]))), i
    assert format_keys(keys[1000:1500]) == ids[1000:1500]
    assert format_keys([int(k) for k in keys[:50]]) == ids[:50]
    assert len(set(ids)) == SP.size
    for i in range(0, SP.size, 4999):
        assert SP.canonical(ids[i]) == ids[i] and SP.rank(ids[i]) == i
    it = SP.enumerate()
    assert next(it) is ids[0] and next(it) is ids[1]


def test_costs_of_many_cells_take_the_same_values_by_every_path() -> None:
    """``costs_many`` on a run of consecutive identities (the slice path of a whole-space
    run), on the same cells shuffled or with one written in another notation (the
    identity -> position index), on a small batch (rank) and cell by cell agree."""
    ids = enumeration.table().identities()
    rng = np.random.default_rng(5)
    start = SP.size - 2500  # up to the last cell
    run = ids[start:]
    shuffled = [run[i] for i in rng.permutation(len(run))]
    other = list(run)
    i = next(k for k, a in enumerate(other) if a.count("|") >= 3)
    spec = SP.spec(other[i])
    other[i] = json.dumps(spec)  # the same cell as a JSON spec: not in canonical form
    assert SP._enumeration_span(run) == slice(start, SP.size)
    assert SP._enumeration_span(shuffled) is None
    assert SP._enumeration_span(other) is None
    assert SP._enumeration_span(ids[10:5000]) == slice(10, 5000)
    assert SP._enumeration_span(ids[10:5000] + [ids[0]]) is None
    by_slice = SP._costs_many(run)
    by_index = SP._costs_many(shuffled)
    by_parse = SP._costs_many(other)
    order = {a: k for k, a in enumerate(shuffled)}
    for f in SP.figures:
        assert np.array_equal(by_slice[f], by_parse[f])
        assert np.array_equal(by_slice[f], by_index[f][[order[a] for a in run]])
    small = SP._costs_many(run[:40])
    for k, a in enumerate(run[:40]):
        c = SP.costs(a)
        assert (small["params"][k], small["flops"][k], small["relu_count"][k]) == (
            c.params, c.flops, c.relu_count
        )  # fmt: skip
        assert by_slice["params"][k] == c.params


def test_only_the_cifar10_shape_is_offered() -> None:
    from nasfilter.errors import UsageError

    with pytest.raises(UsageError, match="not built at the cifar100 shape"):
        SP.costs("out~0", get_shape("cifar100"))


# -- neighbourhood -------------------------------------------------------------------------


def test_mutations_are_valid_canonical_and_different() -> None:
    rng = np.random.default_rng(9)
    for arch in [*SP.sample(25, seed=4), "out~0", "conv3x3~0|out~1"]:
        for _ in range(3):
            child = SP.mutate(arch, rng)
            assert child != arch
            assert SP.canonical(child) == child
            assert 0 <= SP.rank(child) < SP.size
        nb = SP.neighbours(arch)
        assert arch not in nb and len(nb) == len(set(nb)) > 0
    # an op change and an edge flip are both one step away
    nb = set(SP.neighbours("conv3x3~0|out~1"))
    assert {"conv1x1~0|out~1", "maxpool3x3~0|out~1", "conv3x3~0|out~0+1"} <= nb
    assert "out~0" not in nb  # removing the only path is not a valid cell
    assert "conv3x3~0|out~0+1" in set(SP.neighbours("out~0"))  # growth


def test_features_are_the_padded_encoding() -> None:
    f = SP.features("conv3x3~0|out~1")
    assert len(f) == FEATURES == 26
    # edges 0->1 and 1->6 of the padded 7-vertex matrix, op conv3x3 (0), four pads (-1)
    assert sum(f[:21]) == 2 and f[21:] == (0, -1, -1, -1, -1)
    assert SP.features(FIRST_ID)[21:] == (0, 2, 0, 0, 1)


# -- the on-disk cache ---------------------------------------------------------------------


def test_cache_is_rebuilt_when_corrupt_stale_or_truncated(tmp_path: Path) -> None:
    notices: list[str] = []
    t = enumeration.Table(tmp_path, on_notice=notices.append)  # built: no notice
    assert notices == [] and len(t) == enumeration.SIZE
    path = t.cells_path
    good = path.read_bytes()
    assert good.startswith(b"nasfilter-nb101-cells v1 count=423624 sha256=")

    def reopen() -> list[str]:
        notices.clear()
        t2 = enumeration.Table(tmp_path, on_notice=notices.append)
        assert np.array_equal(t2.keys, t.keys)
        assert path.read_bytes() == good  # rewritten whole
        return list(notices)

    data = bytearray(good)
    data[-5] ^= 0xFF
    path.write_bytes(bytes(data))
    assert reopen() == [
        f"the NAS-Bench-101 cache {path} is corrupt (checksum mismatch); rebuilding it."
    ]
    path.write_bytes(good.replace(b" v1 ", b" v0 ", 1))
    assert "is stale (format v0, expected v1)" in reopen()[0]
    path.write_bytes(good[:-100])
    assert "truncated" in reopen()[0]
    path.write_bytes(b"hello")
    assert "not a nasfilter cache file" in reopen()[0]
    assert reopen() == []  # a sound file is read silently


def test_an_unwritable_cache_folder_is_reported_and_the_table_still_works(
    tmp_path: Path,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    notices: list[str] = []
    t = enumeration.Table(blocker / "cache", on_notice=notices.append)
    assert len(t) == enumeration.SIZE and SP.size == len(t)
    assert len(notices) == 1 and "cannot write the NAS-Bench-101 cache" in notices[0]
    assert "Set NASFILTER_CACHE to a writable folder." in notices[0]


def test_cache_location_is_absolute_and_follows_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NASFILTER_CACHE", "relative/dir")
    assert enumeration.cache_dir().is_absolute()
    monkeypatch.delenv("NASFILTER_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert enumeration.cache_dir() == tmp_path / "nasfilter"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert enumeration.cache_dir() == Path.home().absolute() / ".cache" / "nasfilter"


def test_importing_the_space_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from nasfilter.spaces import get_space; get_space('nb101'); "
        "import nasfilter.truth.nb101; print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_bits_and_parse_spec_agree() -> None:
    n, edges, labels = parse_spec(FIRST_MATRIX, FIRST_OPS, "x")
    assert Cell(n, bits_of(edges), tuple(labels)) == SP.parse(FIRST_ID)
