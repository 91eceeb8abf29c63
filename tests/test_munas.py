"""The µNAS space (munas): identity, sampling, morphisms, analytic figures == the built
network, the peak-RAM model against µNAS's own algorithm, budgets, resource metrics."""

from __future__ import annotations

import itertools
import random
import subprocess
import sys
from functools import cache, lru_cache

import numpy as np
import pytest
import torch
from torch import nn

from nasfilter.budgets import BUDGETS, Budget, check_arch, get_budget, make_budget
from nasfilter.datasets import SHAPES, DatasetShape, get_shape
from nasfilter.errors import InvalidArchitectureError, SampleSizeError, UsageError
from nasfilter.metrics import get_metric
from nasfilter.metrics.measures.resources import count_macs
from nasfilter.metrics.probe import ModelProbe
from nasfilter.metrics.registry import ScoreContext
from nasfilter.spaces import get_space
from nasfilter.spaces.munas import figures_of
from nasfilter.spaces.munas.genome import _parse, format_arch, parse_arch
from nasfilter.spaces.munas.memory import group_peak
from nasfilter.spaces.munas.sampling import draw_arch, draw_arch_reference, mutate_arch

SP = get_space("munas")
MUNAS_SHAPES = ("cifar10", "mnist", "speech-commands", "chars74k")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():  # type: ignore[no-untyped-def]
    """Small networks of many different shapes: one thread is several times faster."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


# -- identity -------------------------------------------------------------------------------


def test_shapes_are_registered_with_muNAS_sizes() -> None:
    assert SHAPES["mnist"] == DatasetShape("mnist", 10, 28, channels=1)
    sc = SHAPES["speech-commands"]
    assert (sc.num_classes, sc.hw, sc.channels) == (12, (49, 40), 1)
    assert (SHAPES["chars74k"].num_classes, SHAPES["chars74k"].hw) == (62, (48, 48))
    assert SP.shapes[0] == "cifar10" and set(MUNAS_SHAPES) <= set(SP.shapes)
    assert SP.size is None and not SP.enumerable


def test_identity_round_trips_and_reads_as_documented() -> None:
    text = "c3x16br,mc5s2x8r;c1x32|d3b,c7s2/a4/64,10"
    a = parse_arch(text)
    assert format_arch(a) == text and SP.canonical(text) == text
    assert len(a.blocks) == 3 and [b.parallel for b in a.blocks] == [False, False, True]
    first = a.blocks[0].layers
    assert (first[0].kind, first[0].k, first[0].stride, first[0].ch) == ("c", 3, 1, 16)
    assert (first[0].bn, first[0].relu, first[0].pool) == (True, True, False)
    assert (first[1].pool, first[1].k, first[1].stride, first[1].ch) == (True, 5, 2, 8)
    branch = a.blocks[2].layers
    assert branch[0].kind == "d" and branch[0].ch is None and branch[0].bn
    assert branch[1].ch is None  # the main path's channels (32)
    assert a.pool == ("a", 4) and a.dense == (64, 10)
    for arch in SP.sample(300, seed=11):
        assert SP.canonical(arch) == arch


@pytest.mark.parametrize(
    ("bad", "why"),
    [
        ("", "Invalid munas"),
        ("c3x16/-", "blocks/pool/dense"),
        ("c3x16/-/", "dense layer width"),
        ("c3x16/-/9", "10..256"),
        ("c3x16/-/10,10,10,10", "4 dense layers"),
        ("c3x16/a3/10", "pooling"),
        ("c4x16/-/10", "kernel 4"),
        ("c1s2x16/-/10", "1x1 convolution has stride 1"),
        ("d1/-/10", "depthwise kernel"),
        ("d3x4/-/10", "keeps its input channels"),
        ("c3/-/10", "needs its channels"),
        ("c3x0/-/10", "cannot read"),
        ("c3x129/-/10", "outside 1..128"),
        ("c3x016/-/10", "cannot read"),
        ("c3x16;c3x4|c3x4/-/10", "drop 'x4'"),
        ("c3x16,c3x16,c3x16,c3x16/-/10", "4 layers"),
        (";".join(["c3x1"] * 11) + "/-/10", "11 convolutional blocks"),
        ("c3x16;;c3x4/-/10", "block 2 has 0 layers"),
        ("c3x16 /-/10", "cannot read"),
        ("c3x16rb/-/10", "cannot read"),
    ],
)
def test_malformed_identities_are_refused_in_one_line(bad: str, why: str) -> None:
    with pytest.raises(InvalidArchitectureError) as e:
        SP.parse(bad)
    assert why in str(e.value) and "\n" not in str(e.value)


def test_first_block_cannot_be_parallel_and_parsing_rejects_leading_bar() -> None:
    with pytest.raises(InvalidArchitectureError):
        SP.parse("|c3/-/10")


# -- sampling and morphisms -----------------------------------------------------------------


def test_sampling_is_seeded_distinct_and_follows_the_helpers() -> None:
    a = SP.sample(400, seed=3)
    assert a == SP.sample(400, seed=3) and a != SP.sample(400, seed=4)
    assert len(set(a)) == 400
    assert SP.sample(50, seed=3) == a[:50]  # sampling-only spaces: prefix property
    for s in range(200):  # the flat sampler draws exactly what the helpers draw
        assert draw_arch(np.random.default_rng(s)) == draw_arch_reference(np.random.default_rng(s))
    with pytest.raises(SampleSizeError):
        SP.sample(0, seed=1)


def test_sampling_distribution_covers_table_1() -> None:
    archs = [parse_arch(x) for x in SP.sample(3000, seed=5)]
    nblocks = {len(a.blocks) for a in archs}
    assert nblocks == set(range(1, 11))  # upper ends included (µNAS's sampler never draws 10)
    layers = [la for a in archs for b in a.blocks for la in b.layers]
    assert {la.k for la in layers if la.kind == "c"} == {1, 3, 5, 7}
    assert {la.k for la in layers if la.kind == "d"} == {3, 5, 7}
    chans = [la.ch for la in layers if la.ch is not None]
    assert min(chans) == 1 and max(chans) == 128
    assert {len(b.layers) for a in archs for b in a.blocks} == {1, 2, 3}
    assert {len(a.dense) for a in archs} == {1, 2, 3}
    assert {a.pool[1] for a in archs if a.pool} == {2, 4, 6}
    relu = np.mean([la.relu for la in layers])
    pre = np.mean([la.pool for la in layers])
    pooled = np.mean([a.pool is not None for a in archs])
    par = np.mean([b.parallel for a in archs for b in a.blocks[1:]])
    assert abs(relu - 0.9) < 0.02 and abs(pre - 0.25) < 0.02
    assert abs(pooled - 0.9) < 0.02 and abs(par - 0.5) < 0.03


def test_mutation_chains_stay_valid_canonical_and_always_change() -> None:
    rng = np.random.default_rng(0)
    seen: set[str] = set()
    for start in SP.sample(100, seed=9):
        arch = start
        for _ in range(20):
            name, child_t = mutate_arch(parse_arch(arch), rng)
            child = format_arch(child_t)
            assert child != arch, name
            assert _parse(child) == child_t, (name, child)  # valid, and canonical
            seen.add(name.split(": ")[-1].split(" to ")[0].rstrip("0123456789+- "))
            arch = child
    kinds = {
        "remove a random block", "append a block", "serial<->parallel", "remove a layer",
        "insert a layer", "toggle BN", "toggle ReLU", "toggle pre-pooling", "change type",
        "C", "K", "toggle stride", "toggle pooling", "avg<->max", "P",
        "remove a dense layer", "append a dense layer", "U",
    }  # fmt: skip
    assert kinds <= seen, kinds - seen


def test_morphisms_of_a_known_architecture() -> None:
    names = SP.morphisms("c3x16br;c1x4|d3/m2/10")
    assert "remove a random block" in names and "append a block" in names
    assert "block 1: serial<->parallel" not in names  # the first block stays serial
    assert "block 3 layer 1: K +2" in names and "block 3 layer 1: K -2" not in names
    assert "block 2 layer 1: K +2" not in names  # 1x1: change type instead
    assert [n for n in names if n.startswith("block 2 layer 1: C")] == [
        "block 2 layer 1: C -3", "block 2 layer 1: C -1", "block 2 layer 1: C +1",
        "block 2 layer 1: C +3", "block 2 layer 1: C +5",
    ]  # fmt: skip
    assert "pooling: P -2" not in names and "pooling: P +2" in names
    assert "remove a dense layer" not in names and "dense 1: U -5" not in names
    rng = np.random.default_rng(1)
    # a branch turned serial gets back the channels it produced (the main path's, 4)
    for _ in range(200):
        name, child = mutate_arch(parse_arch("c3x16br;c1x4|c3/m2/10"), rng)
        if name == "block 3: serial<->parallel":
            assert format_arch(child) == "c3x16br;c1x4;c3x4/m2/10"
            break
    else:  # pragma: no cover
        raise AssertionError("morphism not drawn")


def test_features_have_a_fixed_length() -> None:
    f = [SP.features(a) for a in SP.sample(20, seed=2)]
    assert len({len(x) for x in f}) == 1


# -- analytic figures == the built network --------------------------------------------------

HAND_SERIAL = "c3x4r,mc3x8r/-/10"


def test_hand_computed_serial_network_at_mnist() -> None:
    # 28x28x1 -> conv3 (26x26x4 = 2704) -> maxpool2 (13x13x4 = 676) -> conv3 (11x11x8 = 968)
    # -> dense 10 -> classifier 10
    c = SP.costs(HAND_SERIAL, get_shape("mnist"))
    assert c.params == (9 * 4 + 4) + (9 * 4 * 8 + 8) + (968 * 10 + 10) + (10 * 10 + 10)
    assert c.relu_count == 2704 + 968 + 10
    assert c.flops == (2704 * 9 + 2704) + (968 * 36 + 968) + 9690 + 110
    assert c.extra["macs"] == 2704 * 9 + 676 * 4 + 968 * 36 + 9680 + 100
    # input not counted: conv 0 + 2704, pool 2704 + 676 (the peak), conv 676 + 968, ...
    assert c.extra["peak_ram_kb"] == 3.380


def test_hand_computed_branch_picks_the_best_order() -> None:
    # 8x8x1: c1x8 -> J = 8x8x8 = 512; serial c1x1 -> 64 then the tie-up max-pool 2 -> 16;
    # branch: pre-pool 4x4x8 = 128, 1x1 conv to 1 channel -> 16; in-place add of 16 + 16.
    # Serial first: 576, 592, 656, 160; branch first: 640, 656, 592, 96. Peak 656 either
    # way; interleaving (branch pool, then serial conv: 512 + 128 + 64 = 704) is worse.
    shape = DatasetShape("toy", 10, 8, channels=1)
    f = figures_of("c1x8;c1x1|mc1/-/10", shape)
    g = f.groups[1]
    assert (g.j, g.chains, g.add_cost) == (512, ((64, 16), (128, 16)), 32)
    assert f.peak_ram_bytes == 656
    assert f.macs == 64 * 8 + 64 * 8 + 128 * 4 + 16 * 8 + 16 * 4 + 16 + 16 * 10 + 10 * 10


@lru_cache(maxsize=4)
def _sample(shape: str) -> tuple[str, ...]:
    """Seeded architectures of at most 20M MACs (cheap forward passes)."""
    sh = get_shape(shape)
    out = [a for a in SP.sample(60, seed=21) if SP.costs(a, sh).extra["macs"] <= 20_000_000]
    return tuple(out[:8])


@pytest.mark.parametrize("shape", MUNAS_SHAPES)
def test_analytic_figures_equal_the_built_network(shape: str) -> None:
    sh = get_shape(shape)
    assert len(_sample(shape)) == 8
    for arch in _sample(shape):
        c = SP.costs(arch, sh)
        torch.manual_seed(0)
        net = SP.build(arch, sh)
        probe = ModelProbe(net, torch.ones(sh.input_shape(2)), bn_mode="eval").run()
        assert probe.output.shape == (2, sh.num_classes)
        assert sum(p.numel() for p in net.parameters()) == c.params, arch
        assert probe.flops() == c.flops, arch
        assert probe.relu_count() == c.relu_count, arch
        assert count_macs(net, torch.ones(sh.input_shape(1))) == c.extra["macs"], arch


def test_no_spatial_collapse_at_any_shape() -> None:
    # the deepest, most down-sampling network still builds and runs at a 4x4 input
    from nasfilter.spaces.munas.network_torch import build_network

    deep = ";".join(["mc7s2x2r"] * 9) + "|d7s2/m6/10"
    for shape in (get_shape("mnist"), DatasetShape("tiny", 10, 4, channels=1, width=3)):
        net = build_network(parse_arch(deep), shape)
        assert net(torch.zeros(shape.input_shape(1))).shape == (1, 10)
        f = figures_of(deep, shape)
        assert f.params == sum(p.numel() for p in net.parameters())
        assert f.peak_ram_bytes > 0


# -- the peak-RAM model against µNAS's algorithm --------------------------------------------


class _T:
    """A tensor of the resource graph (µNAS's ``TensorDesc``)."""

    def __init__(self, name: str, shape: tuple[int, ...], producer: _Op | None) -> None:
        self.name, self.shape, self.producer = name, tuple(shape), producer
        self.size = int(np.prod(self.shape)) if self.shape else 1
        self.consumers: list[_Op] = []
        self.predecessors: set[_T] = set()

    def __hash__(self) -> int:
        return hash(self.name)


class _Op:
    def __init__(self, kind: str, inputs: list[_T]) -> None:
        self.kind, self.inputs = kind, inputs
        for i in inputs:
            i.consumers.append(self)


def _produce(kind: str, inputs: list[_T], shape: tuple[int, ...], n: list[int]) -> _T:
    op = _Op(kind, inputs)
    n[0] += 1
    t = _T(f"t{n[0]}", shape, op)
    for i in inputs:
        t.predecessors |= {i} | i.predecessors
    return t


def peak_memory_usage_reference(output: _T) -> int:
    """µNAS's ``peak_memory_usage`` (eliberis/uNAS resource_models/models.py, Liberis et
    al., EuroMLSys 2021), transcribed: memoised recursion over the set of tensors that
    must be live, "un-applying" the operator of one of them at a time; weights and the
    graph input are not counted; an Add may write into an input of the output's shape
    whose other consumers have all run."""

    def occupies(x: _T) -> bool:
        return x.producer is not None

    def size_of(ts: frozenset[_T] | set[_T]) -> int:
        return sum(x.size for x in ts if occupies(x))

    @cache
    def mem(tensors: frozenset[_T]) -> tuple[int, tuple[_Op, ...]]:
        constants = [t for t in tensors if t.producer is None]
        if constants:
            up, order = mem(frozenset(t for t in tensors if t.producer is not None))
            return size_of(frozenset(constants)) + up, order
        if not tensors:
            return 0, ()
        best, best_order = sys.maxsize, ()
        for t in tensors:
            rest = tensors - {t}
            if any(t in r.predecessors for r in rest):
                continue
            assert t.producer is not None
            inputs = frozenset(t.producer.inputs)
            new = rest | inputs
            up, ops = mem(new)

            def last_use(i: _T, ops: tuple[_Op, ...] = ops, t: _T = t) -> bool:
                return all(o in ops for o in i.consumers if o is not t.producer)

            if t.producer.kind == "add" and any(i.shape == t.shape and last_use(i) for i in inputs):
                cur = size_of(new)
            else:
                cur = size_of(new | {t})
            m = max(up, cur)
            if m < best:
                best, best_order = m, (*ops, t.producer)
        return best, best_order

    return mem(frozenset([output]))[0]


_FUSED = (nn.BatchNorm2d, nn.ReLU, nn.Flatten, nn.Identity)
_ADDS = {torch.add, torch.Tensor.add, torch.Tensor.__add__}


def resource_graph_of(net: nn.Module, shape: DatasetShape) -> _T:
    """µNAS's resource graph of a built network, read from one forward pass on the meta
    device: every leaf module and addition becomes an operator (BatchNorm and ReLU fused
    into the convolution before them, zero padding and flattening are views, chains of
    additions one n-ary Add); returns the output tensor."""
    from torch.overrides import TorchFunctionMode

    events: list[tuple[str, list[torch.Tensor], torch.Tensor]] = []

    class Rec(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            out = func(*args, **(kwargs or {}))
            if func in _ADDS:
                events.append(("add", [args[0], args[1]], out))
            elif func is torch.nn.functional.pad:
                events.append(("view", [args[0]], out))
            return out

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...], out: torch.Tensor) -> None:
        events.append(("view" if isinstance(mod, _FUSED) else type(mod).__name__, [inp[0]], out))

    with torch.device("meta"):
        hs = [m.register_forward_hook(hook) for m in net.modules() if not list(m.children())]
        x = torch.zeros(shape.input_shape(1))
        with torch.no_grad(), Rec():
            y = net.eval()(x)
        for h in hs:
            h.remove()
    uses: dict[int, int] = {}
    for _, ins, _ in events:
        for i in ins:
            uses[id(i)] = uses.get(id(i), 0) + 1
    tensors: dict[int, _T] = {id(x): _T("input", tuple(x.shape[1:]), None)}
    pending: dict[int, list[_T]] = {}  # additions absorbed by the addition that uses them
    n = [0]
    keep = [x, y]  # keep every tensor alive: ids stay unique
    for i, (kind, ins, out) in enumerate(events):
        keep.append(out)
        if kind == "view":
            tensors[id(out)] = tensors[id(ins[0])]
            continue
        if kind == "add":
            terms: list[_T] = []
            for t in ins:
                terms.extend(pending.pop(id(t), None) or [tensors[id(t)]])
            nxt = [e for e in events[i + 1 :] if any(t is out for t in e[1])]
            if uses.get(id(out)) == 1 and nxt and nxt[0][0] == "add":
                pending[id(out)] = terms
                continue
            tensors[id(out)] = _produce("add", terms, tuple(out.shape[1:]), n)
            continue
        tensors[id(out)] = _produce(kind, [tensors[id(ins[0])]], tuple(out.shape[1:]), n)
    return tensors[id(y)]


def test_peak_ram_matches_muNAS_algorithm_on_the_graph_of_built_networks() -> None:
    checked = 0
    for shape in ("cifar10", "speech-commands"):
        sh = get_shape(shape)
        for arch in SP.sample(120, seed=31):
            f = figures_of(arch, sh)
            if max(len(g.chains) for g in f.groups) > 3 or len(parse_arch(arch).blocks) > 6:
                continue  # µNAS's recursion is exponential: small graphs only
            with torch.device("meta"):
                net = SP.build(arch, sh)
            assert peak_memory_usage_reference(resource_graph_of(net, sh)) == f.peak_ram_bytes
            checked += 1
            if checked % 12 == 0:
                break
    assert checked == 24


@pytest.mark.parametrize(
    ("arch", "shape"),
    [
        ("c1x4;c1x6|c3s2/-/10", "cifar10"),  # the branch is zero-padded 15x15 -> 16x16
        # 49x40 input: no addend has both the largest height and width: not in place
        ("c1x50br,d7r|mc1x116r,c1x74r,mc1r;d3s2br|c5s2br/a6/255,254,167", "speech-commands"),
    ],
)
def test_peak_ram_with_padding_and_an_addition_not_in_place(arch: str, shape: str) -> None:
    sh = get_shape(shape)
    f = figures_of(arch, sh)
    with torch.device("meta"):
        net = SP.build(arch, sh)
    assert peak_memory_usage_reference(resource_graph_of(net, sh)) == f.peak_ram_bytes
    g = next(g for g in f.groups if len(g.chains) > 1)
    in_place = g.add_cost == sum(c[-1] for c in g.chains)
    assert in_place == (shape == "cifar10")


def _group_graph(j: int, chains: tuple[tuple[int, ...], ...], in_place: bool) -> _T:
    """A synthetic µNAS graph for one group: a producer of J (size j), chains of
    operators with the given output sizes, an addition (in place when asked)."""
    n = [0]
    x = _T("input", (1,), None)
    jt = _produce("op", [x], (j,), n)
    ends = []
    for c in chains:
        t = jt
        for size in c:
            t = _produce("op", [t], (size,), n)
        ends.append(t)
    if len(ends) == 1:
        return ends[0]
    big = max(e.size for e in ends)
    shape = (big,) if in_place else (big + 1,)
    return _produce("add", ends, shape, n)


def _lattice(j: int, chains: tuple[tuple[int, ...], ...]) -> int:
    """Every order of a group, by brute force over the lattice of chain positions."""
    lens = tuple(len(c) for c in chains)

    @cache
    def f(p: tuple[int, ...]) -> int:
        if p == lens:
            return 0
        live = sum(c[q - 1] for c, q in zip(chains, p, strict=True) if q)
        live += j if 0 in p else 0
        return min(
            max(live + c[q], f(p[:k] + (q + 1,) + p[k + 1 :]))
            for k, (c, q) in enumerate(zip(chains, p, strict=True))
            if q < len(c)
        )

    return f((0,) * len(chains))


def test_group_peak_equals_muNAS_and_brute_force_on_random_graphs() -> None:
    rng = random.Random(5)
    for _ in range(300):
        k = rng.randint(2, 4)
        chains = tuple(
            tuple(
                rng.choice([rng.randint(1, 20), rng.randint(1, 400)])
                for _ in range(rng.randint(1, 4))
            )
            for _ in range(k)
        )
        j = rng.choice([rng.randint(1, 20), rng.randint(1, 400)])
        got = group_peak(j, chains)
        assert got == _lattice(j, chains), (j, chains)
        if sum(map(len, chains)) <= 9:
            ends = sum(c[-1] for c in chains)
            big = max(c[-1] for c in chains)
            for in_place in (True, False):
                ref = peak_memory_usage_reference(_group_graph(j, chains, in_place))
                add = ends if in_place else ends + big + 1
                # the producer of J costs j (input not counted)
                assert ref == max(got, add, j), (j, chains, in_place)


def test_group_peak_on_larger_random_groups_equals_brute_force() -> None:
    rng = random.Random(8)
    for _ in range(40):
        chains = tuple(
            tuple(rng.randint(1, 1000) for _ in range(rng.randint(1, 5)))
            for _ in range(rng.randint(5, 6))
        )
        j = rng.randint(0, 1000)
        assert group_peak(j, chains) == _lattice(j, chains), (j, chains)


# -- metrics ----------------------------------------------------------------------------------


def test_resource_metrics_are_registered_with_their_paths() -> None:
    macs, ram = get_metric("macs"), get_metric("peak_ram_kb")
    assert not macs.higher_is_better and not ram.higher_is_better
    nats = get_space("nats-tss")
    assert macs.path_in(SP) == "analytic" and macs.path_in(nats) == "model"
    assert ram.path_in(SP) == "analytic" and ram.path_in(nats) is None
    assert SP.needs(ram) == "nothing (analytic)" and nats.needs(ram) == "not available"
    assert get_metric("size_kb").path_in(SP) == "analytic"
    arch = "c3x4r,mc3x8r/-/10"
    ctx = ScoreContext(get_shape("mnist"))
    assert ram.from_arch is not None and macs.from_arch is not None
    assert ram.from_arch(SP, arch, ctx) == 3.38
    assert macs.from_arch(SP, arch, ctx) == SP.costs(arch, get_shape("mnist")).extra["macs"]
    ctx2 = ScoreContext(get_shape("mnist"), settings={"bytes_per_activation": 4})
    assert ram.from_arch(SP, arch, ctx2) == pytest.approx(4 * 3.38)


def test_macs_model_path_counts_additions_and_pooling_on_other_networks() -> None:
    class Res(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = nn.Conv2d(3, 3, 3, padding=1)
            self.pool = nn.AvgPool2d(2)
            self.gap = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(3, 5)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = x + self.conv(x)  # 3x8x8 additions
            y = self.pool(y)  # 3x4x4 outputs x 4 window elements
            return self.fc(self.gap(y).flatten(1))  # 48 reads, 15 MACs

    net = Res()
    expected = 3 * 64 * 27 + 192 + 48 * 4 + 48 + 15
    assert count_macs(net, torch.ones(2, 3, 8, 8)) == expected
    assert net.training  # mode restored


# -- budgets ----------------------------------------------------------------------------------


def test_budget_presets_are_muNAS_bounds() -> None:
    b = get_budget("munas-cifar10")
    assert (b.max_ram_kb, b.max_kb, b.max_macs, b.max_error) == (75, 75, 30_000_000, 0.18)
    assert (BUDGETS["munas-mnist"].max_ram_kb, BUDGETS["munas-mnist"].max_kb) == (2.5, 4.5)
    sc = BUDGETS["munas-speech-commands"]
    assert (sc.max_ram_kb, sc.max_kb, sc.max_macs, sc.max_error) == (60, 40, 20_000_000, 0.085)
    ch = BUDGETS["munas-chars74k"]
    assert (ch.max_ram_kb, ch.max_kb, ch.max_macs, ch.max_error) == (10, 20, 1_000_000, 0.3)
    for b in BUDGETS.values():
        assert b.shape in SHAPES
    with pytest.raises(UsageError, match="munas-cifar10"):
        get_budget("munas-imagenet")


def test_budget_check_reports_each_violation() -> None:
    mnist = get_shape("mnist")
    c = SP.costs(HAND_SERIAL, mnist)  # 10,136 params, 3.38 kB RAM, 71,668 MACs
    assert c.params == 10_136 and c.extra["macs"] == 71_668
    assert get_budget("munas-cifar10").check(c).ok
    res = get_budget("munas-mnist").check(c)
    assert [v.figure for v in res.violations] == ["size_kb", "peak_ram_kb"]
    assert res.violations[0].value == pytest.approx(10.136) and not res
    assert get_budget("munas-mnist").excess(c) == pytest.approx(10.136 / 4.5)
    tight = make_budget(max_macs=71_667)
    assert tight is not None and [v.figure for v in tight.check(c).violations] == ["macs"]
    assert make_budget() is None
    over = make_budget("munas-mnist", max_kb=11, max_ram_kb=4)
    assert over is not None and over.check(c).ok and over.max_macs == 30_000_000
    assert make_budget(max_kb=5, bytes_per_param=4) is not None
    with pytest.raises(UsageError, match="--max-ram-kb must be a positive number"):
        make_budget(max_ram_kb=-1)
    assert check_arch(SP, HAND_SERIAL, get_budget("munas-cifar10"), mnist).ok
    assert Budget(max_kb=1).check({"size_kb": float("nan")}).violations[0].figure == "size_kb"


def test_budget_figures_missing_in_a_space_give_one_clear_line() -> None:
    nats = get_space("nats-tss")
    arch = nats.unrank(0)
    with pytest.raises(UsageError) as e:
        check_arch(nats, arch, get_budget("munas-cifar10"))
    assert "nats-tss space has no peak_ram_kb" in str(e.value) and "munas" in str(e.value)
    assert check_arch(nats, arch, Budget(max_kb=1000)).ok


def test_feasible_sampling_and_mutation_meet_the_budget() -> None:
    b = get_budget("munas-cifar10")
    sh = get_shape("cifar10")
    from nasfilter.budgets import mutate_feasible, sample_feasible

    archs = sample_feasible(SP, 30, seed=1, budget=b, shape=sh)
    assert len(set(archs)) == 30 and all(b.check(SP.costs(a, sh)).ok for a in archs)
    assert archs == sample_feasible(SP, 30, seed=1, budget=b, shape=sh)
    rng = np.random.default_rng(0)
    for a in archs[:10]:
        child = mutate_feasible(SP, a, rng, b, sh)
        assert child is not None and child != a and check_arch(SP, child, b, sh).ok
    tiny = Budget(max_kb=0.001)
    with pytest.raises(SampleSizeError, match="met the budget"):
        sample_feasible(SP, 2, seed=1, budget=tiny, max_draws=50)
    assert mutate_feasible(SP, archs[0], rng, tiny, tries=5) is None


def test_budgeted_sampling_and_mutation_work_for_any_space_with_the_figures() -> None:
    from nasfilter.budgets import mutate_feasible, sample_feasible

    sss = get_space("nats-sss")
    b = Budget(max_kb=60)  # 60,000 parameters at one byte each
    archs = sample_feasible(sss, 25, seed=2, budget=b)
    assert len(set(archs)) == 25
    assert all(0 < sss.costs(a).params <= 60_000 for a in archs)  # type: ignore[operator]
    assert archs == sample_feasible(sss, 25, seed=2, budget=b)
    child = mutate_feasible(sss, archs[0], np.random.default_rng(0), b)
    assert child is not None and child != archs[0] and sss.costs(child).params <= 60_000  # type: ignore[operator]
    with pytest.raises(UsageError, match="no peak_ram_kb"):
        sample_feasible(sss, 5, seed=2, budget=get_budget("munas-cifar10"))


# -- imports ----------------------------------------------------------------------------------


def test_importing_the_space_and_metrics_does_not_import_torch() -> None:
    code = (
        "import sys, nasfilter.spaces as s, nasfilter.metrics as m, nasfilter.budgets;"
        "s.get_space('munas').costs(s.get_space('munas').sample(3, 0)[0]);"
        "m.get_metric('peak_ram_kb');"
        "assert 'torch' not in sys.modules, 'torch imported'"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_every_small_architecture_enumerated_round_trips() -> None:
    # all one-block, one-layer networks with fixed head: every layer token round-trips
    for kind, k, s, pre, bn, relu in itertools.product(
        "cd", (1, 3, 5, 7), (1, 2), (0, 1), (0, 1), (0, 1)
    ):
        if (kind == "d" and k == 1) or (k == 1 and s == 2):
            continue
        tok = ("m" if pre else "") + kind + str(k) + ("s2" if s == 2 else "")
        tok += ("x7" if kind == "c" else "") + ("b" if bn else "") + ("r" if relu else "")
        text = f"{tok}/m2/10"
        assert format_arch(parse_arch(text)) == text
