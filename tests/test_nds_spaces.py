"""NDS design spaces: registry, seeded sampling within the paper's ranges, the canonical
JSON identity, refusals, mutation, and analytic parameter counts against published NDS
records. No network is built here (tests/test_nds_networks.py builds them)."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from nasfilter.datasets import TRUTH_DATASETS, DatasetShape, get_shape
from nasfilter.errors import InvalidArchitectureError, UsageError
from nasfilter.spaces import get_space, list_spaces
from tests.fixtures.nds_records import RECORDS

CELL = ["nds-amoeba", "nds-darts", "nds-enas", "nds-nasnet", "nds-pnas"]
CELL_IN = [f"{s}-in" for s in CELL]
ANYNET = ["nds-resnet", "nds-resnext-a", "nds-resnext-b", "nds-vanilla"]
ALL = CELL + CELL_IN + ANYNET

# -- the design spaces as the sources define them, written out independently -------------
# Operations: pycls genotypes.py (NASWOT's vendored copy); DARTS without ``none`` as NNI's
# NDS implementation (nni/nas/hub/pytorch/nasnet.py) samples it.
OPS = {
    "nds-nasnet": {
        "skip_connect", "conv_3x1_1x3", "conv_7x1_1x7", "dil_conv_3x3", "avg_pool_3x3",
        "max_pool_3x3", "max_pool_5x5", "max_pool_7x7", "conv_1x1", "conv_3x3",
        "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7",
    },
    "nds-amoeba": {
        "skip_connect", "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "avg_pool_3x3",
        "max_pool_3x3", "dil_sep_conv_3x3", "conv_7x1_1x7",
    },
    "nds-pnas": {
        "sep_conv_3x3", "sep_conv_5x5", "sep_conv_7x7", "conv_7x1_1x7", "skip_connect",
        "avg_pool_3x3", "max_pool_3x3", "dil_conv_3x3",
    },
    "nds-enas": {"skip_connect", "sep_conv_3x3", "sep_conv_5x5", "avg_pool_3x3", "max_pool_3x3"},
    "nds-darts": {
        "max_pool_3x3", "avg_pool_3x3", "skip_connect", "sep_conv_3x3", "sep_conv_5x5",
        "dil_conv_3x3", "dil_conv_5x5",
    },
}  # fmt: skip
NODES = {"nds-darts": 4}  # the others: 5
ALL_OUTPUT = {"nds-pnas", "nds-darts"}  # the others concatenate the loose ends
# NDS Table 1 ("a, b, n": n values about evenly spaced in log space between a and b)
ANY = {
    "nds-vanilla": (
        (1, 2, 3, 4, 6, 8, 12, 16, 24),
        (16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256),
        None,
        None,
    ),  # noqa: E501
    "nds-resnet": (
        (1, 2, 3, 4, 6, 8, 12, 16, 24),
        (16, 24, 32, 40, 48, 64, 80, 96, 128, 160, 192, 256),
        None,
        None,
    ),  # noqa: E501
    "nds-resnext-a": ((1, 2, 4, 8, 16), (16, 32, 64, 128, 256), (1.0, 0.5, 0.25), (1, 2, 4)),
    "nds-resnext-b": (
        (1, 2, 4, 8, 16),
        (64, 128, 256, 512, 1024),
        (1.0, 0.5, 0.25),
        (1, 2, 4, 8, 16),
    ),  # noqa: E501
}
BLOCK = {
    "nds-vanilla": "double_plain_block",
    "nds-resnet": "res_basic_block",
    "nds-resnext-a": "res_bottleneck_block",
    "nds-resnext-b": "res_bottleneck_block",
}


def _base(space: str) -> str:
    return space.removesuffix("-in")


def _check_cell(space: str, net: dict) -> None:
    base = _base(space)
    nodes = NODES.get(base, 5)
    assert net["width"] in (16, 24, 32) and net["depth"] in (4, 8, 12, 16, 20)
    assert net["aux"] is False and net["drop_prob"] == 0.0
    for kind in ("normal", "reduce"):
        pairs = net["genotype"][kind]
        assert len(pairs) == 2 * nodes
        for j, (op, src) in enumerate(pairs):
            assert op in OPS[base]
            assert 0 <= src < j // 2 + 2
        used = {src for _, src in pairs}
        expect = [s for s in range(2, nodes + 2) if base in ALL_OUTPUT or s not in used]
        assert net["genotype"][f"{kind}_concat"] == expect


def _check_anynet(space: str, net: dict) -> None:
    depths, widths, bms, groups = ANY[space]
    assert net["block_type"] == BLOCK[space]
    assert net["ds"][0] == 1 and net["ws"][0] == 16 and net["ss"] == [1, 1, 2, 2]
    assert len(net["ds"]) == len(net["ws"]) == 4
    assert all(d in depths for d in net["ds"][1:]) and all(w in widths for w in net["ws"][1:])
    if bms is None:
        assert net["bot_muls"] == [] and net["num_gs"] == []
    else:
        assert net["bot_muls"][0] == 0.0 and net["num_gs"][0] == 1
        assert all(b in bms for b in net["bot_muls"][1:])
        assert all(g in groups for g in net["num_gs"][1:])


# -- registry and shapes ------------------------------------------------------------------


def test_every_nds_space_is_registered_sampling_only() -> None:
    names = [s.name for s in list_spaces() if s.name.startswith("nds-")]
    assert names == sorted(ALL)
    for name in ALL:
        sp = get_space(name)
        assert sp.size is None and not sp.enumerable
        assert sp.shapes == (
            ("imagenet",) if name.endswith("-in") else ("cifar10", "cifar100", "imagenet16-120")
        )  # noqa: E501
        assert sp.figures == {"params", "flops", "relu_count"}


def test_imagenet_shape_and_truth_dataset_are_registered() -> None:
    get_space("nds-darts")  # loads the spaces
    assert get_shape("ImageNet") == DatasetShape("imagenet", 1000, 224)
    assert TRUTH_DATASETS["imagenet"] == "imagenet"


def test_listing_the_spaces_does_not_import_torch() -> None:
    code = (
        "import sys\nfrom nasfilter.spaces import list_spaces, get_space\n"
        "names = [s.name for s in list_spaces()]\n"
        "a = get_space('nds-darts').sample(3, 0)\n"
        "print(get_space('nds-darts').costs(a[0]).params)\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr


def test_a_cifar_space_refuses_the_imagenet_shape() -> None:
    sp = get_space("nds-darts")
    with pytest.raises(UsageError, match="not built at the imagenet shape"):
        sp.costs(sp.sample(1, 0)[0], get_shape("imagenet"))


# -- sampling -----------------------------------------------------------------------------


@pytest.mark.parametrize("space", ALL)
def test_sampling_is_seeded_distinct_and_within_the_design_space(space: str) -> None:
    sp = get_space(space)
    a = sp.sample(30, seed=7)
    assert a == sp.sample(30, seed=7)
    assert a != sp.sample(30, seed=8)
    assert len(set(a)) == 30
    assert sp.sample(5, seed=7) == a[:5]
    for arch in a:
        net = json.loads(arch)
        (_check_anynet if space in ANYNET else _check_cell)(space, net)


@pytest.mark.parametrize("space", CELL + ANYNET)
def test_draws_cover_every_choice(space: str) -> None:
    sp = get_space(space)
    nets = [json.loads(a) for a in sp.sample(300, seed=1)]
    if space in ANYNET:
        depths, widths, bms, groups = ANY[space]
        assert {d for n in nets for d in n["ds"][1:]} == set(depths)
        assert {w for n in nets for w in n["ws"][1:]} == set(widths)
        if bms:
            assert {b for n in nets for b in n["bot_muls"][1:]} == set(bms)
            assert {g for n in nets for g in n["num_gs"][1:]} == set(groups)
    else:
        assert {n["width"] for n in nets} == {16, 24, 32}
        assert {n["depth"] for n in nets} == {4, 8, 12, 16, 20}
        ops = {op for n in nets for k in ("normal", "reduce") for op, _ in n["genotype"][k]}
        assert ops == OPS[space]
        last = NODES.get(space, 5) + 1  # the last node reads any of states 0..last
        srcs = {p[1] for n in nets for p in n["genotype"]["normal"][-2:]}
        assert srcs == set(range(last))


# -- identity -----------------------------------------------------------------------------


def _reformat(obj: object) -> object:
    """Reverse key order and write integers as floats (12 -> 12.0)."""
    if isinstance(obj, dict):
        return {k: _reformat(obj[k]) for k in reversed(list(obj))}
    if isinstance(obj, list):
        return [_reformat(v) for v in obj]
    if isinstance(obj, int) and not isinstance(obj, bool):
        return float(obj)
    return obj


@pytest.mark.parametrize("space", ALL)
def test_identity_is_canonical_json_and_any_formatting_maps_to_it(space: str) -> None:
    sp = get_space(space)
    for arch in sp.sample(4, seed=3):
        obj = json.loads(arch)
        assert arch == json.dumps(obj, sort_keys=True, separators=(",", ":"))
        assert sp.canonical(arch) == arch == sp.format(sp.parse(arch))
        assert sp.canonical(json.dumps(_reformat(obj), indent=2)) == arch
        assert sp.canonical_object(obj) == arch


def test_the_published_records_are_identities_of_their_spaces() -> None:
    for space, net, _params, _flops, _acc in RECORDS:
        sp = get_space(space)
        text = json.dumps(net, indent=1)
        assert sp.canonical(text) == json.dumps(net, sort_keys=True, separators=(",", ":"))


_GOOD_CELL = json.loads(get_space("nds-darts").sample(1, 0)[0])
_GOOD_RESNEXT = RECORDS[0][1]


def _with(base: dict, path: tuple, value: object) -> str:
    obj = json.loads(json.dumps(base))
    at = obj
    for k in path[:-1]:
        at = at[k]
    if value is KeyError:
        del at[path[-1]]
    else:
        at[path[-1]] = value
    return json.dumps(obj)


@pytest.mark.parametrize(
    ("space", "text", "fragment"),
    [
        ("nds-darts", "not json", "Not a JSON config"),
        ("nds-darts", "[1, 2]", "must be a JSON object"),
        ("nds-darts", '{"width": NaN}', "Not a JSON config"),
        ("nds-darts", _with(_GOOD_CELL, ("width",), KeyError), "lacks 'width'"),
        ("nds-darts", _with(_GOOD_CELL, ("stem",), 3), "unknown key(s) 'stem'"),
        ("nds-darts", _with(_GOOD_CELL, ("width",), 16.5), "width must be an integer"),
        ("nds-darts", _with(_GOOD_CELL, ("depth",), 0), "depth must be at least 1"),
        ("nds-darts", _with(_GOOD_CELL, ("aux",), 1), "aux must be true or false"),
        (
            "nds-darts",
            _with(_GOOD_CELL, ("genotype", "normal", 0, 0), "conv_9x9"),
            "unknown operation",
        ),  # noqa: E501
        (
            "nds-darts",
            _with(_GOOD_CELL, ("genotype", "normal", 0, 1), 2),
            "node 0 can read states 0..1",
        ),  # noqa: E501
        ("nds-darts", _with(_GOOD_CELL, ("genotype", "reduce_concat"), [1]), "not a node"),
        (
            "nds-darts",
            _with(_GOOD_CELL, ("genotype", "normal"), [["skip_connect", 0]]),
            "must hold 8",
        ),  # noqa: E501
        ("nds-enas", json.dumps(_GOOD_CELL), "must hold 10"),
        ("nds-darts-in", _with(_GOOD_CELL, ("width",), 17), "must be even"),
        ("nds-resnet", json.dumps(_GOOD_RESNEXT), 'block_type must be "res_basic_block"'),
        ("nds-resnext-a", _with(_GOOD_RESNEXT, ("ds", 0), 2), "ds[0] is the stem"),
        ("nds-resnext-a", _with(_GOOD_RESNEXT, ("ss", 2), 3), "ss[2] must be 1 or 2"),
        ("nds-resnext-a", _with(_GOOD_RESNEXT, ("ws",), [16, 64]), "same length"),
        ("nds-resnext-a", _with(_GOOD_RESNEXT, ("num_gs", 1), 3), "not divisible by num_gs[1]"),
        ("nds-resnext-a", _with(_GOOD_RESNEXT, ("bot_muls",), []), "needs bot_muls"),
        ("nds-resnet", _with(RECORDS[1][1], ("num_gs",), [1, 1, 1, 1]), "must be empty"),
    ],
)
def test_bad_configs_are_refused_with_one_line(space: str, text: str, fragment: str) -> None:
    with pytest.raises(InvalidArchitectureError) as info:
        get_space(space).canonical(text)
    msg = str(info.value)
    assert fragment in msg and "\n" not in msg
    assert msg.startswith(f"Invalid {space} config:")


# -- mutation -----------------------------------------------------------------------------


@pytest.mark.parametrize("space", ["nds-darts", "nds-nasnet-in", "nds-resnet", "nds-resnext-b"])
def test_mutation_changes_exactly_one_position(space: str) -> None:
    sp = get_space(space)
    rng = np.random.default_rng(0)
    for arch in sp.sample(10, seed=5):
        child = sp.mutate(arch, rng)
        assert sp.canonical(child) == child != arch
        a, b = sp.features(arch), sp.features(child)
        assert sum(x != y for x, y in zip(a, b, strict=True)) == 1
        if space not in ANYNET:
            _check_cell(space, json.loads(child))
        else:
            _check_anynet(space, json.loads(child))


# -- analytic costs against NDS's published records ---------------------------------------


@pytest.mark.parametrize(("space", "net", "params", "flops", "acc"), RECORDS)
def test_analytic_params_equal_the_published_records(
    space: str, net: dict, params: int, flops: int, acc: float
) -> None:
    assert get_space(space).costs(json.dumps(net)).params == params


def test_a_larger_classifier_adds_exactly_its_weights() -> None:
    sp = get_space("nds-resnet")
    arch = json.dumps(RECORDS[1][1])
    c10, c100 = sp.costs(arch, get_shape("cifar10")), sp.costs(arch, get_shape("cifar100"))
    assert c100.params - c10.params == 90 * (40 + 1)  # 40 features -> 90 more classes
    assert c100.flops - c10.flops == 90 * (40 + 1)
    assert c100.relu_count == c10.relu_count
