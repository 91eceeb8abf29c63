"""SWAP-Score (Peng, Song, Fayek, Ciesielski, Chang, "SWAP-NAS: Sample-Wise Activation
Patterns for Ultra-fast NAS", ICLR 2024; pym1024/SWAP ``src/metrics/swap.py`` and
``correlation.py``).

1. re-initialise the network with ``network_weight_gaussian_init`` (Conv2d/Linear weights
   ~ N(0, 1), biases 0, BatchNorm2d/GroupNorm weights 1, biases 0), seeded;
2. one no-grad forward pass, training mode, of the first S = min(16, K) images of the
   run's batch (``correlation.py``'s ``--input_samples 16``: with many more samples
   nearly every neuron's pattern is unique and the score saturates at the neuron count);
3. the outputs of every ``nn.ReLU`` module whose input is 4-D, concatenated per sample:
   a (S, N) matrix of signs; SWAP = the number of distinct columns, i.e. of distinct
   S-sample activation patterns among the N neurons.

``correlation.py`` averages 32 re-initialisations (``--repeats``); nasfilter uses
``settings["swap_repeats"]`` (default 1) successive re-initialisations from one seeded
generator and stores their mean.

swap_reg multiplies by SWAP's size regulariser exp(-(Θ - μ)² / σ), Θ the parameter count
in thousands (every named parameter not named "auxiliary", ``count_parameters``), μ and
σ from ``settings["swap_mu"]`` and ``settings["swap_sigma"]`` (thousands of parameters;
the reference repository publishes no values: they are the user's size target).
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from nasfilter.errors import UsageError
from nasfilter.metrics.registry import Score, metric

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.inputs import MetricInput

SAMPLES = 16
_SOURCE = (
    "Peng et al., SWAP-NAS: Sample-Wise Activation Patterns for Ultra-fast NAS, ICLR 2024; "
    "pym1024/SWAP src/metrics/swap.py, correlation.py"
)


def distinct_patterns(feats: list[Any], samples: int) -> int:
    """Distinct columns of the (samples x N) sign matrix of the concatenated features:
    each neuron's ``samples`` bits packed into integers, then counted."""
    import torch

    keys = []
    for f in feats:
        codes = (f.reshape(samples, -1) > 0).to(torch.int64)  # sign of a ReLU output
        words = []
        for start in range(0, samples, 62):
            part = codes[start : start + 62]
            weights = torch.pow(2, torch.arange(part.shape[0], device=part.device))
            words.append((part * weights[:, None]).sum(0))
        keys.append(torch.stack(words, 1))
    allkeys = torch.cat(keys, 0)
    if allkeys.shape[1] == 1:
        return int(torch.unique(allkeys[:, 0]).numel())
    return int(torch.unique(allkeys, dim=0).shape[0])


def _swap(inp: MetricInput) -> tuple[Score, float]:
    """(SWAP-Score, parameters in thousands): one computation for swap and swap_reg."""
    from nasfilter.metrics.measures import _zc

    repeats = int(inp.ctx.settings.get("swap_repeats", 1) or 1)
    model = inp.model
    thousands = param_thousands(model)
    batch, _ = _zc.batch_of(inp)
    s = min(SAMPLES, int(batch.shape[0]))
    x = batch[:s]
    g = _zc.generator(inp, _zc.SALT_SWAP_WEIGHTS)
    scores = []
    for _ in range(repeats):
        _zc.gaussian_init(model, g)
        with _zc.mode(model, True):
            feats = _zc.relu_outputs(model, x)
        if not feats:
            return Score(math.nan, "no_relu"), thousands  # the reference returns None
        scores.append(distinct_patterns(feats, s))
    return Score.of(sum(scores) / len(scores)), thousands


@metric(
    "swap",
    version="1",
    needs=("data", "fresh_network"),
    params={"swap_repeats": 1},
    unit="patterns",
    description=(
        "SWAP-Score: distinct activation patterns of the ReLU neurons over the first 16 "
        "images of the batch, after an N(0,1) re-initialisation (mean over "
        "settings swap_repeats, default 1); BatchNorm in training mode"
    ),
    source=_SOURCE,
)
def swap(inp: MetricInput) -> Score:
    return inp.shared("swap", _swap)[0]


def param_thousands(model: Any) -> float:
    """SWAP's ``count_parameters``: every named parameter not named 'auxiliary', / 1e3."""
    return sum(p.numel() for n, p in model.named_parameters() if "auxiliary" not in n) / 1e3


@metric(
    "swap_reg",
    version="1",
    needs=("data", "fresh_network"),
    params={"swap_repeats": 1, "swap_mu": None, "swap_sigma": None},
    unit="patterns",
    description=(
        "swap x exp(-(Θ - μ)²/σ), Θ = parameters/1000, μ = settings swap_mu, σ = "
        "settings swap_sigma (thousands of parameters; required)"
    ),
    source=_SOURCE + " (cal_regular_factor)",
)
def swap_reg(inp: MetricInput) -> Score:
    mu, sigma = inp.ctx.settings.get("swap_mu"), inp.ctx.settings.get("swap_sigma")
    if mu is None or sigma is None:
        raise UsageError(
            "swap_reg needs the size target swap_mu and width swap_sigma "
            "(thousands of parameters).",
            "Set both, e.g. swap_mu=500, swap_sigma=500 (SWAP publishes no default).",
        )
    base, thousands = inp.shared("swap", _swap)
    factor = math.exp(-((thousands - float(mu)) ** 2) / float(sigma))
    if base.status != "ok":
        return base
    return Score.of(base.value * factor)
