"""TE-NAS' two indicators (Chen, Gong, Wang, "Neural Architecture Search on ImageNet in
Four GPU Hours: A Theoretically Inspired Perspective", ICLR 2021; VITA-Group/TENAS
``lib/procedures/ntk.py`` and ``lib/procedures/linear_region_counter.py``), scored per
architecture as the stand-alone ports do (idstcv/ZenNAS and cvlab-yonsei/AZ-NAS
``ZeroShotProxy/compute_te_nas_score.py``: one batch, the network as built, training
mode).

- ntk_cond: the condition number λ_max/λ_min of the empirical NTK Θ = G Gᵀ on the run's
  batch, G[i] the gradient of Σ_c logit[i, c] with respect to every parameter whose name
  contains "weight" (conv, BatchNorm and linear weights; no biases), one backward pass per
  sample (``logit[i:i+1].backward(ones)``), BatchNorm in training mode. Lower is better.
  nasfilter forms Θ and its eigenvalues in float64 (the reference: float32); a Θ whose
  smallest eigenvalue is at most K·ε·λ_max (ε the float64 machine epsilon: numerically
  zero) is singular: +inf with status ``singular`` (the reference's ratio of a
  numerically zero eigenvalue is noise, and its NaN -> 100000 a placeholder).
- linear_regions: the number of distinct ReLU activation patterns among K Gaussian
  N(0, 1) inputs of the run's shape (the ports' ``torch.randn(input_size)``; the original
  TE-NAS counts 3x3 crops through a thin supernet, which does not apply to one network):
  the outputs of every ``nn.ReLU`` module with a 4-D input, concatenated per sample; two
  samples are in the same region when every sign agrees. Counted exactly (the reference's
  Σ 1/multiplicity in half precision equals it). At most K.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from nasfilter.metrics.registry import Score, metric

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.inputs import MetricInput

_TENAS = (
    "Chen, Gong, Wang, Neural Architecture Search on ImageNet in Four GPU Hours: "
    "A Theoretically Inspired Perspective, ICLR 2021"
)


@metric(
    "ntk_cond",
    version="1",
    higher_is_better=False,
    needs=("data", "gradients", "fresh_network"),
    description=(
        "condition number λ_max/λ_min of the NTK G Gᵀ on the batch, G[i] = ∂Σ_c logit[i,c]"
        "/∂(every parameter named *weight*), BatchNorm in training mode; float64 "
        "eigenvalues; +inf with status 'singular' when λ_min <= K·ε·λ_max"
    ),
    source=(
        f"{_TENAS}; VITA-Group/TENAS lib/procedures/ntk.py (get_ntk_n); per-architecture "
        "use as cvlab-yonsei/AZ-NAS NB201/ZeroShotProxy/compute_te_nas_score.py"
    ),
)
def ntk_cond(inp: MetricInput) -> Score:
    import torch

    from nasfilter.metrics.measures import _zc

    model = inp.model
    params = [p for name, p in model.named_parameters() if "weight" in name and p.requires_grad]
    x, _ = _zc.batch_of(inp)
    k = x.shape[0]
    gram = torch.zeros(k, k, dtype=torch.float64, device=x.device)
    with _zc.mode(model, True):
        y = _zc.logits(model, x)
        rows = []
        for i in range(k):
            gs = torch.autograd.grad(
                y[i : i + 1],
                params,
                grad_outputs=torch.ones_like(y[i : i + 1]),
                retain_graph=i < k - 1,
                allow_unused=True,
            )
            rows.append([g.detach().reshape(-1) for g in gs if g is not None])
    # Θ = Σ_layers G_l G_lᵀ in float64, one layer at a time (no K x P float64 copy)
    for layer in range(len(rows[0])):
        g = torch.stack([r[layer] for r in rows]).to(dtype=torch.float64)
        gram += g @ g.T
    ev = torch.linalg.eigvalsh(gram)
    lo, hi = float(ev[0]), float(ev[-1])
    if math.isnan(lo) or math.isnan(hi):
        return Score(math.nan, "nan")
    if lo <= abs(hi) * k * 2.220446049250313e-16:  # numerically rank-deficient
        return Score(math.inf, "singular")
    return Score.of(hi / lo)


@metric(
    "linear_regions",
    version="1",
    needs=("fresh_network",),
    unit="regions",
    description=(
        "distinct ReLU activation patterns (nn.ReLU outputs with 4-D input, sign per "
        "element) among K seeded N(0,1) inputs; BatchNorm in training mode; at most K"
    ),
    source=(
        f"{_TENAS}; VITA-Group/TENAS lib/procedures/linear_region_counter.py; Gaussian "
        "inputs as idstcv/ZenNAS and cvlab-yonsei/AZ-NAS ZeroShotProxy/compute_te_nas_score.py"
    ),
)
def linear_regions(inp: MetricInput) -> Score:
    import numpy as np

    from nasfilter.metrics.measures import _zc

    model = inp.model
    x = inp.gaussian(salt=_zc.SALT_LR_INPUT)
    k = x.shape[0]
    with _zc.mode(model, True):
        feats = _zc.relu_outputs(model, x)
    if not feats:  # the reference fails (no activation recorded)
        return Score(math.nan, "no_relu")
    # a sample's pattern is its concatenated signs; pack each feature's bits per sample
    packed = [np.packbits((f.reshape(k, -1) > 0).to("cpu").numpy(), axis=1) for f in feats]
    rows = np.concatenate(packed, axis=1)
    return Score.of(float(len({rows[i].tobytes() for i in range(k)})))
