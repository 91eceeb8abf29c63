"""Device selection (imports torch; used only where networks are built)."""

from __future__ import annotations

from typing import Any

from nasfilter.errors import DeviceError, UsageError

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str) -> Any:
    import torch

    name = (name or "auto").lower()
    base = name.split(":")[0]
    if base not in DEVICE_CHOICES:
        raise UsageError(
            f"Unknown --device {name!r}.", f"Choose one of: {', '.join(DEVICE_CHOICES)}."
        )
    if base == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    if base == "cuda" and not torch.cuda.is_available():
        raise DeviceError(
            "--device cuda was asked for, but torch sees no CUDA GPU.", "Use --device cpu or auto."
        )
    if base == "mps" and not (
        getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()
    ):
        raise DeviceError(
            "--device mps was asked for, but MPS is not available.", "Use --device cpu or auto."
        )
    return torch.device(name)
