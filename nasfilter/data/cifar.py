"""CIFAR-10 and CIFAR-100 from the official python archives, without torchvision.

Either the archive (``cifar-10-python.tar.gz`` / ``cifar-100-python.tar.gz``, read as
one streaming pass, nothing extracted to disk) or the extracted folder
(``cifar-10-batches-py/`` / ``cifar-100-python/``) in the data directory; the folder wins
when both are there. The URL and MD5 constants are module attributes read at call time,
so they can be overridden (tests point them at a ``file://`` archive).
"""

from __future__ import annotations

import sys
import tarfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NoReturn

import numpy as np

from nasfilter.data.common import BatchInfo, draw_indices, gather, normalize, one_line
from nasfilter.data.download import fetch
from nasfilter.data.pickles import get_key, load_pickle, rows_and_labels
from nasfilter.errors import DataError

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
CIFAR100_URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
CIFAR100_MD5 = "eb9058c3a382ffc7106e4002c42a8d85"

CIFAR10_MEAN = (0.4914, 0.4822, 0.4465)
CIFAR10_STD = (0.2470, 0.2435, 0.2616)
CIFAR100_MEAN = (0.5071, 0.4865, 0.4409)
CIFAR100_STD = (0.2673, 0.2564, 0.2762)

ROW = 3 * 32 * 32
Parts = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class CifarSpec:
    name: str
    title: str
    archive: str
    folder: str
    train: tuple[str, ...]
    test: tuple[str, ...]
    label_key: str
    num_classes: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    url_attr: str
    md5_attr: str

    def files(self, split: str) -> tuple[str, ...]:
        return self.train if split == "train" else self.test

    @property
    def url(self) -> str:
        return getattr(sys.modules[__name__], self.url_attr)

    @property
    def md5(self) -> str:
        return getattr(sys.modules[__name__], self.md5_attr)


SPECS: dict[str, CifarSpec] = {
    "cifar10": CifarSpec(
        "cifar10",
        "CIFAR-10",
        "cifar-10-python.tar.gz",
        "cifar-10-batches-py",
        tuple(f"data_batch_{i}" for i in range(1, 6)),
        ("test_batch",),
        "labels",
        10,
        CIFAR10_MEAN,
        CIFAR10_STD,
        "CIFAR10_URL",
        "CIFAR10_MD5",
    ),
    "cifar100": CifarSpec(
        "cifar100",
        "CIFAR-100",
        "cifar-100-python.tar.gz",
        "cifar-100-python",
        ("train",),
        ("test",),
        "fine_labels",
        100,
        CIFAR100_MEAN,
        CIFAR100_STD,
        "CIFAR100_URL",
        "CIFAR100_MD5",
    ),
}

_CORRUPT_HINT = "The file is truncated or corrupt; delete it and get it again (--download)."


def load_cifar(
    name: str, batch_size: int, seed: int, root: Path, download: bool, split: str
) -> BatchInfo:
    """A normalized batch of ``batch_size`` samples of a CIFAR split (see ``load_batch``)."""
    spec = SPECS[name]
    files = spec.files(split)
    archive = root / spec.archive
    folder = next(
        (d for d in (root / spec.folder, root) if all((d / f).is_file() for f in files)), None
    )
    if folder is None and not archive.is_file():
        if download:
            fetch(spec.url, archive, spec.md5)
        else:
            _raise_missing(spec, root, files)

    load: Callable[[int], Parts]
    counts = _meta_counts(folder, spec, files) if folder is not None else None
    if folder is not None and counts is not None:
        source = folder
        load = partial(_read_counted, folder, files, spec, counts)
    else:
        if folder is not None:
            source = folder
            parts = [_read_file(folder / f, spec) for f in files]
        else:
            source = archive
            parts = _read_tar(archive, spec, files)
        counts = [p[0].shape[0] for p in parts]
        load = parts.__getitem__

    indices = draw_indices(sum(counts), batch_size, seed, f"the {spec.title} {split} split")
    data, labels = gather(counts, load, indices)
    return BatchInfo(
        images=normalize(data, 3, 32, spec.mean, spec.std),
        labels=labels.astype(np.int64),
        dataset=spec.name,
        source=str(source),
        indices=[int(i) for i in indices],
        synthetic=False,
        mean=spec.mean,
        std=spec.std,
        seed=seed,
        split=split,
    )


def _raise_missing(spec: CifarSpec, root: Path, files: tuple[str, ...]) -> NoReturn:
    folder = root / spec.folder
    if folder.is_dir():
        missing = ", ".join(f for f in files if not (folder / f).is_file())
        raise DataError(
            f"{spec.title} is incomplete: {folder}/ lacks {missing}.",
            f"Extract {spec.archive} there again, put the archive in {root}/, or add --download.",
        )
    raise DataError(
        f"{spec.title} not found: expected {root / spec.archive} or {folder}/.",
        "Pass --data-dir DIR, set NASFILTER_DATA, or add --download.",
    )


def _check(data: np.ndarray, labels: np.ndarray, spec: CifarSpec, where: str) -> Parts:
    if labels.size and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise DataError(
            f"Cannot read {where}: labels outside 0..{spec.num_classes - 1} "
            f"(found {labels.min()}..{labels.max()}); is this {spec.title}?",
            "Check that the data directory holds the right dataset.",
        )
    return data, labels


def _read_file(path: Path, spec: CifarSpec) -> Parts:
    try:
        f = open(path, "rb")
    except OSError as exc:
        raise DataError(f"Cannot open {path}: {one_line(exc.strerror or exc)}.") from None
    with f:
        entry = load_pickle(f, str(path), encoding="bytes")
    return _check(*rows_and_labels(entry, spec.label_key, ROW, str(path)), spec, str(path))


def _read_counted(
    folder: Path, files: tuple[str, ...], spec: CifarSpec, counts: list[int], i: int
) -> Parts:
    data, labels = _read_file(folder / files[i], spec)
    if data.shape[0] != counts[i]:
        raise DataError(
            f"Cannot read {folder / files[i]}: {data.shape[0]} images, but "
            f"{folder / 'batches.meta'} says {counts[i]} per batch.",
            "The folder mixes files of different releases; extract the archive again.",
        )
    return data, labels


def _meta_counts(folder: Path, spec: CifarSpec, files: tuple[str, ...]) -> list[int] | None:
    """Per-file sample counts from CIFAR-10's ``batches.meta``, so that only the batch
    files holding drawn samples need reading; None when unknown (read them all)."""
    meta = folder / "batches.meta"
    if len(files) < 2 or not meta.is_file():
        return None
    try:
        with open(meta, "rb") as f:
            n = get_key(load_pickle(f, str(meta), encoding="bytes"), "num_cases_per_batch", "")
    except (OSError, DataError):
        return None
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
        return None
    return [int(n)] * len(files)


def _read_tar(archive: Path, spec: CifarSpec, files: tuple[str, ...]) -> list[Parts]:
    """The split's batches from the archive, in one streaming pass (stops once found)."""
    wanted = {f"{spec.folder}/{f}": i for i, f in enumerate(files)}
    found: dict[int, Parts] = {}
    try:
        with tarfile.open(archive, "r|*") as tar:
            for member in tar:
                i = wanted.get(member.name.removeprefix("./"))
                if i is None or not member.isfile():
                    continue
                where = f"{archive} (member {member.name})"
                f = tar.extractfile(member)
                if f is None:
                    continue
                entry = load_pickle(f, where, encoding="bytes")
                found[i] = _check(*rows_and_labels(entry, spec.label_key, ROW, where), spec, where)
                if len(found) == len(files):
                    break
    except DataError:
        raise
    except (tarfile.TarError, EOFError, OSError, zlib.error) as exc:
        raise DataError(
            f"Cannot read {archive}: {type(exc).__name__}: {one_line(exc) or 'corrupt'}.",
            _CORRUPT_HINT,
        ) from None
    missing = [f"{spec.folder}/{f}" for i, f in enumerate(files) if i not in found]
    if missing:
        raise DataError(
            f"Cannot read {archive}: it lacks {', '.join(missing)} (truncated, or not the "
            f"official {spec.title} archive).",
            _CORRUPT_HINT,
        )
    return [found[i] for i in range(len(files))]
