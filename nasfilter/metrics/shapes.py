"""Input checks of the public model API (``relu_count``, ``naswot``): one clear line
instead of an IndexError from a hook or a ZeroDivisionError.

The first dimension is the batch. A network with 2-d convolutions also accepts one
unbatched (C, H, W) sample, as ``nn.Conv2d`` does: it is counted as a batch of one.
torch is imported inside the functions.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from nasfilter.errors import UsageError

T = TypeVar("T")

_CONV_RANKS = "(N, C, H, W), or one (C, H, W) sample"


def _has_conv2d(model: Any) -> bool:
    from torch import nn

    modules = model.modules() if isinstance(model, nn.Module) else ()
    return any(isinstance(m, nn.Conv2d) for m in modules)


def batch_shape(model: Any, shape: Sequence[Any], what: str = "input_shape") -> tuple[int, ...]:
    """``shape`` as a tuple of positive ints with the batch first: a (C, H, W) shape
    becomes (1, C, H, W) for a network with 2-d convolutions. ``UsageError`` for an
    empty dimension (a batch of 0 has no per-sample count) or anything not a shape."""
    try:
        dims = tuple(shape)
    except TypeError:
        dims = ()
    if not dims or any(isinstance(d, bool) or not hasattr(d, "__index__") for d in dims):
        raise UsageError(
            f"{what} must be a non-empty tuple of integers with the batch first, not {shape!r}.",
            "E.g. (1, 3, 32, 32) for one 32x32 RGB image.",
        )
    if any(int(d) < 1 for d in dims):
        which = "a batch of 0 samples" if int(dims[0]) < 1 else "an empty dimension"
        raise UsageError(
            f"{what} {tuple(int(d) for d in dims)} has {which}: there is nothing to count "
            "per sample.",
            "Every dimension must be at least 1, e.g. (1, 3, 32, 32).",
        )
    out = tuple(int(d) for d in dims)
    if len(out) == 3 and _has_conv2d(model):
        return (1, *out)
    return out


def run_checked(model: Any, shape: tuple[int, ...], fn: Callable[[], T]) -> T:
    """``fn()``; for a network with 2-d convolutions given inputs of any rank but 4,
    the error torch raises becomes one line saying which shapes it takes (a network
    that reshapes flat inputs itself still runs)."""
    if len(shape) == 4 or not _has_conv2d(model):
        return fn()
    try:
        return fn()
    except (RuntimeError, IndexError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise UsageError(
            f"Inputs of shape {shape} ({len(shape)} dimensions) do not fit this network, "
            f"which has 2-d convolutions: torch says {first.rstrip('.')}.",
            f"Pass {_CONV_RANKS}.",
        ) from None
