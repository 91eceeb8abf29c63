"""Every zero-cost proxy against an independent re-implementation of its reference code
(tests/proxy_references.py), on the same networks, weights, batch and labels: networks
built by the space builders (NATS-Bench TSS and SSS) and a plain hand-written module.

nasfilter's values come from the path the engine takes: one ``ArchState`` per network,
every metric through ``compute_score`` (so shared passes and fresh copies are exercised
as in a run). Tolerances: 1e-6 relative (float32 computations), 1e-9 for synflow (float64),
exact for counts.
"""

from __future__ import annotations

import math

import proxy_references as ref
import pytest
import torch
from torch import nn

from nasfilter.datasets import get_shape
from nasfilter.metrics import get_metric
from nasfilter.metrics.inputs import ArchState, compute_score
from nasfilter.metrics.registry import ScoreContext
from nasfilter.spaces import get_space

pytestmark = pytest.mark.usefixtures("one_torch_thread")

K = 8
SEED = 11
TSS_ARCH = "|nor_conv_3x3~0|+|nor_conv_1x1~0|avg_pool_3x3~1|+|skip_connect~0|none~1|nor_conv_3x3~2|"
SSS_ARCH = "8:16:8:16:8"
PROXIES = (
    "grad_norm snip grasp fisher jacob_cov synflow plain l2_norm epe_nas zen ntk_cond "
    "linear_regions zico meco swap swap_reg az_expressivity az_progressivity az_trainability"
).split()


class PlainNet(nn.Module):
    """A hand-written CNN: no stem/cells attributes, its own layer layout."""

    def __init__(self, classes: int = 10) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 12, 3, padding=1, bias=True)
        self.bn1 = nn.BatchNorm2d(12)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(12, 16, 3, stride=2, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(16)
        self.act2 = nn.ReLU()
        self.conv3 = nn.Conv2d(16, 16, 1)
        self.act3 = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(16, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act1(self.bn1(self.conv1(x)))
        x = self.act2(self.bn2(self.conv2(x)))
        x = self.act3(self.conv3(x)) + x
        return self.fc(self.pool(x).flatten(1))


def build(case: str) -> nn.Module:
    torch.manual_seed(1234)
    if case == "tss":
        return get_space("nats-tss").build(TSS_ARCH, get_shape("cifar10"))
    if case == "sss":
        return get_space("nats-sss").build(SSS_ARCH, get_shape("cifar10"))
    return PlainNet()


def batch(k: int = K, classes: int = 10, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(k, 3, 32, 32, generator=g)
    y = torch.tensor([0, 1, 2, 0, 1, 2, 3, 1][:k]) % classes  # groups and one singleton
    return x, y


SETTINGS = {"swap_mu": 0.0, "swap_sigma": 1.0}  # replaced per network below


class Case:
    def __init__(self, name: str) -> None:
        self.net = build(name)
        self.x, self.y = batch()
        self.shape = get_shape("cifar10")
        p = float(ref.ref_param_thousands(self.net))
        self.settings = {"swap_mu": p + 10.0, "swap_sigma": 1000.0}
        self.state = ArchState(
            self.net,
            shape=self.shape,
            batch_size=K,
            device=torch.device("cpu"),
            seed=SEED,
            ctx=ScoreContext(dataset=self.shape, settings=self.settings),
            inputs=self.x,
            targets=self.y,
        )
        self.scores = {n: compute_score(get_metric(n), self.state) for n in PROXIES}
        self._swap: float | None = None

    def ref_swap(self) -> float:
        if self._swap is None:
            self._swap = ref.ref_swap(self.net, self.x, SEED)
        return self._swap

    def reference(self, name: str) -> float:
        net, x, y, shape = self.net, self.x, self.y, (K, 3, 32, 32)
        if name == "grad_norm":
            return ref.ref_grad_norm(net, x, y)
        if name == "snip":
            return ref.ref_snip(net, x, y)
        if name == "grasp":
            return ref.ref_grasp(net, x, y)
        if name == "fisher":
            return ref.ref_fisher(net, x, y)
        if name == "plain":
            return ref.ref_plain(net, x, y)
        if name == "l2_norm":
            return ref.ref_l2_norm(net)
        if name == "jacob_cov":
            return ref.ref_jacob_cov(net, x)
        if name == "epe_nas":
            return ref.ref_epe_nas(net, x, y)
        if name == "zen":
            return ref.ref_zen(net, SEED, shape)
        if name == "ntk_cond":
            return ref.ref_ntk_cond(net, x)
        if name == "linear_regions":
            return ref.ref_linear_regions(net, SEED, 501, shape)
        if name == "zico":
            return ref.ref_zico(net, x, y)
        if name == "meco":
            return ref.ref_meco(net, SEED, 401, shape)
        if name == "swap":
            return self.ref_swap()
        if name == "swap_reg":
            factor = math.exp(
                -((float(ref.ref_param_thousands(net)) - self.settings["swap_mu"]) ** 2)
                / self.settings["swap_sigma"]
            )
            return self.ref_swap() * factor
        if name.startswith("az_"):
            return ref.ref_az(net, SEED, shape)[name]
        raise KeyError(name)


_CASES: dict[str, Case] = {}


def case(name: str) -> Case:
    if name not in _CASES:
        _CASES[name] = Case(name)
    return _CASES[name]


@pytest.mark.parametrize("net", ["tss", "sss", "plain"])
@pytest.mark.parametrize("name", [p for p in PROXIES if p != "synflow"])
def test_proxy_equals_its_reference(net: str, name: str) -> None:
    c = case(net)
    got = c.scores[name]
    want = c.reference(name)
    assert got.status == "ok", (name, got)
    assert math.isfinite(want)
    if name in ("linear_regions", "swap"):
        assert got.value == pytest.approx(want, rel=1e-6)  # counts (Σ 1/multiplicity)
        assert got.value == int(got.value)
    else:
        assert got.value == pytest.approx(want, rel=1e-6, abs=1e-9), (name, got.value, want)


@pytest.mark.parametrize("net", ["tss", "sss", "plain"])
def test_synflow_is_the_log_of_the_float64_reference(net: str) -> None:
    c = case(net)
    raw = ref.ref_synflow_sum(c.net, c.x)
    got = c.scores["synflow"]
    assert got.status == "ok"
    assert math.exp(got.value) == pytest.approx(raw, rel=1e-9)
    assert got.value == pytest.approx(math.log(raw), rel=1e-12)


def test_epe_nas_above_100_classes_uses_pairwise_differences() -> None:
    """ImageNet16-120: 120 logits, singleton classes skipped, Σ|s_c - s_c'| / classes."""
    shape = get_shape("imagenet16-120")
    torch.manual_seed(3)
    net = get_space("nats-sss").build(SSS_ARCH, shape)
    g = torch.Generator().manual_seed(9)
    x = torch.randn(K, 3, 16, 16, generator=g)
    y = torch.tensor([5, 7, 5, 7, 7, 119, 5, 0])
    state = ArchState(
        net,
        shape=shape,
        batch_size=K,
        device=torch.device("cpu"),
        seed=SEED,
        ctx=ScoreContext(dataset=shape),
        inputs=x,
        targets=y,
    )
    got = compute_score(get_metric("epe_nas"), state)
    assert got.status == "ok"
    assert got.value == pytest.approx(ref.ref_epe_nas(net, x, y), rel=1e-9)
    # and the rule differs from the <= 100-class one on the same Jacobian
    from nasfilter.metrics.measures.jacobian import epe_score

    jac, _ = ref.input_jacobian(net, x)
    assert epe_score(jac, y.numpy(), 120) != pytest.approx(epe_score(jac, y.numpy(), 100))


def test_swap_repeats_average_successive_reinitialisations() -> None:
    c = case("sss")
    state = ArchState(
        c.net,
        shape=c.shape,
        batch_size=K,
        device=torch.device("cpu"),
        seed=SEED,
        ctx=ScoreContext(dataset=c.shape, settings={"swap_repeats": 3}),
        inputs=c.x,
        targets=c.y,
    )
    got = compute_score(get_metric("swap"), state)
    assert got.value == pytest.approx(ref.ref_swap(c.net, c.x, SEED, repeats=3), rel=1e-12)


def test_shared_passes_are_computed_once_per_architecture() -> None:
    """grad_norm, snip, fisher, plain and grasp read one cross-entropy pass; jacob_cov and
    epe_nas one input-Jacobian pass; the AZ-NAS components one pass; swap/swap_reg one."""
    c = case("tss")
    assert {"zc_ce_grads", "input_jacobian", "az_nas", "swap"} <= set(c.state.memo)
    assert len(c.state.memo) == 4


@pytest.mark.parametrize("shape", [(3, 5), (4, 16, 32, 32), (64, 64, 8, 8), (7, 9, 11)])
def test_az_rademacher_draw_is_the_reference_bernoulli(shape: tuple[int, ...]) -> None:
    """AZ-NAS' Rademacher vectors: [uniform < 0.5] (nasfilter) is torch.bernoulli(0.5)
    (the reference) on the same generator stream, element for element."""
    g1, g2 = torch.Generator().manual_seed(11), torch.Generator().manual_seed(11)
    want = (torch.bernoulli(torch.full(shape, 0.5), generator=g1) - 0.5) * 2
    got = ((torch.rand(shape, generator=g2) < 0.5).to(torch.float32) - 0.5) * 2
    assert torch.equal(got, want)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))  # same use
