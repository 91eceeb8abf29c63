"""NDS ``net`` configs: parsing, validation and the canonical identity (no torch).

An NDS record (one trained network of Radosavovic et al., ICCV 2019) carries the network
it trained as ``record["net"]``. Two families occur:

- **cell networks** (DARTS, ENAS, NASNet, Amoeba, PNAS)::

    {"aux": false, "depth": 12, "drop_prob": 0.0, "width": 32,
     "genotype": {"normal": [["sep_conv_3x3", 0], ...], "normal_concat": [2, 3, 4, 5],
                  "reduce": [...], "reduce_concat": [...]}}

- **AnyNet networks** (Vanilla, ResNet, ResNeXt-A/B)::

    {"block_type": "res_bottleneck_block", "ds": [1, 16, 1, 4], "ws": [16, 64, 128, 16],
     "ss": [1, 1, 2, 2], "bot_muls": [0.0, 0.25, 0.25, 0.25], "num_gs": [1, 2, 1, 2]}

  where entry 0 of every list is the stem (depth 1, width ``ws[0]``, stride ``ss[0]``) and
  entries 1.. are the stages.

The identity of an architecture is that object as canonical JSON: keys sorted, no spaces,
integers as integers, ``bot_muls`` and ``drop_prob`` as floats. Any JSON formatting of a
config maps to the same identity; a config that is not a valid network of its space is
refused with one line saying what is wrong.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from nasfilter.errors import InvalidArchitectureError

CELL_KEYS = frozenset({"aux", "depth", "drop_prob", "genotype", "width"})
CELL_REQUIRED = ("depth", "genotype", "width")
GENOTYPE_KEYS = ("normal", "normal_concat", "reduce", "reduce_concat")
ANYNET_KEYS = frozenset({"block_type", "bot_muls", "ds", "num_gs", "ss", "ws"})
ANYNET_REQUIRED = ("block_type", "ds", "ss", "ws")

#: NDS's block names (pycls's ``vanilla_block`` is NDS's ``double_plain_block``).
BLOCK_TYPES = ("double_plain_block", "res_basic_block", "res_bottleneck_block")

Pair = tuple[str, int]


def canonical_json(obj: Any) -> str:
    """Keys sorted, no spaces, no NaN/Infinity: the one text of a JSON value."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class CellConfig:
    """A cell network: ``width`` (initial channels C), ``depth`` (number of cells) and the
    normal and reduction cells as (operation, input state) pairs, two per node."""

    width: int
    depth: int
    normal: tuple[Pair, ...]
    normal_concat: tuple[int, ...]
    reduce: tuple[Pair, ...]
    reduce_concat: tuple[int, ...]
    aux: bool
    drop_prob: float
    doc: Mapping[str, Any]  # the normalised JSON object (the identity is its canonical text)

    @property
    def nodes(self) -> int:
        return len(self.normal) // 2


@dataclass(frozen=True)
class AnyNetConfig:
    """An AnyNet network: entry 0 of ``ds``/``ws``/``ss`` (and ``bot_muls``/``num_gs``) is
    the stem, entries 1.. the stages. ``bot_muls``/``num_gs`` are None for blocks without
    a bottleneck (the files hold ``[]`` or ``null`` there)."""

    block_type: str
    ds: tuple[int, ...]
    ws: tuple[int, ...]
    ss: tuple[int, ...]
    bot_muls: tuple[float, ...] | None
    num_gs: tuple[int, ...] | None
    doc: Mapping[str, Any]

    @property
    def stem_width(self) -> int:
        return self.ws[0]

    def stages(self) -> list[tuple[int, int, int, float | None, int | None]]:
        """(depth, width, stride, bottleneck multiplier, groups) of each stage."""
        out = []
        for i in range(1, len(self.ds)):
            bm = self.bot_muls[i] if self.bot_muls else None
            g = self.num_gs[i] if self.num_gs else None
            out.append((self.ds[i], self.ws[i], self.ss[i], bm, g))
        return out


class ConfigError(InvalidArchitectureError):
    """A config that is not a valid network of its space (one line)."""


def load_json(text: str) -> Any:
    """Decode ``text`` as JSON; ConfigError (one line) if it is not."""
    if not isinstance(text, str):
        raise ConfigError(f"An NDS identity is JSON text, not {type(text).__name__}.")

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not allowed")

    try:
        return json.loads(text, parse_constant=no_constant)
    except ValueError as e:
        msg = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise ConfigError(f"Not a JSON config: {msg}.") from None


def _int(v: Any, where: str, low: int = 1) -> int:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        raise ConfigError(f"{where} must be an integer (got {json.dumps(v)}).")
    if isinstance(v, float):
        if not (math.isfinite(v) and v.is_integer()):
            raise ConfigError(f"{where} must be an integer (got {v!r}).")
        v = int(v)
    if v < low:
        raise ConfigError(f"{where} must be at least {low} (got {v}).")
    return int(v)


def _float(v: Any, where: str) -> float:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        raise ConfigError(f"{where} must be a finite number (got {json.dumps(v)}).")
    return float(v)


def _list(v: Any, where: str) -> Sequence[Any]:
    if not isinstance(v, (list, tuple)):
        raise ConfigError(f"{where} must be a list (got {json.dumps(v)}).")
    return v


def _object(obj: Any, what: str) -> Mapping[str, Any]:
    if not isinstance(obj, Mapping):
        raise ConfigError(f"{what} must be a JSON object (got {type(obj).__name__}).")
    return obj


def _keys(
    obj: Mapping[str, Any], allowed: frozenset[str], required: Sequence[str], what: str
) -> None:
    unknown = sorted(set(obj) - allowed)
    if unknown:
        raise ConfigError(
            f"{what} has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(sorted(allowed))}."
        )
    missing = [k for k in required if k not in obj]
    if missing:
        raise ConfigError(f"{what} lacks {', '.join(map(repr, missing))}.")


def _cell(
    pairs: Any, concat: Any, kind: str, ops: Sequence[str], nodes: int
) -> tuple[list[list[Any]], list[int]]:
    pairs = _list(pairs, f"genotype.{kind}")
    if len(pairs) != 2 * nodes:
        raise ConfigError(
            f"genotype.{kind} must hold {2 * nodes} (operation, input) pairs, two per node "
            f"of this space's {nodes}-node cells (got {len(pairs)})."
        )
    out_pairs: list[list[Any]] = []
    for j, p in enumerate(pairs):
        node = j // 2
        where = f"genotype.{kind}[{j}]"
        if not isinstance(p, (list, tuple)) or len(p) != 2:
            raise ConfigError(f"{where} must be an [operation, input] pair (got {json.dumps(p)}).")
        op, src = p
        if not isinstance(op, str) or op not in ops:
            raise ConfigError(
                f"{where}: unknown operation {json.dumps(op)}; this space's are {', '.join(ops)}."
            )
        src = _int(src, f"{where} input", low=0)
        if src >= node + 2:
            raise ConfigError(
                f"{where}: node {node} can read states 0..{node + 1} "
                f"(the two cell inputs and earlier nodes), not {src}."
            )
        out_pairs.append([op, src])
    concat = _list(concat, f"genotype.{kind}_concat")
    if not concat:
        raise ConfigError(f"genotype.{kind}_concat is empty.")
    out_concat = []
    for c in concat:
        c = _int(c, f"genotype.{kind}_concat entry", low=0)
        if not 2 <= c < nodes + 2:
            raise ConfigError(
                f"genotype.{kind}_concat: {c} is not a node of the cell "
                f"(the nodes are states 2..{nodes + 1})."
            )
        out_concat.append(c)
    return out_pairs, out_concat


def parse_cell(obj: Any, ops: Sequence[str], nodes: int, imagenet: bool) -> CellConfig:
    """Validate a cell-network config object (decoded JSON) and normalise it."""
    obj = _object(obj, "The config")
    _keys(obj, CELL_KEYS, CELL_REQUIRED, "The cell config")
    width = _int(obj["width"], "width")
    if imagenet and width % 2:
        raise ConfigError(
            f"width must be even for the ImageNet network (its stem halves it), got {width}."
        )
    depth = _int(obj["depth"], "depth")
    geno = _object(obj["genotype"], "genotype")
    unknown = sorted(set(geno) - set(GENOTYPE_KEYS))
    if unknown:
        raise ConfigError(
            f"genotype has unknown key(s) {', '.join(map(repr, unknown))}; "
            f"allowed: {', '.join(GENOTYPE_KEYS)}."
        )
    missing = [k for k in GENOTYPE_KEYS if k not in geno]
    if missing:
        raise ConfigError(f"genotype lacks {', '.join(map(repr, missing))}.")
    normal, normal_concat = _cell(geno["normal"], geno["normal_concat"], "normal", ops, nodes)
    reduce, reduce_concat = _cell(geno["reduce"], geno["reduce_concat"], "reduce", ops, nodes)
    doc: dict[str, Any] = {
        "depth": depth,
        "genotype": {
            "normal": normal,
            "normal_concat": normal_concat,
            "reduce": reduce,
            "reduce_concat": reduce_concat,
        },
        "width": width,
    }
    aux = False
    if "aux" in obj:
        if not isinstance(obj["aux"], bool):
            raise ConfigError(f"aux must be true or false (got {json.dumps(obj['aux'])}).")
        aux = doc["aux"] = obj["aux"]
    drop_prob = 0.0
    if "drop_prob" in obj:
        drop_prob = doc["drop_prob"] = _float(obj["drop_prob"], "drop_prob")
        if not 0.0 <= drop_prob < 1.0:
            raise ConfigError(f"drop_prob must be in [0, 1) (got {drop_prob!r}).")
    return CellConfig(
        width=width,
        depth=depth,
        normal=tuple((op, src) for op, src in normal),
        normal_concat=tuple(normal_concat),
        reduce=tuple((op, src) for op, src in reduce),
        reduce_concat=tuple(reduce_concat),
        aux=aux,
        drop_prob=drop_prob,
        doc=doc,
    )


def _empty(v: Any) -> bool:
    return v is None or (isinstance(v, (list, tuple)) and len(v) == 0)


def parse_anynet(obj: Any, block_type: str) -> AnyNetConfig:
    """Validate an AnyNet config object (decoded JSON) of ``block_type`` and normalise it."""
    obj = _object(obj, "The config")
    _keys(obj, ANYNET_KEYS, ANYNET_REQUIRED, "The AnyNet config")
    bt = obj["block_type"]
    if bt != block_type:
        raise ConfigError(
            f"block_type must be {json.dumps(block_type)} in this space "
            f"(got {json.dumps(bt)}; NDS's are {', '.join(BLOCK_TYPES)})."
        )
    lists = {k: _list(obj[k], k) for k in ("ds", "ws", "ss")}
    n = len(lists["ds"])
    if n < 2:
        raise ConfigError(f"ds must list the stem and at least one stage (got {n} entries).")
    for k in ("ws", "ss"):
        if len(lists[k]) != n:
            raise ConfigError(f"ds, ws and ss must have the same length ({n}, {len(lists[k])}).")
    ds = [_int(v, f"ds[{i}]") for i, v in enumerate(lists["ds"])]
    ws = [_int(v, f"ws[{i}]") for i, v in enumerate(lists["ws"])]
    ss = [_int(v, f"ss[{i}]") for i, v in enumerate(lists["ss"])]
    if ds[0] != 1:
        raise ConfigError(f"ds[0] is the stem and must be 1 (got {ds[0]}).")
    if ss[0] != 1:
        raise ConfigError(f"ss[0] is the stem's stride and must be 1 (got {ss[0]}).")
    for i in range(1, n):
        if ss[i] not in (1, 2):
            raise ConfigError(f"ss[{i}] must be 1 or 2 (got {ss[i]}).")
    doc: dict[str, Any] = {"block_type": bt, "ds": ds, "ss": ss, "ws": ws}
    bms: list[float] | None = None
    gs: list[int] | None = None
    if block_type == "res_bottleneck_block":
        for k in ("bot_muls", "num_gs"):
            if k not in obj or _empty(obj[k]):
                raise ConfigError(f"a bottleneck network needs {k} (one entry per ds entry).")
            if len(_list(obj[k], k)) != n:
                raise ConfigError(f"{k} must have {n} entries like ds (got {len(obj[k])}).")
        bms = [_float(v, f"bot_muls[{i}]") for i, v in enumerate(obj["bot_muls"])]
        gs = [_int(v, f"num_gs[{i}]") for i, v in enumerate(obj["num_gs"])]
        for i in range(1, n):
            if bms[i] <= 0:
                raise ConfigError(f"bot_muls[{i}] must be positive (got {bms[i]!r}).")
            wb = int(round(ws[i] * bms[i]))
            if wb < 1:
                raise ConfigError(
                    f"stage {i}: bottleneck width round(ws[{i}] * bot_muls[{i}]) = {wb} is < 1."
                )
            if wb % gs[i]:
                raise ConfigError(
                    f"stage {i}: bottleneck width {wb} is not divisible by num_gs[{i}] = {gs[i]}."
                )
        doc["bot_muls"] = bms
        doc["num_gs"] = gs
    else:
        for k in ("bot_muls", "num_gs"):
            if k in obj:
                if not _empty(obj[k]):
                    raise ConfigError(
                        f"{k} must be empty ([] or null) for {block_type} "
                        f"(got {json.dumps(obj[k])})."
                    )
                doc[k] = [] if isinstance(obj[k], (list, tuple)) else None
    return AnyNetConfig(
        block_type=bt,
        ds=tuple(ds),
        ws=tuple(ws),
        ss=tuple(ss),
        bot_muls=tuple(bms) if bms is not None else None,
        num_gs=tuple(gs) if gs is not None else None,
        doc=doc,
    )


def loose_ends(pairs: Sequence[Sequence[Any]], nodes: int) -> list[int]:
    """The nodes (states 2..nodes+1) no node of the cell reads: NASNet-style outputs."""
    used = {int(src) for _op, src in pairs}
    return [s for s in range(2, nodes + 2) if s not in used]
