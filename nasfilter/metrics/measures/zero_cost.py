"""The zero-cost-nas / NASLib saliency proxies: grad_norm, snip, fisher, plain, grasp,
synflow, l2_norm (Abdelfattah et al., "Zero-Cost Proxies for Lightweight NAS", ICLR 2021;
SamsungLabs/zero-cost-nas ``foresight/pruners/measures/*.py``, copied into automl/NASLib
``naslib/predictors/utils/pruners/measures/*.py``).

Every one sums a per-weight (or per-channel) saliency over the *weight layers*: the
``nn.Conv2d`` and ``nn.Linear`` modules, their ``.weight`` only (``get_layer_metric_array``).
The loss is ``F.cross_entropy`` (mean over the batch) of the network's logits and the
batch labels, with the network in training mode (BatchNorm uses batch statistics), as
the references run it (their ``measure(..., bn=True)`` copy, never put in eval mode).

grad_norm, snip, fisher and plain read one shared forward/backward pass of that loss
(``inp.shared("zc_ce_grads")``): the references compute the same gradients -- snip's
gradient with respect to its all-ones weight mask is exactly dL/dW ⊙ W -- and fisher's
per-channel sums are collected by tensor hooks during the same backward pass. grasp runs
one pass of its own (the gradient with ``create_graph``, whose values are also its first
pass's dL/dW, then the Hessian-gradient product), and synflow its own (float64,
BatchNorm bypassed, all-ones input).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nasfilter.metrics.registry import Score, metric

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.inputs import MetricInput

_ZC = "Abdelfattah et al., Zero-Cost Proxies for Lightweight NAS, ICLR 2021"
_ZC_REPO = (
    "SamsungLabs/zero-cost-nas foresight/pruners/measures/{}.py "
    "(= automl/NASLib naslib/predictors/utils/pruners/measures/{}.py)"
)
_CE_NEEDS = ("data", "labels", "gradients", "fresh_network")
_CE_KEY = "zc_ce_grads"


class _CEGrads:
    """What the shared cross-entropy pass leaves: per weight layer, its weight (detached),
    dL/dW (None when the layer is not reached), fisher's per-channel Δ_k (None when not
    reached) and the number of weights per output channel (prod(weight.shape[1:]))."""

    def __init__(self, weights: list[Any], grads: list[Any], fisher: list[Any], fan: list[int]):
        self.weights = weights
        self.grads = grads
        self.fisher = fisher
        self.fan = fan


def _ce_grads(inp: MetricInput) -> _CEGrads:
    """One forward/backward pass of the cross-entropy loss on the batch, training mode."""
    import torch
    import torch.nn.functional as F

    from nasfilter.metrics.measures import _zc

    model = inp.model
    layers = _zc.weight_layers(model)
    fisher: list[Any] = [None] * len(layers)

    def forward_hook(i: int) -> Any:
        def hook(mod: Any, args: Any, out: Any) -> None:
            if not (isinstance(out, torch.Tensor) and out.requires_grad):
                return
            act = out.detach()

            def backward(grad: torch.Tensor) -> None:
                # fisher.py: g_nk = Σ_spatial act * grad; Δ_k = 0.5 * mean_n g_nk²
                g_nk = (
                    (act * grad).sum(dim=tuple(range(2, act.dim())))
                    if act.dim() > 2
                    else act * grad
                )
                d = g_nk.pow(2).mean(0).mul(0.5)
                fisher[i] = d if fisher[i] is None else fisher[i] + d

            out.register_hook(backward)

        return hook

    handles = [m.register_forward_hook(forward_hook(i)) for i, m in enumerate(layers)]
    wanted = [i for i, m in enumerate(layers) if m.weight.requires_grad]
    x, y = _zc.labelled_batch(inp)
    with _zc.hooks(handles), _zc.mode(model, True):
        loss = F.cross_entropy(_zc.logits(model, x), y)
        got = torch.autograd.grad(loss, [layers[i].weight for i in wanted], allow_unused=True)
    grads: list[Any] = [None] * len(layers)
    for i, g in zip(wanted, got, strict=True):
        grads[i] = g
    return _CEGrads(
        weights=[m.weight.detach().clone() for m in layers],
        grads=grads,
        fisher=fisher,
        fan=[math.prod(m.weight.shape[1:]) for m in layers],
    )


def _layer_sum(values: list[Any]) -> float:
    """Σ over layers of each layer's (float32) sum, as NASLib's ``sum_arr`` adds them."""
    return float(sum(float(v) for v in values))


@metric(
    "grad_norm",
    version="1",
    needs=_CE_NEEDS,
    description=(
        "Σ over Conv2d/Linear layers of ||∂L/∂W||₂ (cross-entropy on the batch, BatchNorm "
        "in training mode: the reference's convention, not --bn-mode)"
    ),
    source=f"{_ZC}; " + _ZC_REPO.format("grad_norm", "grad_norm"),
)
def grad_norm(inp: MetricInput) -> float:
    r = inp.shared(_CE_KEY, _ce_grads)
    return _layer_sum([g.norm() for g in r.grads if g is not None])


@metric(
    "snip",
    version="1",
    needs=_CE_NEEDS,
    description=(
        "Σ |∂L/∂W ⊙ W| over Conv2d/Linear weights (SNIP connection sensitivity; "
        "cross-entropy, BatchNorm in training mode)"
    ),
    source=("Lee et al., SNIP, ICLR 2019; " + _ZC + "; " + _ZC_REPO.format("snip", "snip")),
)
def snip(inp: MetricInput) -> float:
    r = inp.shared(_CE_KEY, _ce_grads)
    return _layer_sum(
        [(g * w).abs().sum() for g, w in zip(r.grads, r.weights, strict=True) if g is not None]
    )


@metric(
    "plain",
    version="1",
    needs=_CE_NEEDS,
    description=(
        "Σ ∂L/∂W ⊙ W over Conv2d/Linear weights, signed (cross-entropy, BatchNorm in training mode)"
    ),
    source=f"{_ZC}; " + _ZC_REPO.format("plain", "plain"),
)
def plain(inp: MetricInput) -> float:
    r = inp.shared(_CE_KEY, _ce_grads)
    return _layer_sum(
        [(g * w).sum() for g, w in zip(r.grads, r.weights, strict=True) if g is not None]
    )


@metric(
    "fisher",
    version="1",
    needs=_CE_NEEDS,
    description=(
        "Σ over Conv2d/Linear layers and output channels k of |Δ_k| x (weights per "
        "channel), Δ_k = ½ mean_n (Σ_spatial z ⊙ ∂L/∂z)², z the layer's output "
        "(cross-entropy, BatchNorm in training mode)"
    ),
    source=(
        "Turner et al., BlockSwap, ICLR 2020 / Theis et al. 2018; "
        + _ZC
        + "; "
        + _ZC_REPO.format("fisher", "fisher")
    ),
)
def fisher(inp: MetricInput) -> float:
    r = inp.shared(_CE_KEY, _ce_grads)
    # reshape_elements broadcasts each channel's value to the prod(weight.shape[1:])
    # weights of that channel before the sum
    return _layer_sum(
        [d.abs().sum() * fan for d, fan in zip(r.fisher, r.fan, strict=True) if d is not None]
    )


@metric(
    "grasp",
    version="1",
    needs=_CE_NEEDS,
    description=(
        "-Σ W ⊙ (H g) over Conv2d/Linear weights, g = ∂L/∂W, H the Hessian of the "
        "cross-entropy (zero-cost-nas' sign: higher is better; BatchNorm in training mode)"
    ),
    source=("Wang et al., GraSP, ICLR 2020; " + _ZC + "; " + _ZC_REPO.format("grasp", "grasp")),
)
def grasp(inp: MetricInput) -> float:
    import torch
    import torch.nn.functional as F

    from nasfilter.metrics.measures import _zc

    model = inp.model
    weights = [m.weight for m in _zc.weight_layers(model) if m.weight.requires_grad]
    if not weights:
        return 0.0
    x, y = _zc.labelled_batch(inp)
    with _zc.mode(model, True):
        loss = F.cross_entropy(_zc.logits(model, x), y)  # T = 1
        grad_f = torch.autograd.grad(loss, weights, create_graph=True, allow_unused=True)
        # grasp.py's first pass computes grad_w = ∂L/∂W on the same network, batch and
        # labels (training mode: BatchNorm's running statistics do not enter the
        # output), i.e. the values of grad_f: they are read from this pass.
        z = None
        for gf in grad_f:
            if gf is not None:
                term = (gf.detach() * gf).sum()
                z = term if z is None else z + term
        if z is None:
            return 0.0
        hg = torch.autograd.grad(z, weights, allow_unused=True)
    return _layer_sum(
        [(-w.detach() * h).sum() for w, h in zip(weights, hg, strict=True) if h is not None]
    )


@metric(
    "synflow",
    version="1",
    needs=("gradients", "fresh_network", "float64"),
    unit="ln",
    description=(
        "ln of Σ |W ⊙ ∂R/∂W| over Conv2d/Linear weights, R = Σ outputs for one all-ones "
        "input, every parameter and buffer replaced by its absolute value, BatchNorm "
        "bypassed, float64 (stored as the natural log, as NASLib stores it: the sum "
        "reaches 1e60; 0 gives -inf, a float64 overflow +inf with status 'overflow')"
    ),
    source=(
        "Tanaka et al., Pruning neural networks without any data by iteratively conserving "
        "synaptic flow, NeurIPS 2020; "
        + _ZC
        + "; "
        + _ZC_REPO.format("synflow", "synflow")
        + " (bn=False) and NASLib naslib/predictors/zerocost.py (log)"
    ),
)
def synflow(inp: MetricInput) -> Score:
    import torch
    from torch import nn

    from nasfilter.metrics.measures import _zc

    model = inp.model  # a float64 copy
    bns = [m for m in model.modules() if isinstance(m, (nn.BatchNorm2d, nn.BatchNorm1d))]
    layers = _zc.weight_layers(model)

    def identity(x: torch.Tensor) -> torch.Tensor:
        return x

    with torch.no_grad():
        for t in model.state_dict().values():
            t.abs_()  # linearize(): all parameters and buffers
    for m in bns:
        setattr(m, "forward", identity)  # noqa: B010 - copynet(bn=False)
    try:
        weights = [m.weight for m in layers if m.weight.requires_grad]
        with _zc.mode(model, True):
            out = _zc.logits(model, inp.ones(1))
            grads = torch.autograd.grad(out.sum(), weights, allow_unused=True)
    finally:
        for m in bns:
            delattr(m, "forward")
    total = sum(
        float((w.detach() * g).abs().sum())
        for w, g in zip(weights, grads, strict=True)
        if g is not None
    )
    if math.isnan(total):
        return Score(math.nan, "nan")
    if total == math.inf:
        return Score(math.inf, "overflow")
    if total <= 0.0:
        return Score(-math.inf, "-inf")
    return Score(math.log(total), "ok")


@metric(
    "l2_norm",
    version="1",
    description="Σ over Conv2d/Linear layers of ||W||₂ of the initial weights (no data)",
    source=f"{_ZC}; automl/NASLib naslib/predictors/utils/pruners/measures/l2_norm.py",
)
def l2_norm(inp: MetricInput) -> float:
    import torch

    from nasfilter.metrics.measures import _zc

    with torch.no_grad():
        return _layer_sum([m.weight.norm() for m in _zc.weight_layers(inp.model)])
