"""Input-Jacobian proxies: jacob_cov and epe_nas.

Both read J, the gradient of the sum of all logits with respect to the input batch,
one row per sample (``y.backward(torch.ones_like(y))``, then ``x.grad`` flattened), with
the network in training mode (BatchNorm batch statistics, as the references leave it).
They share that one forward/backward pass (``inp.shared("input_jacobian")``).

- jacob_cov: Mellor et al., "Neural Architecture Search without Training" (first
  version, arXiv 2006.04647v1), as SamsungLabs/zero-cost-nas
  ``foresight/pruners/measures/jacob_cov.py`` scores it (NASLib's ``jacov.py`` is the
  same code): with the correlation matrix Σ_J = corrcoef(J) (numpy, float64) and its
  eigenvalues λ, score = -Σ (log(λ + k) + 1/(λ + k)), k = 1e-5.
- epe_nas: Lopes et al., "EPE-NAS", ICANN 2021 (VascoLopes/EPE-NAS ``search.py``, as
  NASLib's ``epe_nas.py``): per class c (the batch labels) s_c = Σ log(|corrcoef(J_c)| +
  k), k = 1e-5, over all entries of the class's correlation matrix; for at most 100
  classes the score is Σ_c |s_c|; above 100 classes s_c is divided by the class's sample
  count and the score is Σ_c Σ_c' |s_c - s_c'| / (number of classes present). A class
  with one sample has corrcoef 1.0 (a scalar): it adds log(1 + k) up to 100 classes and
  is skipped above (``len()`` of a scalar raises inside the reference's ``try``).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nasfilter.metrics.registry import Score, metric

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.inputs import MetricInput

_K = 1e-5


def _input_jacobian(inp: MetricInput) -> tuple[Any, int]:
    """(J as a float64 numpy array K x D, number of logits)."""
    import torch

    from nasfilter.metrics.measures import _zc

    model = inp.model
    x = _zc.batch_of(inp)[0].detach().clone().requires_grad_(True)
    with _zc.mode(model, True):
        y = _zc.logits(model, x)
        (jac,) = torch.autograd.grad(y, x, grad_outputs=torch.ones_like(y))
    j = jac.detach().reshape(jac.shape[0], -1).to(device="cpu").numpy()
    return j, int(y.shape[-1])


@metric(
    "jacob_cov",
    version="1",
    needs=("data", "gradients", "fresh_network"),
    description=(
        "-Σ (log(λ+k) + 1/(λ+k)), k=1e-5, λ the eigenvalues of the correlation matrix "
        "of the per-sample input gradients of Σ logits (BatchNorm in training mode)"
    ),
    source=(
        "Mellor et al., Neural Architecture Search without Training, arXiv 2006.04647v1; "
        "SamsungLabs/zero-cost-nas foresight/pruners/measures/jacob_cov.py "
        "(= automl/NASLib naslib/predictors/utils/pruners/measures/jacov.py)"
    ),
)
def jacob_cov(inp: MetricInput) -> Score:
    import numpy as np

    j, _ = inp.shared("input_jacobian", _input_jacobian)
    with np.errstate(all="ignore"):
        corrs = np.corrcoef(j)
        if not np.all(np.isfinite(corrs)):
            return Score(math.nan, "nan")  # a constant row (the reference's eig raises)
        v = np.linalg.eigvalsh(corrs)
        value = float(-np.sum(np.log(v + _K) + 1.0 / (v + _K)))
    return Score.of(value)


def epe_score(j: Any, labels: Any, n_classes: int) -> float:
    """EPE-NAS' ``eval_score_perclass`` of the Jacobian rows ``j`` (K x D, numpy) and
    their ``labels`` (K,)."""
    import numpy as np

    groups: dict[Any, list[int]] = {}
    for i, c in enumerate(labels.tolist()):
        groups.setdefault(c, []).append(i)
    per_class: dict[Any, float] = {}
    with np.errstate(all="ignore"):
        for c, rows in groups.items():
            if len(rows) == 1:
                if n_classes > 100:
                    continue  # len(corrs) of a scalar raises: the class is skipped
                per_class[c] = float(np.log(1.0 + _K))
                continue
            corrs = np.corrcoef(j[rows])
            s = float(np.sum(np.log(np.abs(corrs) + _K)))
            if n_classes > 100:
                s /= len(rows)
            per_class[c] = s
        score = 0.0
        if n_classes <= 100:
            for s in per_class.values():
                score += abs(s)
        else:
            vals = list(per_class.values())
            for s in vals:
                for t in vals:
                    score += abs(s - t)
            if vals:
                score /= len(vals)
    return score


@metric(
    "epe_nas",
    version="1",
    needs=("data", "labels", "gradients", "fresh_network"),
    description=(
        "EPE-NAS: per-class correlation of the per-sample input gradients of Σ logits, "
        "Σ_c |Σ log(|corr_c| + 1e-5)| (up to 100 classes; pairwise differences above); "
        "BatchNorm in training mode"
    ),
    source=(
        "Lopes et al., EPE-NAS: Efficient Performance Estimation Without Training for "
        "Neural Architecture Search, ICANN 2021; VascoLopes/EPE-NAS search.py "
        "(= automl/NASLib naslib/predictors/utils/pruners/measures/epe_nas.py)"
    ),
)
def epe_nas(inp: MetricInput) -> Score:
    from nasfilter.metrics.measures import _zc

    j, n_classes = inp.shared("input_jacobian", _input_jacobian)
    labels = _zc.labelled_batch(inp)[1].detach().to("cpu").numpy()
    return Score.of(epe_score(j, labels, n_classes))
