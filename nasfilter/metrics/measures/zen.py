"""Zen-score (Lin et al., "Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition",
ICCV 2021; idstcv/ZenNAS ``ZeroShotProxy/compute_zen_score.py``, the same code as
automl/NASLib ``naslib/predictors/utils/pruners/measures/zen.py``), data-free:

1. re-initialise the network: Conv2d/Linear weights ~ N(0, 1), biases 0, BatchNorm2d and
   GroupNorm weights 1, biases 0 (``network_weight_gaussian_init``), from a seeded
   generator;
2. x₁, x₂ ~ N(0, 1) of the run's shape (K samples), seeded; x_mix = x₁ + 0.01 x₂;
3. with the network in training mode (batch statistics; each pass also updates the
   running variances with momentum, as in the reference) and no gradients, f(x) is the
   feature map entering global average pooling (``forward_pre_GAP``; NASLib: the input
   of the ``nn.AdaptiveAvgPool2d``);
4. Δ = mean over samples of Σ_{c,h,w} |f(x₁) - f(x_mix)|;
5. zen = log Δ + Σ over BatchNorm2d layers of log sqrt(mean(running_var)), the running
   variances read after the two passes (BatchNorm layers without running statistics are
   skipped; the reference fails on them).

One repeat (NASLib's and AZ-NAS' setting; Zen-NAS' command line averages 32).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasfilter.metrics.registry import Score, metric

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.inputs import MetricInput

MIXUP_GAMMA = 1e-2


@metric(
    "zen",
    version="1",
    needs=("fresh_network",),
    unit="ln",
    description=(
        "Zen-score: log E|f(x) - f(x + 0.01 ε)| of the pre-pooling features plus Σ "
        "log sqrt(mean BN running_var), after an N(0,1) re-initialisation, seeded "
        "Gaussian inputs, BatchNorm in training mode"
    ),
    source=(
        "Lin et al., Zen-NAS: A Zero-Shot NAS for High-Performance Image Recognition, "
        "ICCV 2021; idstcv/ZenNAS ZeroShotProxy/compute_zen_score.py "
        "(= automl/NASLib naslib/predictors/utils/pruners/measures/zen.py)"
    ),
)
def zen(inp: MetricInput) -> Score:
    import torch
    from torch import nn

    from nasfilter.metrics.measures import _zc

    model = inp.model
    _zc.gaussian_init(model, _zc.generator(inp, _zc.SALT_ZEN_WEIGHTS))
    x1 = inp.gaussian(salt=_zc.SALT_ZEN_INPUT)
    x2 = inp.gaussian(salt=_zc.SALT_ZEN_MIXUP)
    with _zc.mode(model, True), torch.no_grad():
        mixup = x1 + MIXUP_GAMMA * x2
        out = _zc.pre_gap_features(model, x1)
        mixed = _zc.pre_gap_features(model, mixup)
        score = torch.sum(torch.abs(out - mixed), dim=[1, 2, 3])
        score = torch.mean(score)
        log_bn: Any = 0.0
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d) and m.running_var is not None:
                log_bn += torch.log(torch.sqrt(torch.mean(m.running_var)))
        value = torch.log(score) + log_bn
    return Score.of(float(value))
