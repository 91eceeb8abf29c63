"""One forward pass, observed: the shared measurement behind every model-based metric.

``ModelProbe`` runs a network once on a batch and records, for every ReLU call (the
``nn.ReLU`` modules and the functional forms ``F.relu``, ``torch.relu``,
``Tensor.relu`` and their in-place variants, intercepted with a ``TorchFunctionMode``;
each call is counted once):

- the number of elements entering it per sample (summed: N_A, ``relu_count``);
- optionally, the NASWOT kernel K_H = C Cᵀ + (1−C)(1−C)ᵀ of the binary codes
  C = [input > 0], without keeping the codes.

A call counts when its input's leading dimension is the batch size (a per-sample
activation); ReLUs applied to anything else (a weight, a scalar) are skipped and
reported by ``skipped_calls``. Other activations (ReLU6, LeakyReLU, GELU, ...) are not
counted. FLOPs are measured with forward hooks on ``nn.Conv2d`` and ``nn.Linear``
(NATS-Bench's convention).

How the kernel is accumulated (exactly, in integers). With r_i = Σ_m c_im,

    K_H = 2 G − r 1ᵀ − 1 rᵀ + N_A J,   G = Σ_calls C Cᵀ,   r = diag(G)

(c² = c for 0/1 codes), so each call costs one K x K Gram product of its codes and
nothing else. The codes are read from the ReLU's output (``relu(x) != 0`` exactly where
``x > 0``; the nonzero test is several times cheaper than a comparison, and it also
serves in-place ReLUs). The product is a float32 ``mm`` (exact: 0/1 products summed
below 2**24; larger calls are split), except on CPUs with AVX-512 (torch's
``get_cpu_capability()``), where the boolean codes are reinterpreted as int8 and
multiplied with ``torch._int_mm`` (int32, exact; checked once against an int64
product): with AVX-512 VNNI that was several times faster than float32, while on an
AVX2-only CPU it is 22x slower (138 ms against 6 ms for a 128 x 16,384 code matrix, 2
threads, torch 2.13). G is summed in int64 (int8 path) or float64 and K_H built once,
in float64, after the pass.
A tensor that enters several ReLUs unchanged (a cell node feeding several
``ReLU-Conv-BN`` edges) has the same codes each time, so its Gram product is computed
once and added once per call (the tensor's identity and version counter, read before
the call, are checked). Codes go to a boolean buffer reused across calls of the same
shape.

On CPU most of a pass is the network's own forward; ``retain_freed_memory`` (which the
engine applies) removes the page faults glibc's allocator otherwise adds to it.
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import torch
from torch import nn
from torch.overrides import TorchFunctionMode

from nasfilter.metrics.inputs import bn_buffers_kept

_RELU_FUNCS = {
    torch.nn.functional.relu,
    torch.nn.functional.relu_,
    torch.relu,
    torch.relu_,
    torch.Tensor.relu,
    torch.Tensor.relu_,
}

#: float32 sums of 0/1 products are exact below this many terms.
_F32_EXACT = 1 << 24
#: How many recent ReLU inputs are remembered to reuse their Gram product.
_SEEN_MAX = 8

#: Code buffers kept between calls, in bytes at most (per thread).
_BUFFER_MAX = 1 << 26

_INT_MM_OK: dict[str, bool] = {}


def _int_mm_works(device: torch.device) -> bool:
    """Whether Gram products of the codes go through int8 ``torch._int_mm``: on a CPU
    with AVX-512, if it multiplies 0/1 codes exactly (checked once against an int64
    product). Elsewhere float32 ``mm``."""
    kind = device.type
    if kind not in _INT_MM_OK:
        avx512 = "AVX512" in str(torch.backends.cpu.get_cpu_capability()).upper()
        ok = False
        if kind == "cpu" and avx512 and hasattr(torch, "_int_mm"):
            try:
                g = torch.Generator().manual_seed(0)
                a = torch.randint(0, 2, (5, 37), generator=g, dtype=torch.int8)
                got = torch._int_mm(a, a.T)
                ok = got.dtype == torch.int32 and torch.equal(got.long(), a.long() @ a.long().T)
            except Exception:  # noqa: BLE001 - any failure means: use the float path
                ok = False
        _INT_MM_OK[kind] = ok
    return _INT_MM_OK[kind]


_BUFFERS = threading.local()

_M_TRIM_THRESHOLD = -1  # glibc mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3
_ALLOCATOR: dict[str, bool] = {}


def retain_freed_memory() -> bool:
    """Ask glibc's malloc to keep freed memory for reuse (process-wide, once).

    A forward pass allocates and frees many activation-sized blocks. By default glibc
    hands large freed blocks back to the kernel (``munmap``, heap trimming) and every
    later allocation page-faults them in again: on a 2-core CPU that costs a quarter of a
    NATS-Bench forward pass at K = 128. With blocks up to 32 MiB served from the heap and
    up to 1 GiB of free heap kept, the pages stay mapped; peak RSS does not change (the
    process returns to the same peak every pass), it just does not drop between passes.
    The engine calls this for CPU runs; ``nasfilter.metrics.naswot`` does not (it would
    change the caller's process). Set ``NASFILTER_KEEP_FREED_MEMORY=0`` to skip it.
    Returns whether it applies (False off glibc).
    """
    if "ok" not in _ALLOCATOR:
        ok = False
        if sys.platform.startswith("linux") and os.environ.get(
            "NASFILTER_KEEP_FREED_MEMORY", "1"
        ).strip() not in ("0", "false", "no"):
            try:
                mallopt = ctypes.CDLL("libc.so.6").mallopt
                ok = mallopt(_M_MMAP_THRESHOLD, 32 << 20) == 1
                ok = mallopt(_M_TRIM_THRESHOLD, 1 << 30) == 1 and ok
            except (OSError, AttributeError):
                ok = False
        _ALLOCATOR["ok"] = ok
    return _ALLOCATOR["ok"]


def _codes_buffer(batch: int, per_sample: int, device: torch.device) -> torch.Tensor:
    """A reusable boolean (batch, per_sample) tensor for one call's codes (per thread;
    one per shape and device, so a network's few activation shapes cost a few MB once)."""
    cache: dict[tuple[str, int, int], torch.Tensor] | None = getattr(_BUFFERS, "cache", None)
    if cache is None:
        cache = _BUFFERS.cache = {}
    key = (str(device), batch, per_sample)
    buf = cache.get(key)
    if buf is None:
        buf = torch.empty(batch, per_sample, dtype=torch.bool, device=device)
        if sum(b.numel() for b in cache.values()) + buf.numel() > _BUFFER_MAX:
            cache.clear()
        if buf.numel() <= _BUFFER_MAX:
            cache[key] = buf
    return buf


class _ReluMode(TorchFunctionMode):
    def __init__(self, probe: ModelProbe) -> None:
        super().__init__()
        self.probe = probe

    def __torch_function__(self, func, types, args=(), kwargs=None):  # type: ignore[no-untyped-def]
        kwargs = kwargs or {}
        if func in _RELU_FUNCS and args and isinstance(args[0], torch.Tensor):
            return self.probe._observe(args[0], lambda: func(*args, **kwargs))
        return func(*args, **kwargs)


class ModelProbe:
    """Runs ``model`` once on ``inputs`` and exposes what the pass revealed.

    ``want_kernel``: also accumulate the NASWOT kernel. ``bn_mode``: ``"batch"`` runs
    the network in training mode (batch statistics, as the NASWOT reference does),
    ``"eval"`` in evaluation mode. The model's own mode is restored afterwards.
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
        if not isinstance(inputs, torch.Tensor) or inputs.dim() < 1:
            raise ValueError("inputs must be a tensor whose first dimension is the batch")
        self.model = model
        self.inputs = inputs
        self.batch = int(inputs.shape[0])
        self.want_kernel = want_kernel
        self.bn_mode = bn_mode
        self._ran = False
        self._relu_elements = 0  # summed over calls, per sample
        self._relu_calls = 0
        self._skipped_calls = 0
        self._flops = 0
        self._gram: torch.Tensor | None = None  # Σ C Cᵀ (int64 on the int8 path, else float64)
        self._seen: OrderedDict[int, tuple[weakref.ref[torch.Tensor], int, torch.Tensor]] = (
            OrderedDict()
        )
        self._reused = 0
        self._int_mm = False
        self.output: Any = None

    # -- measurement ------------------------------------------------------------------------
    def _observe(self, x: torch.Tensor, call: Callable[[], Any]) -> Any:
        """Account for one ReLU call on ``x``; ``call()`` runs it and returns its output."""
        if x.dim() == 0 or x.shape[0] != self.batch:
            self._skipped_calls += 1
            return call()
        per_sample = x.numel() // self.batch
        self._relu_elements += per_sample
        self._relu_calls += 1
        if not self.want_kernel or per_sample == 0:
            return call()
        key, version = id(x), x._version  # read before an in-place ReLU changes them
        hit = self._seen.get(key)
        out = call()
        if hit is not None and hit[0]() is x and hit[1] == version:
            self._seen.move_to_end(key)
            self._reused += 1
            gram = hit[2]
        else:
            if isinstance(out, torch.Tensor) and out.shape == x.shape:
                # relu(x) != 0 exactly where x > 0, and the nonzero test (a conversion to
                # bool) is several times cheaper than a comparison; in-place ReLUs leave
                # only the output anyway. The codes go to a reused buffer.
                codes = _codes_buffer(self.batch, per_sample, out.device)
                codes.copy_(out.detach().reshape(self.batch, per_sample))
            else:
                codes = x.detach().reshape(self.batch, per_sample) > 0
            gram = self._gram_of(codes)
            # A weak reference: a freed tensor's id may be reused, but then the
            # reference is dead and does not match; x's lifetime is not extended.
            self._seen[key] = (weakref.ref(x), version, gram)
            if len(self._seen) > _SEEN_MAX:
                self._seen.popitem(last=False)
        if self._gram is None:
            dtype = torch.int64 if gram.dtype == torch.int32 else gram.dtype
            self._gram = torch.zeros(gram.shape, dtype=dtype, device=gram.device)
        self._gram += gram
        return out

    def _gram_of(self, codes: torch.Tensor) -> torch.Tensor:
        """C Cᵀ of boolean codes (K x M), exactly: int32 or float64, K x K."""
        if self._int_mm:
            c8 = codes.view(torch.int8)
            return torch._int_mm(c8, c8.T)
        total: torch.Tensor | None = None
        for start in range(0, codes.shape[1], _F32_EXACT - 1):
            c = codes[:, start : start + _F32_EXACT - 1].to(torch.float32)
            g = torch.mm(c, c.T).to(torch.float64)
            total = g if total is None else total + g
        assert total is not None
        return total

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
        self._int_mm = self.want_kernel and _int_mm_works(self.inputs.device)
        was_training = self.model.training
        self.model.train(self.bn_mode == "batch")
        try:
            # batch mode updates BatchNorm running statistics: restore them, so the
            # network is unchanged for the metrics that use it after this pass
            with torch.no_grad(), bn_buffers_kept(self.model), _ReluMode(self):
                self.output = self.model(self.inputs)
        finally:
            for h in handles:
                h.remove()
            self.model.train(was_training)
            self._seen.clear()
        self._ran = True
        return self

    # -- results ------------------------------------------------------------------------------
    def relu_count(self) -> int:
        """N_A: elements entering a ReLU per sample, over every ReLU call."""
        return self.run()._relu_elements

    def relu_calls(self) -> int:
        return self.run()._relu_calls

    def skipped_calls(self) -> int:
        """ReLU calls on tensors whose leading dimension is not the batch (not counted)."""
        return self.run()._skipped_calls

    def reused_calls(self) -> int:
        """ReLU calls whose Gram product was reused (same tensor, unchanged, seen before)."""
        return self.run()._reused

    def flops(self) -> int:
        return self.run()._flops

    def param_count(self) -> int:
        return sum(p.numel() for p in self.model.parameters() if p.requires_grad)

    def gram(self) -> torch.Tensor:
        """G = C Cᵀ over the concatenated codes (float64, K x K); requires ``want_kernel``."""
        if not self.want_kernel:
            raise RuntimeError("this probe was created without want_kernel=True")
        self.run()
        if self._gram is None:  # no ReLU: empty codes
            return torch.zeros(self.batch, self.batch, dtype=torch.float64)
        return self._gram.to(device="cpu", dtype=torch.float64)

    def kernel(self) -> torch.Tensor:
        """The NASWOT kernel K_H (float64, K x K, on CPU); requires ``want_kernel=True``.

        Every entry is an integer in [0, N_A]; the diagonal is N_A. A network without
        ReLUs gives the zero matrix.
        """
        g = self.gram()
        r = torch.diagonal(g)
        return 2.0 * g - r[:, None] - r[None, :] + float(self._relu_elements)


def relu_count(model: nn.Module, input_shape: tuple[int, ...] = (1, 3, 32, 32)) -> int:
    """N_A of any module: elements entering a ReLU per sample for one forward pass.

    ``input_shape`` includes the batch dimension; the count is per sample. A network with
    2-d convolutions also takes one (C, H, W) sample. The input is zeros; the count
    depends only on shapes, not on values or weights. ``UsageError`` for an empty
    dimension (e.g. a batch of 0) or a rank the network cannot take.
    """
    from nasfilter.metrics.shapes import batch_shape, run_checked

    shape = batch_shape(model, input_shape)
    p = next(model.parameters(), None)
    device = p.device if p is not None else torch.device("cpu")
    dtype = p.dtype if p is not None and p.is_floating_point() else torch.float32
    inputs = torch.zeros(*shape, device=device, dtype=dtype)
    return run_checked(model, shape, lambda: ModelProbe(model, inputs, bn_mode="eval").relu_count())
