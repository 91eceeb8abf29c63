"""Microcontroller resources: MACs and peak RAM (µNAS's resource model).

- ``macs``: µNAS's MAC count (eliberis/uNAS ``resource_models/models.py``, ``macs``, i.e.
  ``inference_latency`` with compute weight 1): multiply-accumulates of convolutions and
  dense layers (no bias), plus one per element of every pooling window, plus
  (terms - 1) x elements of every addition of activations; BatchNorm and ReLU are free.
  Analytic for spaces that compute the figure (``munas``); measured on any other network
  by one forward pass of a single all-ones input with hooks (``nn.Conv2d``, ``nn.Linear``,
  max/average pooling modules, and ``a + b`` / ``torch.add`` on two activation tensors).
- ``peak_ram_kb``: peak activation memory of the best execution order, in kB (1000
  bytes) of int8 activations (µNAS's ``peak_memory_usage``); analytic only (it needs the
  network's graph, which a space describes: ``munas``). ``ctx.settings
  ["bytes_per_activation"]`` scales it (default 1).

Flash is the existing ``size_kb`` (parameters x bytes per parameter).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from nasfilter.metrics.registry import FIGURE, ScoreContext, metric

if TYPE_CHECKING:  # pragma: no cover
    from nasfilter.metrics.inputs import MetricInput
    from nasfilter.spaces.base import Space

MUNAS_SOURCE = (
    "Liberis, Dudziak, Lane: µNAS (EuroMLSys 2021); eliberis/uNAS resource_models/models.py"
)


def _figure(space: Space, arch: str, ctx: ScoreContext, name: str) -> float:
    v = space.costs(arch, ctx.dataset).figure(name)
    if v is None:  # pragma: no cover - figures promise it
        raise ValueError(f"{space.name} computes no {name}")
    return float(v)


def count_macs(model: Any, x: Any) -> int:
    """µNAS-convention MACs of one forward pass of ``model`` on ``x`` (per sample: the
    count is divided by the batch size). The model's mode is restored; no gradients."""
    import torch
    from torch import nn
    from torch.overrides import TorchFunctionMode

    batch = int(x.shape[0])
    total = [0]

    def conv_hook(mod: nn.Conv2d, inp: Any, out: torch.Tensor) -> None:
        kh, kw = mod.kernel_size
        total[0] += out.numel() * kh * kw * (mod.in_channels // mod.groups)

    def linear_hook(mod: nn.Linear, inp: Any, out: torch.Tensor) -> None:
        total[0] += out.numel() * mod.in_features

    def pool_hook(mod: nn.Module, inp: Any, out: torch.Tensor) -> None:
        k: Any = mod.kernel_size
        kh, kw = (k, k) if isinstance(k, int) else tuple(k)
        total[0] += out.numel() * kh * kw

    def adaptive_hook(mod: nn.Module, inp: Any, out: torch.Tensor) -> None:
        total[0] += inp[0].numel()  # every input element is read once

    adds = {torch.add, torch.Tensor.add, torch.Tensor.add_, torch.Tensor.__add__,
            torch.Tensor.__radd__, torch.Tensor.__iadd__}  # fmt: skip

    class _Adds(TorchFunctionMode):
        def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
            out = func(*args, **(kwargs or {}))
            if (
                func in adds
                and len(args) >= 2
                and isinstance(args[0], torch.Tensor)
                and isinstance(args[1], torch.Tensor)
                and args[0].dim() > 0
                and args[1].dim() > 0
                and args[0].shape[0] == batch
                and args[1].shape[0] == batch
                and isinstance(out, torch.Tensor)
            ):
                total[0] += out.numel()
            return out

    handles = []
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            handles.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, nn.Linear):
            handles.append(m.register_forward_hook(linear_hook))
        elif isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            handles.append(m.register_forward_hook(pool_hook))
        elif isinstance(m, (nn.AdaptiveAvgPool2d, nn.AdaptiveMaxPool2d)):
            handles.append(m.register_forward_hook(adaptive_hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), _Adds():
            model(x)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    return total[0] // batch


@metric(
    "macs",
    higher_is_better=False,
    figure="macs",
    analytic=FIGURE,
    description=(
        "µNAS's MAC count per sample: conv and dense multiply-accumulates (no bias), plus "
        "pooling window elements and (terms - 1) x elements of every addition"
    ),
    unit="MACs",
    source=MUNAS_SOURCE + " (macs)",
)
def macs(inp: MetricInput) -> float:
    return float(count_macs(inp.model, inp.ones(1)))


@metric(
    "peak_ram_kb",
    path="analytic",
    higher_is_better=False,
    figure="peak_ram_kb",
    params={"bytes_per_activation": 1.0},
    description=(
        "peak activation memory (kB, int8) of the best operator order: inputs, output and "
        "every tensor still needed live; network input and weights not counted; an "
        "addition may overwrite one of its inputs"
    ),
    unit="kB",
    source=MUNAS_SOURCE + " (peak_memory_usage)",
)
def peak_ram_kb(space: Space, arch: str, ctx: ScoreContext) -> float:
    scale = float(ctx.settings.get("bytes_per_activation", 1.0))
    return _figure(space, arch, ctx, "peak_ram_kb") * scale
