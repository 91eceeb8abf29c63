"""Shared pieces of the data loaders: the batch record, index drawing, normalization.

numpy only: nothing here (or anywhere in ``nasfilter.data``) imports torch.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from nasfilter.errors import DataError, UsageError

Array = np.ndarray


@dataclass
class BatchInfo:
    """One input batch and where it came from.

    images: float32 (K, 3, H, W), already normalized with ``mean``/``std``.
    labels: int64 (K,), 0-based class indices (zeros for synthetic data).
    source: the absolute path read (archive or folder), or ``"synthetic"``.
    indices: positions, within the split, of the samples drawn, in draw order (row i of
        ``images`` is sample ``indices[i]``). For imagenet16-120 the split is the
        120-class subset, in file order.
    mean, std: per-channel normalization applied to x/255.
    """

    images: Array
    labels: Array
    dataset: str
    source: str
    indices: list[int]
    synthetic: bool
    mean: tuple[float, ...]
    std: tuple[float, ...]
    seed: int | None = None
    split: str = "train"

    @property
    def batch_size(self) -> int:
        return int(self.images.shape[0])


def one_line(text: object) -> str:
    """Exception text squeezed onto one line (messages are printed as one line)."""
    return " ".join(str(text).split())


def check_batch_size(batch_size: object) -> int:
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise UsageError(f"--batch-size must be an integer (got {batch_size!r}).")
    if batch_size < 1:
        raise UsageError(f"--batch-size must be at least 1 (got {batch_size}).")
    return int(batch_size)


def check_seed(seed: object) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise UsageError(f"--seed must be an integer (got {seed!r}).")
    if seed < 0:
        raise UsageError(f"--seed must be 0 or more (got {seed}).")
    return int(seed)


def draw_indices(n: int, batch_size: int, seed: int, what: str) -> Array:
    """``batch_size`` distinct positions in ``range(n)``, drawn with ``seed`` (int64).

    The rule is ``numpy.random.default_rng(seed).choice(n, batch_size, replace=False)``,
    in draw order, so the same seed and split always give the same batch.
    """
    if batch_size > n:
        raise DataError(
            f"--batch-size {batch_size} is larger than {what}, which has {n:,} samples.",
            f"Use --batch-size {n} or less." if n else "The data files hold no samples.",
        )
    rng = np.random.default_rng(seed)
    return rng.choice(n, size=batch_size, replace=False).astype(np.int64)


def gather(
    counts: Sequence[int],
    load: Callable[[int], tuple[Array, Array]],
    indices: Array,
) -> tuple[Array, Array]:
    """Rows ``indices`` of the concatenation of several files, in the order of ``indices``.

    ``counts[f]`` is the number of samples in file ``f``; ``load(f)`` returns that file's
    (data, labels). Only files that hold a drawn index are loaded.
    """
    offsets = np.concatenate([[0], np.cumsum(np.asarray(counts, dtype=np.int64))])
    which = np.searchsorted(offsets, indices, side="right") - 1
    data_parts: list[Array] = []
    label_parts: list[Array] = []
    order_parts: list[Array] = []
    for f in range(len(counts)):
        rows = np.nonzero(which == f)[0]
        if rows.size == 0:
            continue
        data, labels = load(f)
        local = indices[rows] - offsets[f]
        data_parts.append(data[local])
        label_parts.append(labels[local])
        order_parts.append(rows)
    order = np.concatenate(order_parts)
    inverse = np.empty_like(order)
    inverse[order] = np.arange(order.size)
    return np.concatenate(data_parts)[inverse], np.concatenate(label_parts)[inverse]


def normalize(
    raw: Array, channels: int, size: int, mean: Sequence[float], std: Sequence[float]
) -> Array:
    """uint8 rows (K, C*H*W), channel-major, to float32 (K, C, H, W): (x/255 - mean)/std."""
    x = raw.reshape(-1, channels, size, size).astype(np.float32) / np.float32(255.0)
    m = np.asarray(mean, dtype=np.float32).reshape(1, channels, 1, 1)
    s = np.asarray(std, dtype=np.float32).reshape(1, channels, 1, 1)
    return np.ascontiguousarray((x - m) / s, dtype=np.float32)


def as_path(path: str | Path) -> Path:
    """An absolute path (``~`` expanded); relative paths are taken from the caller's cwd."""
    return Path(path).expanduser().absolute()
