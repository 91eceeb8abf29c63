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

How it is computed: each hook takes a contiguous copy of its map (so a later in-place
change cannot reach it), and the spectra are computed together, batched by shape
(``min_corr_eigs``): bit for bit what ``torch.corrcoef`` and ``eigvalsh`` give on each
copy alone. For channels-last networks this changed values computed before (when the
hook read the channels-last map in place) by float rounding only: at most 8e-6 relative
on 30 TSS cells; NCHW values are unchanged, bit for bit.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING, Any

from nasfilter.metrics.registry import Score, metric

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.inputs import MetricInput


def min_corr_eig(fea: Any) -> float:
    """Smallest eigenvalue of corrcoef(fea) for fea (channels, positions), NaN/inf -> 0."""
    return min_corr_eigs([fea])[0]


#: feature maps held before their spectra are computed in one batch (bytes)
_PENDING_BYTES = 64 * 2**20


def min_corr_eigs(feas: list[Any]) -> list[float]:
    """``min_corr_eig`` of each (channels, positions) matrix, computed in one batch per
    shape: ``torch.corrcoef``'s own steps (mean by sum / n, centring, X Xᵀ / (n - 1),
    division by the standard deviations row- then column-wise, clipping to [-1, 1]) on
    the stacked matrices, NaN and inf set to 0, then one batched ``eigvalsh``. Equal bit
    for bit to ``torch.corrcoef`` and ``eigvalsh`` on each contiguous matrix alone (a test
    holds them equal); ~3x faster on a NATS-Bench cell's ~175 maps."""
    import torch

    out: list[float] = [0.0] * len(feas)
    groups: dict[tuple[int, int], list[int]] = {}
    for i, fea in enumerate(feas):
        c, n = fea.shape
        if c == 1:
            out[i] = 1.0
        elif n < 2:
            out[i] = 0.0  # corrcoef of one observation is all NaN -> the zero matrix
        else:
            groups.setdefault((c, n), []).append(i)
    for (_, n), idx in groups.items():
        x = torch.stack([feas[i] for i in idx])
        x = x - (x.sum(-1) / n).unsqueeze(-1)
        cov = torch.bmm(x, x.transpose(-1, -2)) / (n - 1)
        std = torch.sqrt(torch.diagonal(cov, dim1=-2, dim2=-1))
        corr = (cov / std.unsqueeze(-1) / std.unsqueeze(-2)).clip(-1, 1)
        corr = torch.nan_to_num(corr, nan=0.0, posinf=0.0, neginf=0.0)
        for i, v in zip(idx, torch.linalg.eigvalsh(corr)[:, 0].tolist(), strict=True):
            out[i] = v
    return out


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
    # one slot per hook call, in call order; each slot names a distinct feature map
    slots: list[int] = []
    maps: list[Any] = []
    values: list[float] = []
    pending: list[int] = []
    held = 0
    seen: dict[int, tuple[Any, int, int]] = {}

    def evaluate() -> None:
        nonlocal held
        values.extend(min_corr_eigs([maps[i] for i in pending]))
        for i in pending:
            maps[i] = None  # the value is known; let the copy go
        pending.clear()
        held = 0

    def hook(mod: Any, args: Any, out: Any) -> None:
        nonlocal held
        if not isinstance(out, torch.Tensor) or out.dim() < 2:
            return
        hit = seen.get(id(out))
        if hit is not None and hit[0]() is out and hit[1] == out._version:
            slots.append(hit[2])  # the same tensor, unchanged: same value
            return
        fea = out[0].detach()
        # a contiguous copy: the values as they are now, laid out as corrcoef reads them
        fea = fea.clone(memory_format=torch.contiguous_format).reshape(fea.shape[0], -1)
        seen[id(out)] = (weakref.ref(out), out._version, len(maps))
        slots.append(len(maps))
        pending.append(len(maps))
        maps.append(fea)
        held += fea.numel() * fea.element_size()
        if held > _PENDING_BYTES:
            evaluate()

    handles = [m.register_forward_hook(hook) for _, m in model.named_modules()]
    with _zc.hooks(handles), _zc.mode(model, True), torch.no_grad():
        model(x)
    evaluate()
    return Score.of(float(sum(v for v in (values[i] for i in slots) if math.isfinite(v))))
