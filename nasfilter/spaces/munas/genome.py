"""The µNAS architecture, as data and as its canonical identity string.

An architecture is an :class:`Arch`: convolutional blocks, an optional pooling layer and
dense layers (the classifier is implied). The identity string is written and read here;
docs/spaces.md describes the notation. Nothing here imports torch.

Grammar of the identity (no spaces)::

    arch    := blocks "/" pool "/" dense
    blocks  := block (("," ... within a block) | ";" serial block | "|" parallel block)
    block   := layer ("," layer)*              1 to 3 layers
    layer   := ["m"] kind ["b"] ["r"]          m: 2x2 max pooling first; b: BN; r: ReLU
    kind    := "c" K ["s2"] ["x" C]            full K x K convolution, C output channels
             | "d" K ["s2"]                    depthwise K x K convolution
    pool    := "-" | ("a" | "m") P             none, average or max P x P pooling
    dense   := U ("," U)*                      1 to 3 dense layers of U units (with ReLU)

Blocks are joined by ``;`` (the block follows the previous one in series) or ``|`` (the
block is a branch in parallel with the previous one, fed by the same input as the last
serial block). ``x C`` is written for every full convolution except the last layer of a
parallel block, whose channels are those of the main path (µNAS sets them so that the
branch outputs can be added).
"""

from __future__ import annotations

import re
from typing import NamedTuple

from nasfilter.errors import InvalidArchitectureError

MAX_BLOCKS = 10
MAX_LAYERS = 3
MAX_DENSE = 3
CHANNELS = (1, 128)
UNITS = (10, 256)
FULL_KERNELS = (1, 3, 5, 7)  # K = 1 is µNAS's "1x1Conv2D" layer type (stride 1 only)
DW_KERNELS = (3, 5, 7)
POOL_SIZES = (2, 4, 6)
POOL_TYPES = ("a", "m")  # average, max

HINT = (
    "Write blocks of layers such as c3x16br (conv 3x3, 16 channels, BN, ReLU), "
    "mc5s2x8r (2x2 max-pool, conv 5x5 stride 2), d3b (depthwise 3x3) or c1x32 (1x1), "
    "layers joined by ',', blocks by ';' (series) or '|' (parallel), then /pool/dense, "
    "e.g. c3x16br;c3s2x32br|d3r/a2/64 (see docs/spaces.md)."
)


class Layer(NamedTuple):
    """One convolution layer.

    kind: ``"c"`` (full K x K convolution; K = 1 is a 1 x 1 convolution) or ``"d"``
    (depthwise). ch: output channels of a full convolution; None for depthwise layers and
    for the last full convolution of a parallel block (it takes the main path's
    channels). pool: 2 x 2 max pooling before the convolution.
    """

    kind: str
    k: int
    stride: int
    ch: int | None
    pool: bool
    bn: bool
    relu: bool


class Block(NamedTuple):
    parallel: bool  # a branch in parallel with the previous block (never the first block)
    layers: tuple[Layer, ...]


class Arch(NamedTuple):
    blocks: tuple[Block, ...]
    pool: tuple[str, int] | None  # ("a" | "m", P) or None
    dense: tuple[int, ...]


# -- formatting -----------------------------------------------------------------------------


def format_layer(layer: Layer) -> str:
    out = ("m" if layer.pool else "") + layer.kind + str(layer.k)
    if layer.stride == 2:
        out += "s2"
    if layer.ch is not None:
        out += f"x{layer.ch}"
    return out + ("b" if layer.bn else "") + ("r" if layer.relu else "")


def format_arch(arch: Arch) -> str:
    """The canonical identity string of ``arch`` (assumed valid)."""
    parts = []
    for i, block in enumerate(arch.blocks):
        if i:
            parts.append("|" if block.parallel else ";")
        parts.append(",".join(format_layer(layer) for layer in block.layers))
    pool = "-" if arch.pool is None else f"{arch.pool[0]}{arch.pool[1]}"
    return "".join(parts) + "/" + pool + "/" + ",".join(str(u) for u in arch.dense)


# -- parsing --------------------------------------------------------------------------------

_LAYER = re.compile(r"(m?)([cd])([1-9])(s2)?(?:x([1-9][0-9]*))?(b?)(r?)")
_INT = re.compile(r"[1-9][0-9]*")


def _bad(text: str, why: str) -> InvalidArchitectureError:
    return InvalidArchitectureError(f"Invalid munas architecture {text!r}: {why}.", HINT)


def _parse_layer(text: str, token: str, last_of_branch: bool, where: str) -> Layer:
    m = _LAYER.fullmatch(token)
    if m is None:
        raise _bad(text, f"{where}: cannot read layer {token!r}")
    pre, kind, k_s, s2, ch_s, bn, relu = m.groups()
    k = int(k_s)
    stride = 2 if s2 else 1
    ch = int(ch_s) if ch_s is not None else None
    if kind == "c":
        if k not in FULL_KERNELS:
            raise _bad(text, f"{where}: kernel {k} is not one of 1, 3, 5, 7")
        if k == 1 and stride == 2:
            raise _bad(text, f"{where}: a 1x1 convolution has stride 1")
        if last_of_branch:
            if ch is not None:
                raise _bad(
                    text,
                    f"{where}: the last layer of a parallel block takes the main path's "
                    f"channels; drop 'x{ch}'",
                )
        elif ch is None:
            raise _bad(text, f"{where}: a full convolution needs its channels, e.g. {token}x16")
        elif not CHANNELS[0] <= ch <= CHANNELS[1]:
            raise _bad(text, f"{where}: {ch} channels is outside 1..128")
    else:
        if k not in DW_KERNELS:
            raise _bad(text, f"{where}: a depthwise kernel is 3, 5 or 7, not {k}")
        if ch is not None:
            raise _bad(text, f"{where}: a depthwise convolution keeps its input channels")
    return Layer(kind, k, stride, ch, bool(pre), bool(bn), bool(relu))


_PARSED: dict[str, Arch] = {}
_PARSED_MAX = 1 << 17


def remember(text: str, arch: Arch) -> None:
    """Record that canonical ``text`` is ``arch`` (sampling and mutation produce both;
    parsing it again later is then a lookup)."""
    if len(_PARSED) >= _PARSED_MAX:
        _PARSED.clear()
    _PARSED[text] = arch


def parse_arch(text: str) -> Arch:
    """Parse and validate a munas identity; InvalidArchitectureError (one line) if not."""
    got = _PARSED.get(text) if isinstance(text, str) else None
    if got is not None:
        return got
    arch = _parse(text)
    remember(text, arch)
    return arch


def _parse(text: str) -> Arch:
    if not isinstance(text, str) or not text.strip():
        raise InvalidArchitectureError(f"Invalid munas architecture {text!r}.", HINT)
    text = text.strip()
    sections = text.split("/")
    if len(sections) != 3:
        raise _bad(text, f"expected blocks/pool/dense, got {len(sections)} section(s)")
    conv, pool_s, dense_s = sections
    # blocks: split on ';' and '|' keeping the separators
    pieces = re.split(r"([;|])", conv)
    bodies = pieces[0::2]
    seps = [""] + pieces[1::2]
    if not 1 <= len(bodies) <= MAX_BLOCKS:
        raise _bad(text, f"{len(bodies)} convolutional blocks (1 to {MAX_BLOCKS} allowed)")
    blocks = []
    for b, (sep, body) in enumerate(zip(seps, bodies, strict=True), start=1):
        parallel = sep == "|"
        tokens = body.split(",")
        if body == "" or not 1 <= len(tokens) <= MAX_LAYERS:
            n = 0 if body == "" else len(tokens)
            raise _bad(text, f"block {b} has {n} layers (1 to {MAX_LAYERS} allowed)")
        layers = tuple(
            _parse_layer(
                text,
                tok,
                last_of_branch=parallel and j == len(tokens) - 1,
                where=f"block {b} layer {j + 1}",
            )
            for j, tok in enumerate(tokens)
        )
        blocks.append(Block(parallel, layers))
    if pool_s == "-":
        pool = None
    else:
        if len(pool_s) < 2 or pool_s[0] not in POOL_TYPES or pool_s[1:] not in ("2", "4", "6"):
            raise _bad(text, f"pooling {pool_s!r} is not '-', a2, a4, a6, m2, m4 or m6")
        pool = (pool_s[0], int(pool_s[1:]))
    units = dense_s.split(",")
    if not 1 <= len(units) <= MAX_DENSE:
        raise _bad(text, f"{len(units)} dense layers (1 to {MAX_DENSE} allowed)")
    dense = []
    for u in units:
        if not _INT.fullmatch(u) or not UNITS[0] <= int(u) <= UNITS[1]:
            raise _bad(text, f"dense layer width {u!r} is not an integer in 10..256")
        dense.append(int(u))
    return Arch(tuple(blocks), pool, tuple(dense))


def check_arch(arch: Arch) -> None:
    """Raise InvalidArchitectureError unless ``arch`` satisfies every rule of the space
    (the rules ``parse_arch`` checks on strings), for architectures built in code."""
    parse_arch(format_arch(arch))
    for i, block in enumerate(arch.blocks):
        if i == 0 and block.parallel:
            raise InvalidArchitectureError("The first munas block cannot be parallel.", HINT)
        for j, layer in enumerate(block.layers):
            last_c = block.parallel and j == len(block.layers) - 1 and layer.kind == "c"
            if (layer.ch is None) != (layer.kind == "d" or last_c):
                raise InvalidArchitectureError(
                    f"Layer {format_layer(layer)} of block {i + 1} has channels set wrongly.",
                    HINT,
                )


def main_channels(blocks: tuple[Block, ...], upto: int, in_ch: int | None) -> int | None:
    """Output channels of the main (serial) path before block ``upto``: the channels a
    parallel block at position ``upto`` must produce. ``in_ch`` (the input's channels)
    when no full convolution on the main path sets them."""
    ch = in_ch
    for block in blocks[:upto]:
        if block.parallel:
            continue
        for layer in block.layers:
            if layer.kind == "c":
                assert layer.ch is not None
                ch = layer.ch
    return ch
