"""Live ReLU elements: those on a path from the network's input to its output.

``relu_count`` (N_A) counts every element that enters a ReLU. Some never matter: an
element whose value does not depend on the input (behind a NAS-Bench-201 ``none`` edge
every value is the constant 0) or that the output never reads (a branch cut off before
the output). ``live_relu_count`` counts only the others, for any network, with one
forward and one backward pass of a *structural* copy of it:

- float64; every weight of a convolution or linear layer replaced by 1/fan_in where the
  weight is not zero (0 where it is: a pruned or masked connection stays cut), every bias
  by 0; BatchNorm, LayerNorm, GroupNorm and InstanceNorm bypassed (identity: an affine map
  per element does not change which elements are connected); max pooling replaced by
  average pooling over the same windows (every element of a window is connected to the
  window's output; a max passes only one gradient); evaluation mode (no dropout);
- one all-ones input sample.

All weights are positive and there is no constant term, so an element is positive
exactly when some path of nonzero connections leads to it from the input (otherwise it
is exactly 0), and the gradient of the sum of the outputs with respect to a ReLU's output
element is positive exactly when some such path leads from it to an output. A ReLU
element is live when both hold. ReLU calls are intercepted as ``relu_count`` intercepts
them (``nn.ReLU`` and the functional and in-place forms); each call's output passes
through an identity autograd node that records the gradient reaching it.

Conventions and limits: the count is per input sample (calls whose leading dimension is
not the batch are skipped, as ``relu_count`` skips them); operations that multiply two
activations (attention, gating) or normalise across elements are treated by the rules
above (norms as identity), which describes connectivity only approximately for them.
The NATS spaces have the same count analytically (``nasfilter.spaces.nats``:
``live_nodes``); tests hold the two equal.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from nasfilter.metrics.inputs import logits_of
from nasfilter.metrics.probe import _RELU_FUNCS

_INPLACE = {torch.nn.functional.relu_, torch.relu_, torch.Tensor.relu_}
_NORMS = {F.batch_norm, F.layer_norm, F.group_norm, F.instance_norm, torch.batch_norm}
_MAX_POOLS = {
    F.max_pool1d: F.avg_pool1d,
    F.max_pool2d: F.avg_pool2d,
    F.max_pool3d: F.avg_pool3d,
    torch.max_pool1d: F.avg_pool1d,
    torch.max_pool2d: F.avg_pool2d,
    torch.max_pool3d: F.avg_pool3d,
}
_ADAPTIVE_MAX = {
    F.adaptive_max_pool1d: F.adaptive_avg_pool1d,
    F.adaptive_max_pool2d: F.adaptive_avg_pool2d,
    F.adaptive_max_pool3d: F.adaptive_avg_pool3d,
}
_WEIGHT_LAYERS = (nn.Linear, nn.modules.conv._ConvNd)


class _Tap(torch.autograd.Function):
    """Identity whose backward hands the incoming gradient to a recorder."""

    @staticmethod
    def forward(ctx: Any, x: torch.Tensor, slot: dict[str, torch.Tensor]) -> torch.Tensor:  # type: ignore[override]
        ctx.slot = slot
        return x.clone()

    @staticmethod
    def backward(ctx: Any, g: torch.Tensor) -> tuple[torch.Tensor, None]:  # type: ignore[override]
        prev = ctx.slot.get("grad")
        ctx.slot["grad"] = g.detach() if prev is None else prev + g.detach()
        return g, None


def _pool_args(args: tuple[Any, ...], kwargs: dict[str, Any]) -> dict[str, Any] | None:
    """The max-pool call's arguments as an average pool's, or None when it cannot be
    replaced (dilation, indices)."""
    names = ("input", "kernel_size", "stride", "padding", "dilation", "ceil_mode")
    got = dict(zip(names, args, strict=False))
    got.update(kwargs)
    if got.pop("return_indices", False):
        return None
    dil = got.pop("dilation", 1)
    if any(d != 1 for d in ((dil,) if isinstance(dil, int) else tuple(dil))):
        return None
    got.setdefault("stride", None)
    got.setdefault("padding", 0)
    got.setdefault("ceil_mode", False)
    got["count_include_pad"] = False
    return got


class _StructuralMode(TorchFunctionMode):
    def __init__(self, batch: int) -> None:
        super().__init__()
        self.batch = batch
        #: per ReLU call: its positive outputs (a mask taken at once) and its gradient slot
        self.calls: list[tuple[torch.Tensor, dict[str, torch.Tensor]]] = []
        self.skipped = 0

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in _NORMS and args and isinstance(args[0], torch.Tensor):
            return args[0].clone()
        if func in _MAX_POOLS:
            got = _pool_args(args, kwargs)
            if got is not None:
                return _MAX_POOLS[func](got.pop("input"), **got)
        if func in _ADAPTIVE_MAX and not kwargs.get("return_indices", False):
            if len(args) < 3 or not args[2]:
                return _ADAPTIVE_MAX[func](
                    args[0], args[1] if len(args) > 1 else kwargs["output_size"]
                )
        if func in _RELU_FUNCS and args and isinstance(args[0], torch.Tensor):
            x = args[0]
            inplace = (
                func in _INPLACE
                or bool(kwargs.get("inplace", False))
                or (len(args) > 1 and args[1] is True)
            )
            if x.dim() == 0 or x.shape[0] != self.batch:
                self.skipped += 1
                return func(*args, **kwargs)
            slot: dict[str, torch.Tensor] = {}
            y = _Tap.apply(torch.relu(x), slot)
            self.calls.append((y.detach() > 0, slot))
            if inplace:
                x.copy_(y)
                return x
            return y
        return func(*args, **kwargs)


def structural_copy(model: nn.Module) -> nn.Module:
    """The structural float64 copy of ``model`` described in the module doc (the caller's
    model is not changed)."""
    work = copy.deepcopy(model).to(torch.float64)
    prepare_structural(work)
    return work


def prepare_structural(work: nn.Module) -> nn.Module:
    """Turn ``work`` (a float64 copy, changed in place) into its structural form."""
    with torch.no_grad():
        for m in work.modules():
            if isinstance(m, _WEIGHT_LAYERS) and isinstance(
                getattr(m, "weight", None), torch.Tensor
            ):
                w = m.weight
                if isinstance(m, nn.Linear):
                    fan_in = w.shape[1]
                elif isinstance(m, nn.modules.conv._ConvTransposeNd):
                    fan_in = w.shape[0] * w[0, 0].numel() // m.groups
                else:
                    fan_in = w[0].numel()
                w.copy_((w != 0).to(w.dtype) / max(int(fan_in), 1))
                bias = getattr(m, "bias", None)
                if isinstance(bias, torch.Tensor):
                    bias.zero_()
        for p in work.parameters():
            p.requires_grad_(True)
    work.eval()
    return work


def count_live(work: nn.Module, x: torch.Tensor) -> tuple[int, int]:
    """(live ReLU elements per sample, ReLU calls) of a structural network ``work`` (see
    ``prepare_structural``) on the all-ones batch ``x``."""
    mode = _StructuralMode(int(x.shape[0]))
    with torch.enable_grad(), mode:
        out = logits_of(work(x))
    total = out.sum()
    live = 0
    if mode.calls and total.requires_grad:
        total.backward()
        for positive, slot in mode.calls:
            g = slot.get("grad")
            if g is not None:
                live += int((positive & (g > 0)).sum())
    batch = int(x.shape[0])
    return live // batch, len(mode.calls)


def live_relu_count(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> int:
    """Live ReLU elements per sample of any module (see module doc). ``input_shape``
    includes the batch; a (C, H, W) shape is one sample."""
    from nasfilter.metrics.shapes import batch_shape, run_checked

    shape = batch_shape(model, input_shape)
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    work = structural_copy(model)
    x = torch.ones(*shape, device=device, dtype=torch.float64)
    return run_checked(model, shape, lambda: count_live(work, x)[0])
