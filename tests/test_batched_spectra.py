"""MeCo's and AZ-NAS' batched forms against their one-at-a-time forms, bit for bit.

MeCo computes ~175 correlation spectra per NATS-Bench cell and AZ-NAS 18 covariance
spectra, 17 vector-Jacobian products and 17 singular value decompositions; nasfilter
batches them by shape (``min_corr_eigs``, ``expressivities``, ``trainabilities``) and
runs one backward pass over cells whose graphs are kept separate
(``cell_features(..., separate=True)``). None of this may change a value: every test here
compares with ``==``, not a tolerance.
"""

from __future__ import annotations

import math

import pytest
import torch

from nasfilter.datasets import get_shape
from nasfilter.metrics import compute
from nasfilter.metrics.inputs import seeded_generator
from nasfilter.metrics.measures import _zc, aznas, meco
from nasfilter.spaces import get_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")

TSS_ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"


def _same(a: float, b: float) -> bool:
    return a == b or (math.isnan(a) and math.isnan(b))


def _one_corr_eig(fea: torch.Tensor) -> float:
    """The reference's steps on one matrix: torch.corrcoef, NaN/inf -> 0, eigenvalues."""
    c, n = fea.shape
    if c == 1:
        return 1.0
    if n < 2:
        return 0.0
    corr = torch.nan_to_num(torch.corrcoef(fea), nan=0.0, posinf=0.0, neginf=0.0)
    return float(torch.linalg.eigvalsh(corr)[0])


def test_min_corr_eigs_equal_corrcoef_one_matrix_at_a_time() -> None:
    g = torch.Generator().manual_seed(0)
    feas = []
    for c, n in [(16, 1024), (16, 1024), (32, 256), (16, 1024), (1, 64), (10, 1), (32, 256)]:
        feas.append(torch.relu(torch.randn(c, n, generator=g)) * 3.0 + 1.0)
    feas[2][5] = 7.0  # a constant channel: NaN correlations, set to 0
    feas.append(torch.zeros(8, 16))  # every channel constant
    got = meco.min_corr_eigs(feas)
    want = [_one_corr_eig(f) for f in feas]
    assert len(got) == len(feas)
    assert all(_same(a, b) for a, b in zip(got, want, strict=True)), (got, want)
    assert got[4] == 1.0 and got[5] == 0.0  # one channel; one position
    assert got[0] != got[1]  # different matrices of one shape keep their own values


@pytest.mark.parametrize("memory_format", ["contiguous", "channels_last"])
def test_meco_does_not_depend_on_when_the_spectra_are_computed(
    memory_format: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """All maps at the end, or each one as soon as it is seen: the same sum, bit for bit."""
    sp = get_space("nats-tss")

    def run() -> float:
        torch.manual_seed(5)
        net = sp.build(TSS_ARCH, get_shape("cifar10"))
        fmt = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}[
            memory_format
        ]
        x = torch.zeros(4, 3, 32, 32).contiguous(memory_format=fmt)
        return compute("meco", net.to(memory_format=fmt), x, seed=3)

    together = run()
    monkeypatch.setattr(meco, "_PENDING_BYTES", 0)
    one_by_one = run()
    assert math.isfinite(together)
    assert together == one_by_one


def test_meco_reads_each_map_as_it_was_when_its_module_returned_it() -> None:
    """A map changed in place after its hook ran is read as it was (its copy is taken
    when the hook runs, not when the spectra are computed)."""

    class InPlace(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 6, 3, padding=1)
            self.act = torch.nn.ReLU(inplace=True)
            self.fc = torch.nn.Linear(6, 2)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            y = self.act(self.conv(x))  # changes conv's output in place
            return self.fc(y.mean((2, 3)))

    torch.manual_seed(0)
    net = InPlace()
    got = compute("meco", net, torch.zeros(2, 3, 32, 32), seed=1)
    x = torch.randn(1, 3, 32, 32, generator=seeded_generator(1 * 1_000_003 + 401))
    with torch.no_grad():
        pre = net.conv(x)
        post = torch.relu(pre)
    want = _one_corr_eig(pre[0].reshape(6, -1)) + _one_corr_eig(post[0].reshape(6, -1))
    assert got == pytest.approx(want, rel=1e-6)
    assert _one_corr_eig(pre[0].reshape(6, -1)) != _one_corr_eig(post[0].reshape(6, -1))


def _tss_features(separate: bool) -> tuple[list[torch.Tensor], object]:
    sp = get_space("nats-tss")
    torch.manual_seed(2)
    net = sp.build(TSS_ARCH, get_shape("cifar10"))
    net.train(True)
    x = torch.randn(4, 3, 32, 32, generator=torch.Generator().manual_seed(4))
    return _zc.cell_features(net, x, separate=separate)  # type: ignore[no-any-return]


def test_one_backward_over_separate_cells_equals_one_per_cell() -> None:
    feats = _tss_features(False)
    sep, ins = _tss_features(True)
    assert ins is not None and len(ins) == len(sep) - 1 == 17
    assert all(torch.equal(a, b) for a, b in zip(feats, sep, strict=True))
    g = torch.Generator().manual_seed(7)
    order = list(reversed(range(1, len(feats))))
    gos = {i: torch.randn(feats[i].shape, generator=g) for i in order}
    one_each = [
        torch.autograd.grad(feats[i], feats[i - 1], grad_outputs=gos[i], retain_graph=True)[0]
        for i in order
    ]
    joint = torch.autograd.grad(
        [sep[i] for i in order], [ins[i - 1] for i in order], grad_outputs=[gos[i] for i in order]
    )
    assert all(torch.equal(a, b) for a, b in zip(one_each, joint, strict=True))
    # and the cells' gradients do not leak into each other: not the full backward
    full = torch.autograd.grad(feats[-1], feats[0], grad_outputs=gos[len(feats) - 1])[0]
    assert not torch.equal(full, joint[-1])


def test_batched_expressivity_and_trainability_equal_one_at_a_time() -> None:
    feats = [f.detach() for f in _tss_features(False)]
    batched = aznas.expressivities(feats)
    assert batched == [aznas.expressivity_of(f) for f in feats]
    assert len({round(v, 12) for v in batched}) > 3  # distinct maps, distinct values
    g = torch.Generator().manual_seed(1)
    pairs = [(torch.randn(f.shape, generator=g), torch.randn(f.shape, generator=g)) for f in feats]
    pairs.append((feats[3], feats[3]))  # an identity block: -inf
    pairs.append((torch.randn(4, 16, 32, 32, generator=g), torch.randn(4, 32, 16, 16, generator=g)))
    got = aznas.trainabilities(pairs)
    want = []
    for gi, go in pairs:
        want.append(aznas.trainabilities([(gi, go)])[0])
    assert got == want
    assert got[-2] == -math.inf
    assert all(math.isfinite(v) for v in got[:-2] + got[-1:])


def test_az_single_forms_keep_their_definition() -> None:
    """expressivity_of / trainability_of: the documented formulas, computed directly."""
    g = torch.Generator().manual_seed(3)
    f = torch.randn(2, 5, 4, 4, generator=g)
    m = f.permute(0, 2, 3, 1).reshape(-1, 5).double()
    m = m - m.mean(0, keepdim=True)
    s = torch.linalg.eigvalsh(m.T @ m / m.shape[0])
    p = s / s.sum()
    assert aznas.expressivity_of(f) == pytest.approx(float(-(p * torch.log(p + 1e-8)).sum()))
    gi, go = torch.randn(2, 5, 4, 4, generator=g), torch.randn(2, 3, 4, 4, generator=g)
    mat = gi.permute(0, 2, 3, 1).reshape(-1, 5).T @ go.permute(0, 2, 3, 1).reshape(-1, 3) / 32
    smax = float(torch.linalg.svdvals(mat).max())
    assert aznas.trainability_of(gi, go) == pytest.approx(-smax - 1 / (smax + 1e-6) + 2)
