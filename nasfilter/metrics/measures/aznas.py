"""AZ-NAS' components (Lee and Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network
Architecture Search", CVPR 2024; cvlab-yonsei/AZ-NAS
``NB201/ZeroShotProxy/compute_az_nas_score.py``, features as ``NB201/custom/tss_model.py``).

The three share one computation (``inp.shared("az_nas")``):

1. re-initialise the network: ``kaiming_normal_(mode='fan_in', nonlinearity='relu')`` for
   Conv2d/Linear weights, biases 0, affine BatchNorm2d/GroupNorm weights 1 and biases 0
   (the reference's default ``init_method``), seeded;
2. one forward pass, training mode, of K seeded N(0, 1) inputs of the run's shape (the
   reference feeds Gaussian inputs to az_nas), keeping the feature maps F_0 ... F_L: the
   stem's output and every cell's output (``extract_cell_features``);
3. expressivity of a map (B, C, H, W): the entropy -Σ p log(p + 1e-8) of the normalised
   eigenvalues p = s/Σs of the C x C covariance of its B·H·W centred channel vectors;
   ``az_expressivity`` = Σ_l entropy(F_l), ``az_progressivity`` = min_l (entropy(F_l) -
   entropy(F_{l-1}));
4. trainability, for l = L ... 1: a Rademacher g_out (seeded) shaped like F_l, g_in =
   ∂F_l/∂F_{l-1}ᵀ g_out (one vector-Jacobian product); -inf when g_in equals g_out (an
   identity block); else (pixel-unshuffled when the resolution halves) M = g_inᵀ g_out /
   (B·H·W) and the score -σ_max - 1/(σ_max + 1e-6) + 2 from M's largest singular value;
   ``az_trainability`` = the mean.

AZ-NAS' fourth component, complexity, is FLOPs: nasfilter's ``flops`` metric (the
NATS-Bench counter, which AZ-NAS reads from the NATS-Bench API). The aggregate
(Σ log(rank/n) of the four) is not a metric here.

Precision: the covariance and its eigenvalues are computed in float64 (the reference:
float32). Feature maps of cells made of pooling and skip connections reach variances of
1e7 to 1e12 with near-zero directions; float32 then returns eigenvalues below -1e-8·Σs,
whose log is NaN (7 of the first 20 CIFAR-10 cells of the shipped NAS-Bench-201 sample).
The reference turns NaN into -inf; nasfilter keeps NaN with status ``nan``.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nasfilter.metrics.registry import Score, metric

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.inputs import MetricInput

_SOURCE = (
    "Lee and Ham, AZ-NAS: Assembling Zero-Cost Proxies for Network Architecture Search, "
    "CVPR 2024; cvlab-yonsei/AZ-NAS NB201/ZeroShotProxy/compute_az_nas_score.py"
)
_NEEDS = ("gradients", "fresh_network")


def expressivity_of(feat: Any) -> float:
    """Entropy of the normalised covariance spectrum of a (B, C, H, W) map's channels,
    in float64 (see the module doc)."""
    import torch

    b, c, h, w = feat.shape
    f = feat.permute(0, 2, 3, 1).reshape(b * h * w, c).to(torch.float64)
    f = f - f.mean(dim=0, keepdim=True)
    sigma = torch.mm(f.transpose(1, 0), f) / f.shape[0]
    s = torch.linalg.eigvalsh(sigma)
    p = s / s.sum()
    return float(((-p) * torch.log(p + 1e-8)).sum())


def trainability_of(g_in: Any, g_out: Any) -> float:
    """One block's score from g_in = Jᵀ g_out (both 4-D)."""
    import torch
    from torch import nn

    if g_out.shape == g_in.shape and bool(torch.all(g_in == g_out)):
        return -math.inf
    if g_out.shape[2] != g_in.shape[2] or g_out.shape[3] != g_in.shape[3]:
        g_in = nn.PixelUnshuffle(int(g_in.shape[2] / g_out.shape[2]))(g_in)
    bo, co, ho, wo = g_out.shape
    bi, ci, hi, wi = g_in.shape
    go = g_out.permute(0, 2, 3, 1).reshape(bo * ho * wo, co)
    gi = g_in.permute(0, 2, 3, 1).reshape(bi * hi * wi, ci)
    mat = torch.mm(gi.transpose(1, 0), go) / (bo * ho * wo)
    if mat.shape[0] < mat.shape[1]:
        mat = mat.transpose(0, 1)
    smax = float(torch.linalg.svdvals(mat).max())
    return -smax - 1.0 / (smax + 1e-6) + 2.0


def _az(inp: MetricInput) -> dict[str, float]:
    import numpy as np
    import torch

    from nasfilter.metrics.measures import _zc

    model = inp.model
    _zc.kaiming_fanin_init(model, _zc.generator(inp, _zc.SALT_AZ_WEIGHTS))
    x = inp.gaussian(salt=_zc.SALT_AZ_INPUT)
    rademacher = _zc.generator(inp, _zc.SALT_AZ_RADEMACHER)
    with _zc.mode(model, True):
        feats = _zc.cell_features(model, x)
        if len(feats) < 2:
            raise ValueError(f"AZ-NAS needs at least two feature maps; found {len(feats)}")
        ent = np.array([expressivity_of(f.detach()) for f in feats])
        scores = []
        for i in reversed(range(1, len(feats))):
            f_out, f_in = feats[i], feats[i - 1]
            # = (bernoulli(0.5) - 0.5) * 2, the reference's draw: for p = 0.5 torch's
            # bernoulli is [uniform < 0.5] on the same stream (a test holds them equal),
            # and a comparison is 3x faster
            draw = torch.rand(f_out.shape, generator=rademacher, dtype=torch.float32) < 0.5
            g_out = (draw.to(torch.float32) - 0.5) * 2
            g_out = g_out.to(device=f_out.device, dtype=f_out.dtype)
            (g_in,) = torch.autograd.grad(f_out, f_in, grad_outputs=g_out, retain_graph=False)
            scores.append(trainability_of(g_in, g_out))
    return {
        "expressivity": float(np.sum(ent)),
        "progressivity": float(np.min(ent[1:] - ent[:-1])),
        "trainability": float(np.mean(scores)),
    }


@metric(
    "az_expressivity",
    version="1",
    needs=_NEEDS,
    unit="nats",
    description=(
        "AZ-NAS expressivity: Σ over stem and cell outputs of the entropy of the "
        "normalised channel-covariance eigenvalues (kaiming fan-in re-init, seeded "
        "Gaussian inputs, BatchNorm in training mode)"
    ),
    source=_SOURCE,
)
def az_expressivity(inp: MetricInput) -> Score:
    return Score.of(inp.shared("az_nas", _az)["expressivity"])


@metric(
    "az_progressivity",
    version="1",
    needs=_NEEDS,
    unit="nats",
    description=(
        "AZ-NAS progressivity: the smallest increase of that entropy from one cell "
        "output to the next"
    ),
    source=_SOURCE,
)
def az_progressivity(inp: MetricInput) -> Score:
    return Score.of(inp.shared("az_nas", _az)["progressivity"])


@metric(
    "az_trainability",
    version="1",
    needs=_NEEDS,
    description=(
        "AZ-NAS trainability: mean over cells of -σ_max - 1/σ_max + 2, σ_max the largest "
        "singular value of the cell's Jacobian on Rademacher vectors (-inf for an "
        "identity cell); AZ-NAS' complexity term is the flops metric"
    ),
    source=_SOURCE,
)
def az_trainability(inp: MetricInput) -> Score:
    return Score.of(inp.shared("az_nas", _az)["trainability"])
