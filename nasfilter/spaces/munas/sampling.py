"""Random µNAS architectures and the Table 1 morphisms.

Sampling follows µNAS's ``cnn_random_generators.random_arch`` (eliberis/uNAS): N blocks,
the first in series, each later one in parallel with probability 1/2; 1 to 3 layers per
block, each of a uniformly drawn type (K x K convolution, 1 x 1 convolution, depthwise
convolution) with uniform kernel, channels and stride, BatchNorm with probability 1/2,
ReLU with probability 0.9 and 2 x 2 pre-pooling with probability 0.25; pooling with
probability 0.9 (average or max, uniform size); 1 to 3 dense layers of uniform width.
Every range is Table 1's, upper end included (µNAS's own sampler, through
``schema_types.Discrete.uniform_random_value``, never draws the upper end of a range:
kernel 7, 128 channels, 10 blocks, 3 layers, pool 6, 3 dense layers, 256 units; the
morphisms reach them).

Each draw reads a fixed block of ``_UNIFORMS`` uniforms from the generator (one numpy
call), so the same seed gives the same architectures.

The morphisms are µNAS's ``cnn_morphisms.produce_all_morphs``; ``mutate`` draws one of
them uniformly from the list of those that apply to the architecture (as µNAS's aging
evolution does), so every mutation yields a valid, different architecture.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from nasfilter.spaces.munas.genome import (
    CHANNELS,
    MAX_BLOCKS,
    MAX_DENSE,
    MAX_LAYERS,
    UNITS,
    Arch,
    Block,
    Layer,
    main_channels,
)

RELU_PROB = 0.9
PREPOOL_PROB = 0.25
POOLING_PROB = 0.9
LAYER_TYPES = ("conv", "conv1x1", "dwconv")

_UNIFORMS = 256  # enough for the largest architecture (10 blocks of 3 layers: <= 236)
_KERNELS = (3, 5, 7)
_POOLS = (2, 4, 6)


class _Draws:
    """Uniform draws from a block of floats (fast; one numpy call per architecture)."""

    __slots__ = ("u", "i", "rng")

    def __init__(self, rng: np.random.Generator, n: int = _UNIFORMS) -> None:
        self.rng = rng
        self.u = rng.random(n).tolist()
        self.i = 0

    def _next(self) -> float:
        if self.i == len(self.u):
            self.u = self.rng.random(_UNIFORMS).tolist()
            self.i = 0
        v = self.u[self.i]
        self.i += 1
        return v  # type: ignore[no-any-return]

    def int(self, lo: int, hi: int) -> int:
        """Uniform integer in [lo, hi]."""
        return lo + int(self._next() * (hi - lo + 1))

    def choice(self, options: tuple) -> object:
        return options[int(self._next() * len(options))]

    def bern(self, p: float) -> bool:
        return self._next() < p


def random_layer(d: _Draws, kind: str, settable_ch: bool = True) -> Layer:
    """A random layer of one of µNAS's three types (``LAYER_TYPES``)."""
    if kind == "conv":
        k = d.choice((3, 5, 7))
        ch = d.int(*CHANNELS)
        stride = 2 if d.bern(0.5) else 1
        layer_kind = "c"
    elif kind == "conv1x1":
        k, stride, layer_kind = 1, 1, "c"
        ch = d.int(*CHANNELS)
    else:
        k = d.choice((3, 5, 7))
        stride = 2 if d.bern(0.5) else 1
        ch, layer_kind = 0, "d"
    bn = d.bern(0.5)
    relu = d.bern(RELU_PROB)
    pool = d.bern(PREPOOL_PROB)
    keep = layer_kind == "c" and settable_ch
    return Layer(layer_kind, int(k), stride, ch if keep else None, pool, bn, relu)  # type: ignore[call-overload]


def random_block(d: _Draws, first: bool, num_layers: int | None = None) -> Block:
    parallel = False if first else d.bern(0.5)
    m = num_layers if num_layers is not None else d.int(1, MAX_LAYERS)
    layers = tuple(
        random_layer(d, str(d.choice(LAYER_TYPES)), settable_ch=not (parallel and j == m - 1))
        for j in range(m)
    )
    return Block(parallel, layers)


def random_pool(d: _Draws) -> tuple[str, int]:
    return ("a" if d.bern(0.5) else "m", int(d.choice((2, 4, 6))))  # type: ignore[call-overload]


def draw_arch(rng: np.random.Generator) -> Arch:
    """One random architecture (the distribution of the module doc).

    Equivalent to ``random_block``/``random_layer`` on a ``_Draws``, written out flat
    because sampling speed matters (tests hold the two equal)."""
    u = rng.random(_UNIFORMS).tolist()
    n = 1 + int(u[0] * MAX_BLOCKS)
    i = 1
    blocks = []
    lo, span = CHANNELS[0], CHANNELS[1] - CHANNELS[0] + 1
    for b in range(n):
        parallel = False
        if b:
            parallel = u[i] < 0.5
            i += 1
        m = 1 + int(u[i] * MAX_LAYERS)
        i += 1
        layers = []
        for j in range(m):
            kind = LAYER_TYPES[int(u[i] * 3)]
            i += 1
            if kind == "conv":
                k = _KERNELS[int(u[i] * 3)]
                ch: int | None = lo + int(u[i + 1] * span)
                stride = 2 if u[i + 2] < 0.5 else 1
                i += 3
                lk = "c"
            elif kind == "conv1x1":
                k, stride, lk = 1, 1, "c"
                ch = lo + int(u[i] * span)
                i += 1
            else:
                k = _KERNELS[int(u[i] * 3)]
                stride = 2 if u[i + 1] < 0.5 else 1
                ch, lk = None, "d"
                i += 2
            bn, relu, pool = u[i] < 0.5, u[i + 1] < RELU_PROB, u[i + 2] < PREPOOL_PROB
            i += 3
            if parallel and j == m - 1:
                ch = None
            layers.append(Layer(lk, k, stride, ch, pool, bn, relu))
        blocks.append(Block(parallel, tuple(layers)))
    pool_: tuple[str, int] | None = None
    if u[i] < POOLING_PROB:
        pool_ = ("a" if u[i + 1] < 0.5 else "m", _POOLS[int(u[i + 2] * 3)])
        i += 3
    else:
        i += 1
    f = 1 + int(u[i] * MAX_DENSE)
    i += 1
    ulo, uspan = UNITS[0], UNITS[1] - UNITS[0] + 1
    dense = tuple(ulo + int(u[i + q] * uspan) for q in range(f))
    return Arch(tuple(blocks), pool_, dense)


def draw_arch_reference(rng: np.random.Generator) -> Arch:
    """``draw_arch`` written with the helpers (same draws, same result; for tests)."""
    d = _Draws(rng)
    n = d.int(1, MAX_BLOCKS)
    blocks = tuple(random_block(d, first=i == 0) for i in range(n))
    pool = random_pool(d) if d.bern(POOLING_PROB) else None
    f = d.int(1, MAX_DENSE)
    dense = tuple(d.int(*UNITS) for _ in range(f))
    return Arch(blocks, pool, dense)


# -- morphisms ------------------------------------------------------------------------------


def _layer_type(layer: Layer) -> str:
    if layer.kind == "d":
        return "dwconv"
    return "conv1x1" if layer.k == 1 else "conv"


def _normalise(blocks: list[Block], targets: list[int | None], d: _Draws) -> tuple[Block, ...]:
    """Make every block obey the channel rule after a structural change: the last full
    convolution of a parallel block has no channel count; every other full convolution
    has one. ``targets[i]``: the channel count block i's last layer produced before the
    change (used when a layer needs a count again; a random width when unknown)."""
    out = []
    for i, block in enumerate(blocks):
        layers = list(block.layers)
        for j, layer in enumerate(layers):
            if layer.kind != "c":
                continue
            determined = block.parallel and j == len(layers) - 1
            if determined and layer.ch is not None:
                layers[j] = layer._replace(ch=None)
            elif not determined and layer.ch is None:
                t = targets[i] if i < len(targets) else None
                layers[j] = layer._replace(ch=t if t is not None else d.int(*CHANNELS))
        out.append(Block(block.parallel, tuple(layers)))
    return tuple(out)


def _targets(blocks: tuple[Block, ...]) -> list[int | None]:
    """Per block, the channels its last layer produces when that is set by the main path
    (parallel blocks) or None."""
    out: list[int | None] = []
    for i, block in enumerate(blocks):
        out.append(main_channels(blocks, i, None) if block.parallel else None)
    return out


Morph = Callable[[Arch, _Draws], Arch]


def _with_blocks(arch: Arch, blocks: tuple[Block, ...]) -> Arch:
    return Arch(blocks, arch.pool, arch.dense)


def _remove_block(idx: int | None) -> Morph:
    def f(arch: Arch, d: _Draws) -> Arch:
        i = d.int(0, len(arch.blocks) - 1) if idx is None else idx
        targets = _targets(arch.blocks)
        blocks = list(arch.blocks)
        if not blocks[i].parallel and i + 1 < len(blocks) and blocks[i + 1].parallel:
            blocks[i + 1] = blocks[i + 1]._replace(parallel=False)
        del blocks[i]
        del targets[i]
        return _with_blocks(arch, _normalise(blocks, targets, d))

    return f


def _add_block(arch: Arch, d: _Draws) -> Arch:
    return _with_blocks(arch, (*arch.blocks, random_block(d, first=False, num_layers=1)))


def _toggle_parallel(i: int) -> Morph:
    def f(arch: Arch, d: _Draws) -> Arch:
        targets = _targets(arch.blocks)
        blocks = list(arch.blocks)
        blocks[i] = blocks[i]._replace(parallel=not blocks[i].parallel)
        return _with_blocks(arch, _normalise(blocks, targets, d))

    return f


def _replace_layers(arch: Arch, i: int, layers: list[Layer], d: _Draws) -> Arch:
    targets = _targets(arch.blocks)
    blocks = list(arch.blocks)
    blocks[i] = Block(blocks[i].parallel, tuple(layers))
    return _with_blocks(arch, _normalise(blocks, targets, d))


def _remove_layer(i: int) -> Morph:
    def f(arch: Arch, d: _Draws) -> Arch:
        layers = list(arch.blocks[i].layers)
        del layers[d.int(0, len(layers) - 1)]
        return _replace_layers(arch, i, layers, d)

    return f


def _insert_layer(i: int) -> Morph:
    def f(arch: Arch, d: _Draws) -> Arch:
        layers = list(arch.blocks[i].layers)
        at = d.int(0, len(layers))
        layers.insert(at, random_layer(d, str(d.choice(LAYER_TYPES))))
        return _replace_layers(arch, i, layers, d)

    return f


def _edit_layer(i: int, j: int, edit: Callable[[Layer, _Draws], Layer]) -> Morph:
    def f(arch: Arch, d: _Draws) -> Arch:
        layers = list(arch.blocks[i].layers)
        layers[j] = edit(layers[j], d)
        return _replace_layers(arch, i, layers, d)

    return f


def _toggle(field: str) -> Callable[[Layer, _Draws], Layer]:
    return lambda layer, d: layer._replace(**{field: not getattr(layer, field)})  # type: ignore[arg-type]


def _new_type(kind: str) -> Callable[[Layer, _Draws], Layer]:
    return lambda layer, d: random_layer(d, kind)


def _shift(field: str, delta: int) -> Callable[[Layer, _Draws], Layer]:
    return lambda layer, d: layer._replace(**{field: getattr(layer, field) + delta})


def _flip_stride(layer: Layer, d: _Draws) -> Layer:
    return layer._replace(stride=3 - layer.stride)


def _toggle_pooling(arch: Arch, d: _Draws) -> Arch:
    return Arch(arch.blocks, None if arch.pool else random_pool(d), arch.dense)


def _flip_pool_type(arch: Arch, d: _Draws) -> Arch:
    assert arch.pool is not None
    return Arch(arch.blocks, ("m" if arch.pool[0] == "a" else "a", arch.pool[1]), arch.dense)


def _pool_size(delta: int) -> Morph:
    def f(arch: Arch, d: _Draws) -> Arch:
        assert arch.pool is not None
        return Arch(arch.blocks, (arch.pool[0], arch.pool[1] + delta), arch.dense)

    return f


def _remove_dense(arch: Arch, d: _Draws) -> Arch:
    dense = list(arch.dense)
    del dense[d.int(0, len(dense) - 1)]
    return Arch(arch.blocks, arch.pool, tuple(dense))


def _add_dense(arch: Arch, d: _Draws) -> Arch:
    return Arch(arch.blocks, arch.pool, (*arch.dense, d.int(*UNITS)))


def _units(i: int, delta: int) -> Morph:
    def f(arch: Arch, d: _Draws) -> Arch:
        dense = list(arch.dense)
        dense[i] += delta
        return Arch(arch.blocks, arch.pool, tuple(dense))

    return f


STEPS = (-5, -3, -1, 1, 3, 5)


def morphisms(arch: Arch) -> list[tuple[str, Morph]]:
    """Every morphism that applies to ``arch``, with a name (µNAS's list, in its order)."""
    out: list[tuple[str, Morph]] = []
    nb = len(arch.blocks)
    if nb > 1:
        out.append(("remove a random block", _remove_block(None)))
    if nb < MAX_BLOCKS:
        out.append(("append a block", _add_block))
    for i, block in enumerate(arch.blocks):
        if i > 0:
            out.append((f"block {i + 1}: serial<->parallel", _toggle_parallel(i)))
        m = len(block.layers)
        if m == 1 and nb > 1:
            out.append((f"remove block {i + 1}", _remove_block(i)))
        if m > 1:
            out.append((f"block {i + 1}: remove a layer", _remove_layer(i)))
        if m < MAX_LAYERS:
            out.append((f"block {i + 1}: insert a layer", _insert_layer(i)))
        for j, layer in enumerate(block.layers):
            at = f"block {i + 1} layer {j + 1}"
            for field, what in (("bn", "BN"), ("relu", "ReLU"), ("pool", "pre-pooling")):
                out.append((f"{at}: toggle {what}", _edit_layer(i, j, _toggle(field))))
            for kind in LAYER_TYPES:
                if kind != _layer_type(layer):
                    out.append((f"{at}: change type to {kind}", _edit_layer(i, j, _new_type(kind))))
            if layer.ch is not None:
                for s in STEPS:
                    if CHANNELS[0] <= layer.ch + s <= CHANNELS[1]:
                        out.append((f"{at}: C {s:+d}", _edit_layer(i, j, _shift("ch", s))))
            if layer.k > 1:
                for s in (-2, 2):
                    if 3 <= layer.k + s <= 7:
                        out.append((f"{at}: K {s:+d}", _edit_layer(i, j, _shift("k", s))))
                out.append((f"{at}: toggle stride", _edit_layer(i, j, _flip_stride)))
    out.append(("toggle pooling", _toggle_pooling))
    if arch.pool is not None:
        out.append(("pooling: avg<->max", _flip_pool_type))
        for s in (-2, 2):
            if 2 <= arch.pool[1] + s <= 6:
                out.append((f"pooling: P {s:+d}", _pool_size(s)))
    nd = len(arch.dense)
    if nd > 1:
        out.append(("remove a dense layer", _remove_dense))
    if nd < MAX_DENSE:
        out.append(("append a dense layer", _add_dense))
    for i, u in enumerate(arch.dense):
        for s in STEPS:
            if UNITS[0] <= u + s <= UNITS[1]:
                out.append((f"dense {i + 1}: U {s:+d}", _units(i, s)))
    return out


def mutate_arch(arch: Arch, rng: np.random.Generator) -> tuple[str, Arch]:
    """One morphism drawn uniformly from those that apply; returns (name, child)."""
    options = morphisms(arch)
    d = _Draws(rng, 64)
    name, fn = options[d.int(0, len(options) - 1)]
    return name, fn(arch, d)
