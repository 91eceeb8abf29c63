"""ZiCo (Li, Yang, Wang, Marculescu, Ogras, "ZiCo: Zero-shot NAS via Inverse Coefficient of
Variation on Gradients", ICLR 2023; SLDGroup/ZiCo ``ZeroShotProxy/compute_zico.py``, and
its NAS-Bench-201 port cvlab-yonsei/AZ-NAS ``NB201/ZeroShotProxy/compute_zico_score.py``).

Two batches, each one forward/backward pass of the cross-entropy loss with the network in
training mode, the gradients cleared in between (``zero_grad`` per batch). nasfilter's
two batches are the two halves of the run's batch, ``[0, K//2)`` and ``[K//2, K)`` (the
split zero-cost-nas' ``split_data=2`` makes). For every Conv2d/Linear layer with a
gradient, over its weights w with a nonzero standard deviation across the two batches:

    zico = Σ_layers log( Σ_w mean_b |g_bw| / std_b g_bw )

(numpy float32, population std, layers whose sum is 0 skipped), exactly the reference's
arithmetic.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nasfilter.metrics.registry import Score, metric

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.inputs import MetricInput


def zico_of(grads: list[list[object]]) -> float:
    """The reference's ``caculate_zico`` over per-layer lists of per-batch gradients
    (flattened float32 numpy arrays)."""
    import numpy as np

    total = 0
    with np.errstate(all="ignore"):
        for per_batch in grads:
            arr = np.array(per_batch)
            std = np.std(arr, axis=0)
            nonzero = np.nonzero(std)[0]
            mean_abs = np.mean(np.abs(arr), axis=0)
            tmpsum = np.sum(mean_abs[nonzero] / std[nonzero])
            if tmpsum != 0:
                total += np.log(tmpsum)
    return float(total)


@metric(
    "zico",
    version="1",
    needs=("data", "labels", "gradients", "fresh_network"),
    description=(
        "Σ over Conv2d/Linear layers of log Σ_w mean|g|/std(g), g the weight gradients "
        "of the cross-entropy on the two halves of the batch (BatchNorm in training mode)"
    ),
    source=(
        "Li et al., ZiCo: Zero-shot NAS via Inverse Coefficient of Variation on Gradients, "
        "ICLR 2023; SLDGroup/ZiCo ZeroShotProxy/compute_zico.py (NAS-Bench-201 port: "
        "cvlab-yonsei/AZ-NAS NB201/ZeroShotProxy/compute_zico_score.py)"
    ),
)
def zico(inp: MetricInput) -> Score:
    import torch
    import torch.nn.functional as F

    from nasfilter.metrics.measures import _zc

    model = inp.model
    x, y = _zc.labelled_batch(inp)
    k = x.shape[0]
    if k < 2:
        return Score(float("nan"), "batch_too_small")
    layers = [m for m in _zc.weight_layers(model) if m.weight.requires_grad]
    per_layer: list[list[object]] = [[] for _ in layers]
    with _zc.mode(model, True):
        for part in range(2):
            lo, hi = part * k // 2, (part + 1) * k // 2
            loss = F.cross_entropy(_zc.logits(model, x[lo:hi]), y[lo:hi])
            gs = torch.autograd.grad(loss, [m.weight for m in layers], allow_unused=True)
            for i, g in enumerate(gs):
                if g is not None:
                    per_layer[i].append(g.detach().to("cpu").reshape(-1).numpy())
    return Score.of(zico_of([p for p in per_layer if len(p) == 2]))
