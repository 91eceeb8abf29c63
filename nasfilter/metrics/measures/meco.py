"""MeCo (Jiang, Wang, Bie, "MeCo: Zero-Shot NAS with One Data and Single Forward Pass via
Minimum Eigenvalue of Correlation", NeurIPS 2023; HamsterMimi/MeCo
``correlation/foresight/pruners/measures/meco.py`` and ``correlation/NAS_Bench_201.py``).

One forward pass of ONE random N(0, 1) input (batch of one, at the run's resolution; the
reference's ``meco.py`` draws ``torch.randn(1, 3, 64, 64)``, its NAS-Bench-201 script
feeds one 32x32 image), network in training mode. A forward hook on every module
(``named_modules()``: the network itself, containers and leaves) takes the module's
output for that sample, reshaped to (channels, positions), and records the smallest
eigenvalue of the channels' Pearson correlation matrix (``torch.corrcoef``, NaN and inf
entries set to 0). The score is the sum of the recorded values that are finite.

Conventions made explicit: a module's output counted once per module that returns it (a
container returning its last child's output adds that value again, as in the reference;
nasfilter computes it once per tensor); outputs that are not tensors, or have fewer than
two dimensions, are skipped (the reference would fail on them); one channel gives the 1x1
correlation [[1]] (min eigenvalue 1; the reference fails on the scalar); one position per
channel gives an all-NaN matrix, i.e. 0, as in the reference. Eigenvalues by
``eigvalsh`` (the matrix is symmetric; the reference's general ``eig`` gives the same).
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from nasfilter.metrics.registry import Score, metric

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.inputs import MetricInput


def min_corr_eig(fea: Any) -> float:
    """Smallest eigenvalue of corrcoef(fea) for fea (channels, positions), NaN/inf -> 0."""
    import torch

    c, n = fea.shape
    if c == 1:
        return 1.0
    if n < 2:
        return 0.0  # corrcoef of one observation is all NaN -> the zero matrix
    corr = torch.corrcoef(fea)
    corr = torch.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)
    return float(torch.linalg.eigvalsh(corr)[0])


@metric(
    "meco",
    version="1",
    needs=("fresh_network",),
    description=(
        "Σ over every module's output of the minimum eigenvalue of the Pearson correlation "
        "between its channels, for one seeded N(0,1) input; BatchNorm in training mode"
    ),
    source=(
        "Jiang, Wang, Bie, MeCo: Zero-Shot NAS with One Data and Single Forward Pass via "
        "Minimum Eigenvalue of Correlation, NeurIPS 2023; HamsterMimi/MeCo "
        "correlation/foresight/pruners/measures/meco.py"
    ),
)
def meco(inp: MetricInput) -> Score:
    import math

    import torch

    from nasfilter.metrics.measures import _zc

    model = inp.model
    x = inp.gaussian(1, salt=_zc.SALT_MECO_INPUT)
    values: list[float] = []
    seen: dict[int, tuple[Any, int, float]] = {}

    def hook(mod: Any, args: Any, out: Any) -> None:
        if not isinstance(out, torch.Tensor) or out.dim() < 2:
            return
        hit = seen.get(id(out))
        if hit is not None and hit[0]() is out and hit[1] == out._version:
            values.append(hit[2])  # the same tensor, unchanged: same value
            return
        fea = out[0].detach()
        v = min_corr_eig(fea.reshape(fea.shape[0], -1))
        seen[id(out)] = (weakref.ref(out), out._version, v)
        values.append(v)

    handles = [m.register_forward_hook(hook) for _, m in model.named_modules()]
    with _zc.hooks(handles), _zc.mode(model, True), torch.no_grad():
        model(x)
    return Score.of(float(sum(v for v in values if math.isfinite(v))))
