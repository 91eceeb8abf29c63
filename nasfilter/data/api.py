"""``load_batch`` and ``describe``: the entry points of ``nasfilter.data``."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

import numpy as np

from nasfilter.data.cifar import SPECS as CIFAR_SPECS
from nasfilter.data.cifar import load_cifar
from nasfilter.data.common import BatchInfo, as_path, check_batch_size, check_seed
from nasfilter.data.imagenet16 import load_imagenet16_120
from nasfilter.datasets import INPUT_DATA
from nasfilter.errors import UsageError

DATASET_CHOICES: tuple[str, ...] = tuple(INPUT_DATA)
SPLITS: tuple[str, ...] = ("train", "test")
ENV_VAR = "NASFILTER_DATA"
#: ``describe`` lists the indices themselves up to this batch size (always their hash).
INDICES_INLINE_MAX = 128


def default_data_dir() -> Path:
    """``$NASFILTER_DATA`` if set (and not empty), else ``~/.cache/nasfilter/data``."""
    env = os.environ.get(ENV_VAR, "").strip()
    if env:
        return as_path(env)
    return Path.home().absolute() / ".cache" / "nasfilter" / "data"


def load_batch(
    dataset: str,
    batch_size: int,
    seed: int,
    data_dir: str | Path | None = None,
    download: bool = False,
    split: str = "train",
    shape: Any = None,
) -> BatchInfo:
    """``batch_size`` distinct samples of ``dataset``'s ``split``, drawn with ``seed``.

    dataset: cifar10, cifar100, imagenet16-120, or synthetic (seeded N(0, 1) images of
        ``shape`` (a ``nasfilter.datasets.DatasetShape``; default 3x32x32, 10 classes)
        and seeded random labels). split: "train" or "test" (for imagenet16-120,
        "test" is ``val_data``; "val" is accepted as a synonym).
    data_dir: where the files are; default ``default_data_dir()``.
    download: fetch a missing CIFAR archive (MD5-checked) into ``data_dir``.
    Raises UsageError for bad options and DataError for missing or corrupt data.
    """
    name = _dataset_name(dataset)
    batch_size = check_batch_size(batch_size)
    seed = check_seed(seed)
    split = _split_name(split, name)
    if name == "synthetic":
        if shape is None:
            return synthetic_batch(batch_size, seed)
        return synthetic_batch(
            batch_size, seed, shape.resolution, shape.channels, shape.width, shape.num_classes
        )
    root = default_data_dir() if data_dir is None else as_path(data_dir)
    if name in CIFAR_SPECS:
        return load_cifar(name, batch_size, seed, root, download, split)
    return load_imagenet16_120(batch_size, seed, root, download, split)


def synthetic_batch(
    batch_size: int,
    seed: int,
    resolution: int = 32,
    channels: int = 3,
    width: int | None = None,
    num_classes: int = 10,
) -> BatchInfo:
    """Seeded N(0, 1) float32 images (K, channels, resolution, width or resolution) and
    seeded random labels in [0, num_classes), drawn after the images from the same
    generator (so the images do not depend on the number of classes)."""
    batch_size = check_batch_size(batch_size)
    seed = check_seed(seed)
    rng = np.random.default_rng(seed)
    w = resolution if width is None else width
    images = rng.standard_normal((batch_size, channels, resolution, w), dtype=np.float32)
    labels = rng.integers(0, num_classes, size=batch_size, dtype=np.int64)
    return BatchInfo(
        images=images,
        labels=labels,
        dataset="synthetic",
        source="synthetic",
        indices=list(range(batch_size)),
        synthetic=True,
        mean=(0.0,) * channels,
        std=(1.0,) * channels,
        seed=seed,
        split="train",
    )


def indices_sha256(indices: list[int]) -> str:
    """SHA-256 of the indices written as decimal numbers joined by commas."""
    return hashlib.sha256(",".join(str(int(i)) for i in indices).encode("ascii")).hexdigest()


def describe(info: BatchInfo) -> dict[str, Any]:
    """JSON-safe settings of a batch, to record with a run."""
    out: dict[str, Any] = {
        "dataset": info.dataset,
        "source": info.source,
        "synthetic": bool(info.synthetic),
        "split": info.split,
        "batch_size": info.batch_size,
        "seed": info.seed,
        "shape": [int(d) for d in info.images.shape],
        "normalization": {
            "mean": [float(m) for m in info.mean],
            "std": [float(s) for s in info.std],
        },
        "indices_sha256": indices_sha256(info.indices),
        "images_sha256": hashlib.sha256(
            np.ascontiguousarray(info.images, dtype="<f4").tobytes()
        ).hexdigest(),
    }
    if len(info.indices) <= INDICES_INLINE_MAX:
        out["indices"] = [int(i) for i in info.indices]
    return out


def _dataset_name(dataset: object) -> str:
    name = str(dataset).strip().lower()
    if name not in DATASET_CHOICES:
        raise UsageError(
            f"Unknown dataset {dataset!r}.", f"Choose one of: {', '.join(DATASET_CHOICES)}."
        )
    return name


def _split_name(split: object, dataset: str) -> str:
    name = str(split).strip().lower()
    if dataset == "imagenet16-120" and name == "val":
        name = "test"
    if name not in SPLITS:
        raise UsageError(f"Unknown split {split!r}.", f"Choose one of: {', '.join(SPLITS)}.")
    return name
