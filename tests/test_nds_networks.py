"""NDS networks: built == pycls's reference (tests/fixtures/pycls_nds.py) in structure,
seeded weights and outputs; analytic figures == the measured network; published
records' params (and, for AnyNet, flops) reproduced by the built network."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from nasfilter.datasets import get_shape
from nasfilter.metrics.probe import ModelProbe
from nasfilter.spaces import get_space
from tests.fixtures import pycls_nds as ref
from tests.fixtures.nds_records import RECORDS

CELL = ["nds-amoeba", "nds-darts", "nds-enas", "nds-nasnet", "nds-pnas"]
CELL_IN = [f"{s}-in" for s in CELL]
ANYNET = ["nds-resnet", "nds-resnext-a", "nds-resnext-b", "nds-vanilla"]


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _reference(space: str, arch: str, num_classes: int) -> nn.Module:
    net = json.loads(arch)
    if space in ANYNET:
        return ref.anynet_from_nds(net, num_classes)
    return ref.cell_network_from_nds(net, num_classes, imagenet=space.endswith("-in"))


def _small(space: str, arch: str) -> str:
    """The same design, cheap to run: width 16 and 4 cells, or stages of at most 2 blocks."""
    net = json.loads(arch)
    if space in ANYNET:
        net["ds"] = [1] + [min(d, 2) for d in net["ds"][1:]]
    else:
        net["width"], net["depth"] = 16, 4
    return get_space(space).canonical_object(net)


def _shapes(m: nn.Module) -> list[tuple[int, ...]]:
    return [tuple(t.shape) for t in m.state_dict().values()]


@pytest.mark.parametrize("space", CELL + CELL_IN + ANYNET)
def test_parameters_equal_pycls_on_a_seeded_sample(space: str) -> None:
    """Full-size sampled networks, built on the meta device (no memory, no compute):
    the same parameter and buffer shapes, in the same order, as pycls's."""
    sp = get_space(space)
    shape = sp.shape()
    for arch in sp.sample(3, seed=11):
        with torch.device("meta"):
            mine = sp.build(arch, shape)
            theirs = _reference(space, arch, shape.num_classes)
        assert _shapes(mine) == _shapes(theirs)
        n = sum(p.numel() for p in mine.parameters())
        assert n == sum(p.numel() for p in theirs.parameters()) == sp.costs(arch).params


@pytest.mark.parametrize("space", CELL + ["nds-darts-in"] + ANYNET)
def test_seeded_build_is_pycls_s_network_weight_for_weight_and_output_for_output(
    space: str,
) -> None:
    sp = get_space(space)
    shape = sp.shape()
    arch = _small(space, sp.sample(1, seed=2)[0])
    torch.manual_seed(123)
    mine = sp.build(arch, shape)
    torch.manual_seed(123)
    theirs = _reference(space, arch, shape.num_classes)
    a, b = list(mine.state_dict().values()), list(theirs.state_dict().values())
    assert len(a) == len(b) and all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    x = torch.randn(2, *shape.input_shape(1)[1:], generator=torch.Generator().manual_seed(0))
    for training in (False, True):
        mine.train(training)
        theirs.train(training)
        with torch.no_grad():
            out = mine(x)
            assert out.shape == (2, shape.num_classes)
            torch.testing.assert_close(out, theirs(x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("space", CELL + ANYNET)
def test_analytic_figures_equal_the_measured_network(space: str) -> None:
    sp = get_space(space)
    archs = sp.sample(2, seed=4)
    for arch, shape_name in zip(archs, ("cifar10", "imagenet16-120"), strict=True):
        arch = _small(space, arch)
        shape = get_shape(shape_name)
        m = sp.build(arch, shape)
        probe = ModelProbe(m, torch.zeros(1, *shape.input_shape(1)[1:]), bn_mode="eval")
        c = sp.costs(arch, shape)
        assert (probe.param_count(), probe.relu_count(), probe.flops()) == (
            c.params,
            c.relu_count,
            c.flops,
        )


@pytest.mark.parametrize(("width", "depth"), [(5, 1), (3, 2), (2, 3), (7, 5)])
def test_shallow_and_odd_width_cell_networks(width: int, depth: int) -> None:
    """Depths below 3 put both reduction cells at the start (or in one place); odd
    widths are valid on CIFAR. Analytic == measured == pycls, output for output."""
    sp = get_space("nds-darts")
    net = json.loads(sp.sample(1, seed=width)[0])
    net["width"], net["depth"] = width, depth
    arch = sp.canonical_object(net)
    torch.manual_seed(0)
    mine = sp.build(arch).eval()
    torch.manual_seed(0)
    theirs = _reference("nds-darts", arch, 10).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(mine(x), theirs(x), rtol=1e-5, atol=1e-6)
    probe = ModelProbe(mine, x, bn_mode="eval")
    c = sp.costs(arch)
    assert (probe.param_count(), probe.relu_count(), probe.flops()) == (
        c.params,
        c.relu_count,
        c.flops,
    )


@pytest.mark.parametrize("space", ["nds-nasnet-in", "nds-amoeba-in"])
def test_analytic_figures_equal_the_measured_imagenet_network(space: str) -> None:
    sp = get_space(space)
    arch = _small(space, sp.sample(1, seed=9)[0])
    m = sp.build(arch)
    probe = ModelProbe(m, torch.zeros(1, 3, 224, 224), bn_mode="eval").run()
    assert probe.output.shape == (1, 1000)
    c = sp.costs(arch)
    assert (probe.param_count(), probe.relu_count(), probe.flops()) == (
        c.params,
        c.relu_count,
        c.flops,
    )


def _bn_elements(m: nn.Module, x: torch.Tensor) -> int:
    count = [0]

    def hook(mod: nn.Module, inp: object, out: torch.Tensor) -> None:
        count[0] += out[0].numel()

    handles = [b.register_forward_hook(hook) for b in m.modules() if isinstance(b, nn.BatchNorm2d)]
    m.eval()
    with torch.no_grad():
        m(x)
    for h in handles:
        h.remove()
    return count[0]


@pytest.mark.parametrize(("space", "net", "params", "flops", "acc"), RECORDS)
def test_built_networks_reproduce_the_published_records(
    space: str, net: dict, params: int, flops: int, acc: float
) -> None:
    sp = get_space(space)
    arch = sp.canonical_object(net)
    with torch.device("meta"):
        assert sum(p.numel() for p in sp.build(arch).parameters()) == params
    if space in ANYNET:
        # NDS's flops for AnyNet: conv/linear MACs + bias adds (nasfilter's flops) plus
        # 5 per BatchNorm output element, measured here on the built network
        m = sp.build(arch)
        x = torch.zeros(1, 3, 32, 32)
        assert ModelProbe(m, x, bn_mode="eval").flops() + 5 * _bn_elements(m, x) == flops
