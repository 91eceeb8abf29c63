"""ImageNet16-120 from NATS-Bench's pickled ImageNet16 batches.

The data directory holds ``ImageNet16/`` (or is that folder itself) with
``train_data_batch_1`` .. ``train_data_batch_10`` and ``val_data``: pickled dicts with
``data`` (Nx768 uint8, 3x16x16 channel-major) and ``labels`` (1-based, 1..1000).
ImageNet16-120 keeps the samples labelled 1..120, in file order, and shifts the labels
to 0..119 (as NATS-Bench's ``ImageNet16(..., use_num_of_class_only=120)``). The
"test" split is ``val_data``. There is no automatic download.
"""

from __future__ import annotations

from pathlib import Path
from typing import NoReturn

import numpy as np

from nasfilter.data.common import BatchInfo, draw_indices, normalize, one_line
from nasfilter.data.pickles import load_pickle, rows_and_labels
from nasfilter.errors import DataError

FOLDER = "ImageNet16"
TRAIN_FILES = tuple(f"train_data_batch_{i}" for i in range(1, 11))
TEST_FILES = ("val_data",)
NUM_CLASSES = 120
ROW = 3 * 16 * 16
MEAN = tuple(x / 255 for x in (122.68, 116.66, 104.01))
STD = tuple(x / 255 for x in (63.22, 61.26, 65.09))


def load_imagenet16_120(
    batch_size: int, seed: int, root: Path, download: bool, split: str
) -> BatchInfo:
    """A normalized batch of ImageNet16-120 (see ``load_batch``)."""
    files = TRAIN_FILES if split == "train" else TEST_FILES
    folder = next((d for d in (root / FOLDER, root) if all((d / f).is_file() for f in files)), None)
    if folder is None:
        _raise_missing(root, files, download)
    data_parts: list[np.ndarray] = []
    label_parts: list[np.ndarray] = []
    for name in files:  # keep only the 120-class subset of each file as it is read
        data, labels = _read_file(folder / name)
        keep = (labels >= 1) & (labels <= NUM_CLASSES)
        data_parts.append(data[keep])
        label_parts.append(labels[keep] - 1)
    data = np.concatenate(data_parts)
    labels = np.concatenate(label_parts)
    del data_parts, label_parts
    indices = draw_indices(
        data.shape[0], batch_size, seed, f"the ImageNet16-120 {split} split ({folder})"
    )
    return BatchInfo(
        images=normalize(data[indices], 3, 16, MEAN, STD),
        labels=labels[indices].astype(np.int64),
        dataset="imagenet16-120",
        source=str(folder),
        indices=[int(i) for i in indices],
        synthetic=False,
        mean=MEAN,
        std=STD,
        seed=seed,
        split=split,
    )


def _raise_missing(root: Path, files: tuple[str, ...], download: bool) -> NoReturn:
    how = (
        "ImageNet16 cannot be downloaded automatically: get the NATS-Bench ImageNet16 "
        "release (train_data_batch_1..10, val_data), then pass --data-dir DIR or set "
        "NASFILTER_DATA."
    )
    for d in (root / FOLDER, root):
        present = [f for f in files if (d / f).is_file()]
        if present:
            missing = ", ".join(f for f in files if f not in present)
            raise DataError(f"ImageNet16 is incomplete: {d}/ lacks {missing}.", how)
    listed = "train_data_batch_1..10" if len(files) > 1 else files[0]
    raise DataError(
        f"ImageNet16-120 not found: expected {root / FOLDER}/ (or {root}/) holding {listed}"
        f"{' (--download does not apply)' if download else ''}.",
        how,
    )


def _read_file(path: Path) -> tuple[np.ndarray, np.ndarray]:
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise DataError(f"Cannot open {path}: {one_line(exc.strerror or exc)}.") from None
    with f:
        entry = load_pickle(f, str(path), encoding="latin1")
    data, labels = rows_and_labels(entry, "labels", ROW, str(path))
    if labels.size and (labels.min() < 1 or labels.max() > 1000):
        raise DataError(
            f"Cannot read {path}: labels should be 1..1000, found "
            f"{labels.min()}..{labels.max()}; is this ImageNet16?",
            "Check that the data directory holds NATS-Bench's ImageNet16 batches.",
        )
    return data, labels
