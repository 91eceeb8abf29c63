"""AZ-NAS on every space that builds networks (version 2): each network's
``extract_cell_features`` is its own forward pass cut at the blocks, the three components
are numbers on NAS-Bench-101 and NDS networks, µNAS' unpadded convolutions make
trainability (alone) an error that says why, and a block that does not read its input
has a zero Jacobian."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from nasfilter.datasets import get_shape
from nasfilter.metrics import compute, get_metric
from nasfilter.spaces import get_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")

AZ = ("az_expressivity", "az_progressivity", "az_trainability")


def _head(net: nn.Module, last: torch.Tensor) -> torch.Tensor:
    """Each network's classifier applied to its last feature map."""
    if hasattr(net, "head"):  # µNAS
        return net.head(last)  # type: ignore[no-any-return, operator]
    if hasattr(net, "fc"):  # NDS AnyNet
        return net.fc(net.pool(last).flatten(1))  # type: ignore[no-any-return, operator]
    if hasattr(net, "global_pooling"):  # NDS cell networks
        return net.classifier(net.global_pooling(last).flatten(1))  # type: ignore[no-any-return, operator]
    return net.classifier(last.mean(dim=(2, 3)))  # type: ignore[no-any-return, operator]


@pytest.mark.parametrize(
    ("space", "blocks"),
    [("nb101", lambda n: 10), ("nds-darts", None), ("nds-resnet", None), ("munas", None)],
)
def test_the_feature_maps_are_the_forward_pass_cut_at_the_blocks(space: str, blocks) -> None:  # type: ignore[no-untyped-def]
    sp = get_space(space)
    for arch in sp.sample(3, 7):
        torch.manual_seed(0)
        net = sp.build(arch, get_shape("cifar10")).eval()
        x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        with torch.no_grad():
            feats = net.extract_cell_features(x)
            assert torch.equal(_head(net, feats[-1]), net(x))
        assert all(f.dim() == 4 and f.shape[0] == 2 for f in feats)
        if blocks is not None:
            assert len(feats) == blocks(net)  # NB101: the stem and 3 x 3 cells
        if space == "nds-darts":
            assert len(feats) == len(net.cells) + 1  # the stem and every cell
        if space == "nds-resnet":
            assert len(feats) == 1 + sum(len(s) for s in net.stages)


@pytest.mark.parametrize("space", ["nb101", "nds-darts", "nds-resnet"])
def test_az_components_are_numbers_beyond_nats(space: str) -> None:
    sp = get_space(space)
    (arch,) = sp.sample(1, 3)
    torch.manual_seed(0)
    net = sp.build(arch, get_shape("cifar10"))
    x = torch.zeros(4, 3, 32, 32)
    for name in AZ:
        assert get_metric(name).version == "2"
        v = compute(name, net, x, seed=5)
        assert math.isfinite(v), (space, name, v)


@pytest.mark.parametrize("space", ["nb101", "nds-resnet", "nds-darts"])
def test_az_components_equal_the_reference_beyond_nats(space: str) -> None:
    """The AZ-NAS reference's computation (tests/proxy_references.py: per-cell backward
    passes, bernoulli draws, one spectrum at a time) on the network's feature maps."""
    import proxy_references as ref

    sp = get_space(space)
    shape = (4, 3, 32, 32)
    checked = 0
    for arch in sp.sample(3, 11):
        torch.manual_seed(0)
        net = sp.build(arch, get_shape("cifar10"))
        try:
            want = ref.ref_az(net, 5, shape)
        except RuntimeError:  # a cell that skips its input: the reference cannot grad it
            continue
        for name in AZ:
            got = compute(name, net, torch.zeros(shape), seed=5)
            assert got == pytest.approx(want[name], rel=1e-6, abs=1e-9), (space, name)
        checked += 1
    assert checked >= 2


def test_munas_unpadded_convolutions_make_trainability_alone_an_error() -> None:
    from nasfilter.metrics.inputs import ArchState, compute_score
    from nasfilter.metrics.registry import ScoreContext

    sp = get_space("munas")
    shape = get_shape("cifar10")
    seen = set()
    for arch in sp.sample(12, 0):
        torch.manual_seed(0)
        net = sp.build(arch, shape)
        with torch.no_grad():
            sizes = [f.shape[2] for f in net.extract_cell_features(torch.zeros(2, 3, 32, 32))]
        if all(a == b or a % b == 0 for a, b in zip(sizes, sizes[1:], strict=False)):
            continue  # nothing to refuse: the same size, or a whole factor smaller
        state = ArchState(
            net, shape=shape, batch_size=4, device=torch.device("cpu"), seed=1,
            ctx=ScoreContext(dataset=shape),
        )  # fmt: skip
        for name in ("az_expressivity", "az_progressivity"):
            assert math.isfinite(compute_score(get_metric(name), state).value)
        with pytest.raises(ValueError, match="AZ-NAS trainability compares consecutive"):
            compute_score(get_metric("az_trainability"), state)  # the run stores an error
        seen.add(arch)
    assert seen  # µNAS' valid convolutions shrink 32 -> 30 ...: some cell was refused


class _Bypass(nn.Module):
    """Two blocks; the second reads the network's input, not the first block's output."""

    def __init__(self) -> None:
        super().__init__()
        self.a = nn.Conv2d(3, 4, 3, padding=1)
        self.b = nn.Conv2d(3, 4, 3, padding=1)
        self.fc = nn.Linear(4, 2)

    def extract_cell_features(self, x: torch.Tensor) -> list[torch.Tensor]:
        return [self.a(x), self.b(x)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(sum(self.extract_cell_features(x)).mean(dim=(2, 3)))  # type: ignore[union-attr]


def test_a_block_that_does_not_read_its_input_has_a_zero_jacobian() -> None:
    """g_in = 0, so M = 0, σ_max = 0 and the block's score is -1/(0 + 1e-6) + 2."""
    torch.manual_seed(0)
    v = compute("az_trainability", _Bypass(), torch.zeros(4, 3, 8, 8), seed=2)
    assert v == -1.0 / 1e-6 + 2.0
