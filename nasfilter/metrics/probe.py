"""One forward pass, observed: the shared measurement behind every model-based metric.

``ModelProbe`` runs a network once on a batch and records, for every ReLU call (the
``nn.ReLU`` modules and the functional forms ``F.relu``, ``torch.relu``,
``Tensor.relu`` and their in-place variants, intercepted with a ``TorchFunctionMode``):

- the number of elements entering it per sample (summed: N_A, ``relu_count``);
- optionally, the NASWOT kernel K_H = C Cᵀ + (1−C)(1−C)ᵀ of the binary codes
  C = [input > 0], accumulated in float64 one call at a time without keeping the codes.

Other activations (ReLU6, LeakyReLU, GELU, ...) are not counted. FLOPs are measured
with forward hooks on ``nn.Conv2d`` and ``nn.Linear`` (NATS-Bench's convention).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

_RELU_FUNCS = {
    torch.nn.functional.relu,
    torch.nn.functional.relu_,
    torch.relu,
    torch.relu_,
    torch.Tensor.relu,
    torch.Tensor.relu_,
}


class _ReluMode(TorchFunctionMode):
    def __init__(self, probe: ModelProbe) -> None:
        super().__init__()
        self.probe = probe

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in _RELU_FUNCS and args and isinstance(args[0], torch.Tensor):
            self.probe._observe(args[0])
        return func(*args, **kwargs)


class ModelProbe:
    """Runs ``model`` once on ``inputs`` and exposes what the pass revealed.

    ``want_kernel``: also accumulate the NASWOT kernel. ``bn_mode``: ``"batch"`` runs
    the network in training mode (batch statistics, as the NASWOT reference does),
    ``"eval"`` in evaluation mode.
    """

    def __init__(
        self,
        model: nn.Module,
        inputs: torch.Tensor,
        want_kernel: bool = False,
        bn_mode: str = "batch",
    ) -> None:
        if bn_mode not in ("batch", "eval"):
            raise ValueError(f"bn_mode must be 'batch' or 'eval', not {bn_mode!r}")
        self.model = model
        self.inputs = inputs
        self.want_kernel = want_kernel
        self.bn_mode = bn_mode
        self._ran = False
        self._relu_elements = 0  # summed over calls, per sample
        self._relu_calls = 0
        self._flops = 0
        self._kernel: torch.Tensor | None = None
        self.output: Any = None

    # -- measurement --
    def _observe(self, x: torch.Tensor) -> None:
        batch = x.shape[0]
        per_sample = x.numel() // batch
        self._relu_elements += per_sample
        self._relu_calls += 1
        if self.want_kernel:
            codes = (x.detach().reshape(batch, -1) > 0).to(torch.float32)
            # C Cᵀ + (1-C)(1-C)ᵀ = 2 C Cᵀ - r 1ᵀ - 1 rᵀ + n J, with r the row sums:
            # one matrix product per call; float32 sums of 0/1 are exact below 2**24.
            gram = (codes @ codes.T).to(torch.float64)
            r = codes.sum(dim=1, dtype=torch.float64)
            k = 2.0 * gram - r[:, None] - r[None, :] + float(per_sample)
            if self._kernel is None:
                self._kernel = k
            else:
                self._kernel += k

    def run(self) -> ModelProbe:
        if self._ran:
            return self
        handles = []

        def conv_hook(mod: nn.Conv2d, inp: Any, out: torch.Tensor) -> None:
            kh, kw = mod.kernel_size
            per_pos = kh * kw * mod.in_channels * mod.out_channels // mod.groups
            area = out.shape[2] * out.shape[3]
            self._flops += per_pos * area + (mod.out_channels * area if mod.bias is not None else 0)

        def linear_hook(mod: nn.Linear, inp: Any, out: torch.Tensor) -> None:
            self._flops += mod.in_features * mod.out_features
            if mod.bias is not None:
                self._flops += mod.out_features

        for m in self.model.modules():
            if isinstance(m, nn.Conv2d):
                handles.append(m.register_forward_hook(conv_hook))
            elif isinstance(m, nn.Linear):
                handles.append(m.register_forward_hook(linear_hook))
        was_training = self.model.training
        self.model.train(self.bn_mode == "batch")
        try:
            with torch.no_grad(), _ReluMode(self):
                self.output = self.model(self.inputs)
        finally:
            for h in handles:
                h.remove()
            self.model.train(was_training)
        self._ran = True
        return self

    # -- results --
    def relu_count(self) -> int:
        """N_A: elements entering a ReLU per sample, over every ReLU call."""
        return self.run()._relu_elements

    def relu_calls(self) -> int:
        return self.run()._relu_calls

    def flops(self) -> int:
        return self.run()._flops

    def param_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def kernel(self) -> torch.Tensor:
        """The NASWOT kernel K_H (float64, K x K); requires ``want_kernel=True``."""
        if not self.want_kernel:
            raise RuntimeError("this probe was created without want_kernel=True")
        self.run()
        assert self._kernel is not None, "the network called no ReLU"
        return self._kernel


def relu_count(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> int:
    """N_A of any module: elements entering a ReLU per sample for one forward pass.

    ``input_shape`` includes the batch dimension; the count is per sample. The input is
    zeros; the count depends only on shapes, not on values or weights.
    """
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    inputs = torch.zeros(*input_shape, device=device, dtype=dtype)
    return ModelProbe(model, inputs, bn_mode="eval").relu_count()
