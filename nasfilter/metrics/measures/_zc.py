"""Torch helpers shared by the zero-cost proxies (imported only inside metric functions:
the registry skips modules whose name starts with ``_``, so torch is not imported when
the metrics are listed).

Conventions every proxy module relies on (docs/metrics.md says them again per metric):

- "weight layers" are the modules that are ``nn.Conv2d`` or ``nn.Linear`` (subclasses
  included), in ``model.modules()`` order: what zero-cost-nas' ``get_layer_metric_array``
  visits. Only their ``.weight`` counts (not biases, not BatchNorm).
- Randomness a metric draws itself (re-initialised weights, Gaussian inputs, Rademacher
  vectors) comes from ``torch.Generator`` objects seeded with
  ``(architecture seed * 1_000_003 + salt) mod 2**63`` (the derivation of
  ``MetricInput.gaussian``), one salt per use, drawn on the CPU in float32 and then moved
  to the metric's device and dtype: the same values on every device.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import torch
from torch import nn

from nasfilter.metrics.inputs import MetricInput, logits_of, seeded_generator

# -- salts: one per random draw, documented in docs/metrics.md ---------------------------
SALT_ZEN_INPUT = 101
SALT_ZEN_MIXUP = 102
SALT_ZEN_WEIGHTS = 103
SALT_AZ_INPUT = 201
SALT_AZ_WEIGHTS = 202
SALT_AZ_RADEMACHER = 203
SALT_SWAP_WEIGHTS = 301  # + repeat index
SALT_MECO_INPUT = 401
SALT_LR_INPUT = 501


def generator(inp: MetricInput, salt: int) -> torch.Generator:
    """A CPU generator for one of the metric's own random draws (see module doc)."""
    return seeded_generator(inp.seed * 1_000_003 + salt)


def weight_layers(model: nn.Module) -> list[nn.Conv2d | nn.Linear]:
    """Conv2d and Linear modules in ``model.modules()`` order (zero-cost-nas' layers)."""
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def batch_of(inp: MetricInput) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The run's batch and labels of a metric that declares ``data``."""
    if inp.inputs is None:  # pragma: no cover - the engine refuses this earlier
        raise ValueError(f"{inp.metric.name} needs the input batch")
    return inp.inputs, inp.targets


def labelled_batch(inp: MetricInput) -> tuple[torch.Tensor, torch.Tensor]:
    x, y = batch_of(inp)
    if y is None:  # pragma: no cover - the engine refuses this earlier
        raise ValueError(f"{inp.metric.name} needs the batch labels")
    return x, y


@contextmanager
def mode(model: nn.Module, train: bool) -> Iterator[nn.Module]:
    """Run the block with ``model.train(train)``; the previous mode is restored."""
    was = model.training
    model.train(train)
    try:
        yield model
    finally:
        model.train(was)


@contextmanager
def hooks(handles: list[Any]) -> Iterator[None]:
    """Remove the given hook handles when the block ends."""
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def _draw(t: torch.Tensor, fill: Callable[[torch.Tensor], Any]) -> None:
    """Fill ``t`` in place with ``fill(cpu_float32_tensor_of_its_shape)``, so that every
    device and dtype receives the same values."""
    tmp = torch.empty(t.shape, dtype=torch.float32)
    fill(tmp)
    with torch.no_grad():
        t.copy_(tmp)


def gaussian_init(model: nn.Module, g: torch.Generator) -> None:
    """Zen-NAS' ``network_weight_gaussian_init`` (also SWAP's and NASLib's zen): in
    ``model.modules()`` order, Conv2d and Linear weights ~ N(0, 1) and biases 0;
    BatchNorm2d and GroupNorm weights 1 and biases 0 (those without affine parameters are
    left alone, as NASLib's copy does)."""
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                _draw(m.weight, lambda t: nn.init.normal_(t, generator=g))
                if m.bias is not None:
                    m.bias.zero_()
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                if m.weight is not None:
                    m.weight.fill_(1.0)
                if m.bias is not None:
                    m.bias.zero_()


def kaiming_fanin_init(model: nn.Module, g: torch.Generator) -> None:
    """AZ-NAS' ``init_model(model, 'kaiming_norm_fanin')``: ``model.apply`` order,
    Conv2d/Linear weights ``kaiming_normal_(mode='fan_in', nonlinearity='relu')`` and
    biases 0; affine BatchNorm2d/GroupNorm weights 1, biases 0."""

    def init(m: nn.Module) -> None:
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            _draw(
                m.weight,
                lambda t: nn.init.kaiming_normal_(
                    t, mode="fan_in", nonlinearity="relu", generator=g
                ),
            )
            if m.bias is not None:
                m.bias.zero_()
        elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)) and m.affine:
            m.weight.fill_(1.0)
            m.bias.zero_()

    with torch.no_grad():
        model.apply(init)


def relu_outputs(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Outputs of every ``nn.ReLU`` module whose input is 4-D, in call order, from one
    no-grad forward pass (TE-NAS' and SWAP's ``hook_in_forward``). The model's mode is
    the caller's business."""
    feats: list[torch.Tensor] = []

    def hook(mod: nn.Module, args: tuple[Any, ...], out: torch.Tensor) -> None:
        if isinstance(args, tuple) and args and args[0].dim() == 4:
            feats.append(out.detach())

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    with hooks(handles), torch.no_grad():
        model(x)
    return feats


def cell_features(model: nn.Module, x: torch.Tensor, separate: bool = False) -> Any:
    """The feature maps AZ-NAS scores, in order, still in the autograd graph:

    - ``model.extract_cell_features(x)`` when the network has it (AZ-NAS' protocol);
    - else, for networks with ``stem`` and ``cells`` (NATS-Bench/xautodl networks, as
      AZ-NAS' ``custom/tss_model.py``): the stem's output, then each cell's output;
    - else the 4-D outputs (leading dimension the batch, more than one spatial position)
      of the network's direct children, in call order, from one forward pass.

    With ``separate``: ``(feats, ins)``, where for the stem-and-cells form each cell reads
    a detached copy ``ins[i]`` (requiring grad) of ``feats[i]``, so that the graphs of the
    cells are separate (the same values; gradients w.r.t. ``ins[i]`` are the cell's own
    vector-Jacobian products); ``ins`` is None for the other two forms.
    """
    extract = getattr(model, "extract_cell_features", None)
    if callable(extract):
        feats = list(extract(x))
        return (feats, None) if separate else feats
    stem, cells = getattr(model, "stem", None), getattr(model, "cells", None)
    if isinstance(stem, nn.Module) and isinstance(cells, (nn.ModuleList, nn.Sequential)):
        feats = [stem(x)]
        ins: list[torch.Tensor] = []
        for cell in cells:
            if separate:
                ins.append(feats[-1].detach().requires_grad_(True))
            feats.append(cell(ins[-1] if separate else feats[-1]))
        return (feats, ins) if separate else feats
    out: list[torch.Tensor] = []
    k = x.shape[0]

    def hook(mod: nn.Module, args: tuple[Any, ...], y: Any) -> None:
        if isinstance(y, torch.Tensor) and y.dim() == 4 and y.shape[0] == k:
            if y.shape[2] * y.shape[3] > 1:
                out.append(y)

    handles = [m.register_forward_hook(hook) for m in model.children()]
    with hooks(handles):
        model(x)
    return (out, None) if separate else out


def pre_gap_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """The feature map entering global average pooling (Zen-NAS' ``forward_pre_GAP``,
    NASLib's ``forward_before_global_avg_pool``): ``model.forward_pre_GAP(x)`` when the
    network has it, else the input of its one ``nn.AdaptiveAvgPool2d`` call, caught by a
    hook during a forward pass (NASLib's way)."""
    pre_gap = getattr(model, "forward_pre_GAP", None)
    if callable(pre_gap):
        return pre_gap(x)  # type: ignore[no-any-return]
    caught: list[torch.Tensor] = []

    def hook(mod: nn.Module, args: tuple[Any, ...], y: Any) -> None:
        caught.append(args[0])

    handles = [
        m.register_forward_hook(hook)
        for m in model.modules()
        if isinstance(m, nn.AdaptiveAvgPool2d)
    ]
    with hooks(handles):
        model(x)
    if len(caught) != 1:
        raise ValueError(
            f"needs the input of exactly one global average pooling (nn.AdaptiveAvgPool2d) "
            f"call; this network made {len(caught)}"
        )
    return caught[0]


def logits(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    return logits_of(model(x))
