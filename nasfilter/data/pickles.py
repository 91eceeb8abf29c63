"""Reading the datasets' pickles safely.

The CIFAR and ImageNet16 batches are pickled dicts of numpy arrays and lists. They are
read with an unpickler that only resolves the few globals those files use (numpy array
reconstruction, ``_codecs.encode``, plain builtins), so a tampered file cannot run code.
Every failure becomes a one-line ``DataError`` that names the file.
"""

from __future__ import annotations

import pickle
from typing import IO, Any

import numpy as np

from nasfilter.data.common import one_line
from nasfilter.errors import DataError

_ALLOWED: frozenset[tuple[str, str]] = frozenset(
    {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),
        ("numpy._core.numeric", "_frombuffer"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("_codecs", "encode"),
        ("copy_reg", "_reconstructor"),
        ("copyreg", "_reconstructor"),
    }
    | {
        (module, name)
        for module in ("builtins", "__builtin__")
        for name in (
            "list",
            "dict",
            "tuple",
            "set",
            "frozenset",
            "bytearray",
            "bytes",
            "str",
            "int",
            "float",
            "complex",
            "bool",
            "object",
        )
    }
)


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _ALLOWED:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name} in the pickle")
        return super().find_class(module, name)


def load_pickle(f: IO[bytes], where: str, encoding: str = "bytes") -> Any:
    """Unpickle one dataset file from an open binary file; ``where`` names it in errors."""
    try:
        return _SafeUnpickler(f, encoding=encoding).load()
    except MemoryError:
        raise
    except Exception as exc:  # any unpickling failure means a corrupt or foreign file
        raise DataError(
            f"Cannot read {where}: {type(exc).__name__}: {one_line(exc) or 'corrupt data'}.",
            "The file is corrupt or not in the expected format; delete it and get it again.",
        ) from None


def get_key(entry: Any, key: str, where: str) -> Any:
    """``entry[key]``, accepting str or bytes keys (Python 2 pickles read either way)."""
    if not isinstance(entry, dict):
        raise DataError(
            f"Cannot read {where}: expected a pickled dict, found {type(entry).__name__}.",
            "The file is not in the expected format; delete it and get it again.",
        )
    for k in (key, key.encode("latin1")):
        if k in entry:
            return entry[k]
    raise DataError(
        f"Cannot read {where}: the pickled dict has no {key!r} entry.",
        "The file is not in the expected format; delete it and get it again.",
    )


def rows_and_labels(
    entry: Any, label_key: str, width: int, where: str
) -> tuple[np.ndarray, np.ndarray]:
    """The ``data`` rows (N, width) uint8 and ``label_key`` labels (N,) int64 of a batch."""
    data = get_key(entry, "data", where)
    labels = get_key(entry, label_key, where)
    bad = f"Cannot read {where}:"
    hint = "The file is not in the expected format; delete it and get it again."
    if not isinstance(data, np.ndarray) or data.ndim != 2 or data.shape[1] != width:
        shape = getattr(data, "shape", type(data).__name__)
        raise DataError(f"{bad} 'data' should be an Nx{width} array, found {shape}.", hint)
    if data.dtype != np.uint8:
        if not np.issubdtype(data.dtype, np.integer) or (
            data.size and (data.min() < 0 or data.max() > 255)
        ):
            raise DataError(f"{bad} 'data' should hold bytes 0..255, found {data.dtype}.", hint)
        data = data.astype(np.uint8)
    try:
        labels = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(f"{bad} {label_key!r} is not a list of integers.", hint) from None
    if labels.shape[0] != data.shape[0]:
        raise DataError(
            f"{bad} {data.shape[0]} images but {labels.shape[0]} {label_key!r} entries.", hint
        )
    return data, labels
