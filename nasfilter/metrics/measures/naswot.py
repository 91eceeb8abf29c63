"""NASWOT (Mellor et al., "Neural Architecture Search without Training", ICML 2021).

For a mini-batch of K inputs, every ReLU call of one forward pass gives each sample a
binary code (which inputs are positive); c_i concatenates sample i's codes (length N_A).
K_H[i, j] = N_A - Hamming(c_i, c_j) = (C Cᵀ + (1-C)(1-C)ᵀ)[i, j]; the score is
log|K_H| (float64 log-determinant).

K_H is singular exactly when two samples share a code, i.e. when an off-diagonal entry
equals N_A; the score is then -inf with status ``singular`` (checked exactly on the
integer kernel, not from a floating-point determinant).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nasfilter.errors import UsageError
from nasfilter.metrics.registry import Score, ScoreContext, metric

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.probe import ModelProbe


def score_kernel(kernel: Any) -> Score:
    """log|K_H| of an integer-valued kernel (torch tensor, K x K), with its status.

    ``singular`` (value -inf) when two samples share a code, detected exactly: an
    off-diagonal entry equals N_A (the diagonal). Otherwise the float64 LU
    log-determinant (``torch.linalg.slogdet``, as ``numpy.linalg.slogdet``).
    """
    import torch

    kernel = kernel.detach().to(device="cpu", dtype=torch.float64)
    k = kernel.shape[0]
    n_a = kernel[0, 0]
    off = kernel.masked_fill(torch.eye(k, dtype=torch.bool), -1.0)
    if bool((off == n_a).any()):
        return Score(-math.inf, "singular")
    sign, logdet = torch.linalg.slogdet(kernel)
    if float(sign) == 0.0:
        return Score(-math.inf, "singular")
    if float(sign) < 0.0:  # impossible for an exact PSD kernel; keep it visible
        return Score(float(logdet), "negative_determinant")
    return Score.of(float(logdet))


@metric(
    "naswot",
    path="probe",
    needs=("data",),
    probe_options={"want_kernel": True},
    description="log|K_H|, the NASWOT score of Mellor et al. (2021) on one mini-batch",
    unit="nats",
    source=(
        "J. Mellor, J. Turner, A. Storkey, E. J. Crowley, Neural Architecture Search "
        "without Training, ICML 2021; BayesWatch/nas-without-training, score_networks.py"
    ),
)
def naswot(probe: ModelProbe, ctx: ScoreContext) -> Score:
    return score_kernel(probe.kernel())


def naswot_score(model: Any, inputs: Any, bn_mode: str = "batch") -> float:
    """NASWOT score of any module on ``inputs`` (K, C, H, W); -inf when K_H is singular.

    ``UsageError`` unless the batch holds K >= 2 samples: for K = 1, K_H is the 1 x 1
    matrix [N_A] and log|K_H| = log N_A says nothing a ReLU count does not. A (C, H, W)
    tensor for a network with 2-d convolutions is one sample, so it is refused too.
    """
    import torch

    from nasfilter.metrics.probe import ModelProbe
    from nasfilter.metrics.shapes import batch_shape, run_checked

    if not isinstance(inputs, torch.Tensor):
        raise UsageError(
            f"naswot needs the inputs as a torch tensor (K, C, H, W), not {type(inputs).__name__}."
        )
    shape = batch_shape(model, tuple(inputs.shape), what="inputs.shape")
    k = shape[0]
    if k < 2:
        one = (
            f"a single (C, H, W) sample of shape {tuple(inputs.shape)}"
            if len(shape) != inputs.dim()
            else "a batch of K = 1"
        )
        raise UsageError(
            f"naswot compares the samples of a batch and needs K >= 2 of them; got {one} "
            "(with K = 1, log|K_H| is just log N_A).",
            "Pass a (K, C, H, W) batch with K >= 2, e.g. K = 128 as the NASWOT paper.",
        )
    probe = ModelProbe(model, inputs.reshape(shape), want_kernel=True, bn_mode=bn_mode)
    return run_checked(model, shape, lambda: score_kernel(probe.kernel()).value)
