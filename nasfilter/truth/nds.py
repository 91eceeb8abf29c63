"""Ground truth from the NDS data files (Radosavovic et al., ICCV 2019).

NDS publishes one JSON file per design space (``DARTS.json``, ``ResNet.json``,
``DARTS_in.json``, ...): a list of records, or an object of lists (``{"top": [...],
"mid": [...]}``, some ImageNet files). A record is one trained network::

    {"net": {...the network config...}, "test_ep_top1": [top-1 error per epoch, %],
     "params": 594138, "flops": 184519578, "optim": {...}, "train_ep_top1": [...], ...}

:func:`load_nds` streams the file (``nasfilter.truth.jsonstream``: memory stays flat
whatever the file's size), validates every record's ``net`` in the space (it becomes the
canonical identity) and stores, per identity:

- accuracy = 100 - ``test_ep_top1[-1]`` (the test accuracy after the last epoch, as
  NASWOT and NNI read it), split ``test``, dataset ``cifar10`` (``imagenet`` for the
  ``_in`` files);
- ``bench_params`` and ``bench_flops``: the record's ``params`` and ``flops`` (counts,
  as the file has them; NDS's flops convention is not nasfilter's, see
  docs/spaces.md);
- ``benchmark_index``: the record's position in the file as NASWOT numbers them (list
  order; for an object, ``top`` then ``mid``).

A network that occurs in several records (a re-run) gets the mean of their accuracies;
the load's settings record how many. A file with any bad record is refused whole,
naming the first few; nothing is written.
"""

from __future__ import annotations

import gzip
import io
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasfilter.errors import DataError, InvalidArchitectureError, UsageError
from nasfilter.store import Store
from nasfilter.truth import LoadSummary, TruthBatch, write_truth
from nasfilter.truth.jsonstream import JsonStreamError, iter_records

MAX_REPORTED = 5
SPLIT = "test"
#: NASWOT's numbering of the records of an object-of-lists file: these members first.
MEMBER_ORDER = ("top", "mid")


@dataclass
class _Entry:
    acc_sum: float
    count: int
    member: str | None
    index: int
    params: float | None
    flops: float | None


def _open(path: Path) -> io.TextIOBase:
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")  # noqa: SIM115


def _number(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    x = float(v)
    return x if math.isfinite(x) else None


def _accuracy(rec: dict[str, Any]) -> float:
    errs = rec.get("test_ep_top1")
    if not isinstance(errs, list) or not errs:
        raise ValueError("no test_ep_top1 (per-epoch test error) list")
    err = _number(errs[-1])
    if err is None:
        raise ValueError(f"test_ep_top1[-1] is {errs[-1]!r}, not a finite number")
    if not 0.0 <= err <= 100.0:
        raise ValueError(f"test_ep_top1[-1] = {err:g} is not a percentage")
    return 100.0 - err


def _cost(rec: dict[str, Any], key: str) -> float | None:
    if rec.get(key) is None:
        return None
    v = _number(rec[key])
    if v is None or v < 0:
        raise ValueError(f"{key} is {rec[key]!r}, not a count")
    return v


def load_nds(
    store: Store,
    space: str,
    path: str | Path,
    source: str | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Stream an NDS JSON file (``.json`` or ``.json.gz``) of ``space`` into the truth
    table, in one transaction; returns the load's summary."""
    from nasfilter.spaces import get_space
    from nasfilter.spaces.nds import NdsSpace

    started = time.perf_counter()
    sp = get_space(space)
    if not isinstance(sp, NdsSpace):
        raise UsageError(
            f"NDS files hold NDS networks; {sp.name} is not an NDS space.",
            "Use an nds-* space (`nasfilter spaces` lists them).",
        )
    p = Path(path).expanduser()
    if not p.is_file():
        raise DataError(f"No file {p}.")
    entries: dict[str, _Entry] = {}
    members: dict[str | None, int] = {}
    bad: list[str] = []
    n_bad = 0
    total = 0
    try:
        with _open(p) as f:
            for member, index, rec in iter_records(f):  # type: ignore[arg-type]
                total += 1
                members[member] = members.get(member, 0) + 1
                if on_progress:
                    on_progress(1)
                label = f"record {index}" if member is None else f"{member}[{index}]"
                try:
                    if not isinstance(rec, dict):
                        raise ValueError(f"a {type(rec).__name__}, not an object")
                    if "net" not in rec:
                        raise ValueError("no net (network config)")
                    arch = sp.canonical_object(rec["net"])
                    acc = _accuracy(rec)
                    params, flops = _cost(rec, "params"), _cost(rec, "flops")
                except (ValueError, InvalidArchitectureError) as e:
                    n_bad += 1
                    if len(bad) < MAX_REPORTED:
                        msg = e.message if isinstance(e, InvalidArchitectureError) else str(e)
                        bad.append(f"{label}: {msg.rstrip('.')}")
                    continue
                e0 = entries.get(arch)
                if e0 is None:
                    entries[arch] = _Entry(acc, 1, member, index, params, flops)
                else:
                    e0.acc_sum += acc
                    e0.count += 1
    except JsonStreamError as e:
        raise DataError(
            f"{p}: {e.message}.", "The file is truncated or not an NDS JSON file."
        ) from None
    except UnicodeDecodeError as e:
        raise DataError(f"{p} is not UTF-8 text ({e.reason}).") from None
    except (OSError, EOFError) as e:  # gzip errors are OSErrors
        raise DataError(f"Cannot read {p}: {e}.") from None
    if n_bad:
        more = f" (and {n_bad - len(bad)} more)" if n_bad > len(bad) else ""
        hint = (
            f"Is it NDS's {sp.file_stem}.json? Each record's net must be an {sp.name} network."
            if n_bad == total
            else "Fix or remove those records and load again."
        )
        raise DataError(
            f"{p}: {n_bad:,} of {total:,} records are bad, nothing was loaded: "
            f"{'; '.join(bad)}{more}.",
            hint,
        )
    if not entries:
        raise DataError(f"{p} holds no records.")
    # NASWOT's numbering: list order; for an object, top then mid then any other member
    order = [m for m in MEMBER_ORDER if m in members] + [
        m for m in members if m not in MEMBER_ORDER
    ]
    offset: dict[str | None, int] = {}
    at = 0
    for m in order:
        offset[m] = at
        at += members[m]
    batch = TruthBatch()
    repeated = 0
    for arch, ent in entries.items():
        repeated += ent.count > 1
        batch.add(
            arch,
            sp.truth_dataset,
            SPLIT,
            ent.acc_sum / ent.count,
            offset[ent.member] + ent.index,
            ent.params,
            ent.flops,
        )
    layout = "list" if members.keys() == {None} else "object of lists"
    settings = {
        "file": str(p.resolve()),
        "format": "NDS sweep JSON",
        "layout": layout,
        "records": {("list" if m is None else m): n for m, n in members.items()},
        "records_read": total,
        "architectures": len(batch),
        "repeated_architectures": repeated,
        "repeats": "an architecture in several records gets the mean of their accuracies",
        "accuracy": "100 - test_ep_top1[-1]: test top-1 accuracy after the last epoch, percent",
        "dataset": sp.truth_dataset,
        "split": SPLIT,
        "benchmark_index": "record position (list order; objects: top, then mid), as NASWOT",
        "params_unit": "count, as in the file",
        "flops_unit": "count, as in the file (NDS's own convention)",
    }
    return write_truth(store, "nds", sp.name, source or p.name, settings, batch, started)
