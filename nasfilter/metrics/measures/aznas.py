"""AZ-NAS' components (Lee and Ham, "AZ-NAS: Assembling Zero-Cost Proxies for Network
Architecture Search", CVPR 2024; cvlab-yonsei/AZ-NAS
``NB201/ZeroShotProxy/compute_az_nas_score.py``, features as ``NB201/custom/tss_model.py``).

The three share one computation (``inp.shared("az_nas")``):

1. re-initialise the network: ``kaiming_normal_(mode='fan_in', nonlinearity='relu')`` for
   Conv2d/Linear weights, biases 0, affine BatchNorm2d/GroupNorm weights 1 and biases 0
   (the reference's default ``init_method``), seeded;
2. one forward pass, training mode, of K seeded N(0, 1) inputs of the run's shape (the
   reference feeds Gaussian inputs to az_nas), keeping the feature maps F_0 ... F_L: the
   stem's output and every cell's output (``extract_cell_features``: NATS-Bench as
   AZ-NAS' ``tss_model.py``; NAS-Bench-101 the stem and its 9 cells; NDS cell networks
   the stem and every cell, AnyNets the stem and every block; µNAS every convolution
   layer, a stage's merged output for its last; see ``_zc.cell_features`` for other
   networks);
3. expressivity of a map (B, C, H, W): the entropy -Σ p log(p + 1e-8) of the normalised
   eigenvalues p = s/Σs of the C x C covariance of its B·H·W centred channel vectors;
   ``az_expressivity`` = Σ_l entropy(F_l), ``az_progressivity`` = min_l (entropy(F_l) -
   entropy(F_{l-1}));
4. trainability, for l = L ... 1: a Rademacher g_out (seeded) shaped like F_l, g_in =
   ∂F_l/∂F_{l-1}ᵀ g_out (one vector-Jacobian product); -inf when g_in equals g_out (an
   identity block); a block whose output does not read its input has g_in = 0; else
   (pixel-unshuffled when the resolution is reduced by a whole factor) M = g_inᵀ g_out /
   (B·H·W) and the score -σ_max - 1/(σ_max + 1e-6) + 2 from M's largest singular value;
   ``az_trainability`` = the mean. Consecutive maps of other resolutions (µNAS' unpadded
   convolutions: 32x32 then 30x30) have no such M: az_trainability is then an error
   status saying so, while the other two keep their values.

Version 2 (was 1): the feature maps of NAS-Bench-101, NDS and µNAS networks above (with
version 1 the three were errors there) and the zero Jacobian of an unread input (an
error before). NATS-Bench values are the same as version 1's, bit for bit.

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
    return expressivities([feat])[0]


def expressivities(feats: list[Any]) -> list[float]:
    """``expressivity_of`` of each map: the covariances one by one, their spectra in one
    batched ``eigvalsh`` per channel count (equal bit for bit to one call per map)."""
    import torch

    sigmas = []
    for feat in feats:
        b, c, h, w = feat.shape
        f = feat.permute(0, 2, 3, 1).reshape(b * h * w, c).to(torch.float64)
        f = f - f.mean(dim=0, keepdim=True)
        sigmas.append(torch.mm(f.transpose(1, 0), f) / f.shape[0])
    out = [0.0] * len(feats)
    for idx in _by_shape(sigmas).values():
        s = torch.linalg.eigvalsh(torch.stack([sigmas[i] for i in idx]))
        for i, row in zip(idx, s, strict=True):
            p = row / row.sum()
            out[i] = float(((-p) * torch.log(p + 1e-8)).sum())
    return out


def trainability_of(g_in: Any, g_out: Any) -> float:
    """One block's score from g_in = Jᵀ g_out (both 4-D)."""
    return trainabilities([(g_in, g_out)])[0]


def trainabilities(pairs: list[tuple[Any, Any]]) -> list[float]:
    """``trainability_of`` of each (g_in, g_out): the matrices one by one, their largest
    singular values in one batched ``svdvals`` per shape (equal bit for bit to one call
    per matrix)."""
    import torch
    from torch import nn

    out = [-math.inf] * len(pairs)
    mats: dict[int, Any] = {}
    for i, (g_in, g_out) in enumerate(pairs):
        if g_out.shape == g_in.shape and bool(torch.all(g_in == g_out)):
            continue  # an identity block: -inf
        if g_out.shape[2] != g_in.shape[2] or g_out.shape[3] != g_in.shape[3]:
            r = g_in.shape[2] // g_out.shape[2]
            if r < 2 or g_in.shape[2] != r * g_out.shape[2] or g_in.shape[3] != r * g_out.shape[3]:
                raise ValueError(
                    "AZ-NAS trainability compares consecutive feature maps of the same "
                    "resolution or one reduced by a whole factor; got "
                    f"{g_in.shape[2]}x{g_in.shape[3]} then {g_out.shape[2]}x{g_out.shape[3]}"
                )
            g_in = nn.PixelUnshuffle(r)(g_in)
        bo, co, ho, wo = g_out.shape
        bi, ci, hi, wi = g_in.shape
        go = g_out.permute(0, 2, 3, 1).reshape(bo * ho * wo, co)
        gi = g_in.permute(0, 2, 3, 1).reshape(bi * hi * wi, ci)
        mat = torch.mm(gi.transpose(1, 0), go) / (bo * ho * wo)
        if mat.shape[0] < mat.shape[1]:
            mat = mat.transpose(0, 1)
        mats[i] = mat
    keys = list(mats)
    for idx in _by_shape([mats[k] for k in keys]).values():
        smax = torch.linalg.svdvals(torch.stack([mats[keys[j]] for j in idx])).amax(dim=-1)
        for j, v in zip(idx, smax.tolist(), strict=True):
            out[keys[j]] = -v - 1.0 / (v + 1e-6) + 2.0
    return out


def _by_shape(tensors: list[Any]) -> dict[tuple[int, ...], list[int]]:
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault(tuple(t.shape), []).append(i)
    return groups


def _az(inp: MetricInput) -> dict[str, Any]:
    import numpy as np
    import torch

    from nasfilter.metrics.measures import _zc

    model = inp.model
    _zc.kaiming_fanin_init(model, _zc.generator(inp, _zc.SALT_AZ_WEIGHTS))
    x = inp.gaussian(salt=_zc.SALT_AZ_INPUT)
    rademacher = _zc.generator(inp, _zc.SALT_AZ_RADEMACHER)
    with _zc.mode(model, True):
        # ins[i]: the input of the block whose output is feats[i + 1], a leaf of its own
        # graph when the network has stem and cells (one backward pass then serves every
        # block: the same vector-Jacobian products, bit for bit, as one pass per block)
        feats, ins = _zc.cell_features(model, x, separate=True)
        if len(feats) < 2:
            raise ValueError(f"AZ-NAS needs at least two feature maps; found {len(feats)}")
        ent = np.array(expressivities([f.detach() for f in feats]))
        order = list(reversed(range(1, len(feats))))
        g_outs: dict[int, Any] = {}
        pairs: list[tuple[Any, Any]] = []
        for i in order:
            f_out = feats[i]
            # = (bernoulli(0.5) - 0.5) * 2, the reference's draw: for p = 0.5 torch's
            # bernoulli is [uniform < 0.5] on the same stream (a test holds them equal),
            # and a comparison is 3x faster
            draw = torch.rand(f_out.shape, generator=rademacher, dtype=torch.float32) < 0.5
            g_out = (draw.to(torch.float32) - 0.5) * 2
            g_outs[i] = g_out.to(device=f_out.device, dtype=f_out.dtype)
            if ins is None:  # one pass per block, in turn
                # a block whose output does not read its input (a cell wired to the one
                # before it only) has a zero Jacobian: g_in = 0
                (g_in,) = torch.autograd.grad(
                    f_out, feats[i - 1], grad_outputs=g_outs[i], retain_graph=False,
                    allow_unused=True, materialize_grads=True,
                )  # fmt: skip
                pairs.append((g_in, g_outs[i]))
        if ins is not None:  # one pass for every block
            g_ins = torch.autograd.grad(
                [feats[i] for i in order],
                [ins[i - 1] for i in order],
                grad_outputs=[g_outs[i] for i in order],
                allow_unused=True,
                materialize_grads=True,
            )
            pairs = [(g_in, g_outs[i]) for g_in, i in zip(g_ins, order, strict=True)]
        trainability: float | ValueError
        try:
            trainability = float(np.mean(trainabilities(pairs)))
        except ValueError as e:  # az_trainability's error alone (see the module doc)
            trainability = e
    return {
        "expressivity": float(np.sum(ent)),
        "progressivity": float(np.min(ent[1:] - ent[:-1])),
        "trainability": trainability,
    }


@metric(
    "az_expressivity",
    version="2",
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
    version="2",
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
    version="2",
    needs=_NEEDS,
    description=(
        "AZ-NAS trainability: mean over cells of -σ_max - 1/σ_max + 2, σ_max the largest "
        "singular value of the cell's Jacobian on Rademacher vectors (-inf for an "
        "identity cell); AZ-NAS' complexity term is the flops metric"
    ),
    source=_SOURCE,
)
def az_trainability(inp: MetricInput) -> Score:
    value = inp.shared("az_nas", _az)["trainability"]
    if isinstance(value, ValueError):
        raise value
    return Score.of(value)
