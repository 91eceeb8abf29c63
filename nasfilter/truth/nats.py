"""Ground truth from NATS-Bench, read through the official ``nats_bench`` API.

The API is created in fast mode (``nats_bench.create(dir, 'tss'|'sss', fast_mode=True)``):
it then reads one per-architecture file ``{index:06d}.pickle.pbz2`` when asked. Every
architecture is read with ``api.reload(dir, index)``, queried, and dropped again from the
API's caches (``arch2infos_dict`` and ``evaluated_indexes``), so memory stays flat over
the 15,625 (TSS) or 32,768 (SSS) files instead of the 12-28 GB the full benchmark takes.

What is stored, per dataset, from ``api.get_more_info(index, dataset, hp=hp,
is_random=is_random)`` (the API's own mapping of evaluation sets):

============== ============================== ====================================
dataset         split 'valid'                  split 'test'
============== ============================== ====================================
cifar10-valid   x-valid (``valid-accuracy``):  ori-test (``test-accuracy``): the
                the CIFAR-10 validation half   CIFAR-10 test set, same training
                of the train set, trained on
                the other half
cifar10         (none: trained on train+valid) ori-test: CIFAR-10 test set
cifar100        x-valid: half of the test set  x-test: the other half
ImageNet16-120  x-valid: half of the held-out  x-test: the other half
                set (ImageNet's validation
                images)
============== ============================== ====================================

(``valtest-accuracy``, the two halves together, is not stored.)

``hp`` is the training schedule: '12' or '200' epochs for TSS, '01', '12' or '90' for SSS
(defaults '200' and '90', the papers' full training). ``is_random=False`` averages each
value over every seed (trial) recorded for that architecture and dataset (the API's
``mean`` over the trials); an integer picks that seed; ``True`` picks a random seed per
call (not reproducible). The API's own defaults (hp='12', is_random=True) are never used.

Costs come from ``ArchResults.get_compute_costs(dataset)``, the method behind
``api.get_cost_info`` (which also deep-copies every result of the architecture first,
~12 ms a call): ``params`` in "MB", which is millions of parameters (xautodl's
``count_parameters_in_MB`` divides the count by 1e6), and ``flops`` in millions (also
divided by 1e6). Both are stored multiplied by 1e6, as counts (rounded to the nearest
integer when within 1e-6 of it, which undoes the float noise of the division and of the
mean over seeds; see ``nasfilter.truth.million_to_count``).
"""

from __future__ import annotations

import os
import pickle
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from nasfilter.errors import DataError, UsageError
from nasfilter.store import Store
from nasfilter.truth import (
    DATASETS,
    LoadSummary,
    TruthBatch,
    canonical_dataset,
    million_to_count,
    write_truth,
)


@dataclass(frozen=True)
class NatsSpace:
    space: str  # nasfilter's name
    api_name: str  # nats_bench.create's search_space argument
    base_name: str  # benchmark file base name
    default_hp: str

    @property
    def dir_name(self) -> str:
        return f"{self.base_name}-simple"


NATS_SPACES: dict[str, NatsSpace] = {
    "nats-tss": NatsSpace("nats-tss", "tss", "NATS-tss-v1_0-3ffb9", "200"),
    "nats-sss": NatsSpace("nats-sss", "sss", "NATS-sss-v1_0-50262", "90"),
}
DOWNLOAD_HINT = (
    "Download and unpack the fast-mode archives linked from the NATS-Bench README "
    "(https://github.com/D-X-Y/NATS-Bench)"
)
META_FILE = "meta.pickle.pbz2"
PARAMS_UNIT = (
    "API 'params' is in millions (xautodl count_parameters_in_MB: count / 1e6); "
    "stored x 1e6 as a count"
)
FLOPS_UNIT = "API 'flops' is in millions (count / 1e6); stored x 1e6 as a count"


def nats_space(space: str) -> NatsSpace:
    from nasfilter.spaces import get_space

    name = get_space(space).name  # unknown space: UnknownSpaceError
    if name not in NATS_SPACES:
        raise UsageError(
            f"`truth load` reads NATS-Bench, which covers nats-tss and nats-sss, not {name}.",
            "Use `nasfilter truth import FILE` for other tables.",
        )
    return NATS_SPACES[name]


def torch_home() -> Path:
    """Where the NATS-Bench API looks by default: ``$TORCH_HOME``, else ``~/.torch``."""
    env = os.environ.get("TORCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".torch"


def resolve_benchmark_dir(space: str, benchmark_dir: str | Path | None = None) -> Path:
    """The fast-mode directory of ``space``.

    ``benchmark_dir`` may be that directory itself (it holds ``meta.pickle.pbz2``) or a
    folder holding it under its official name; ``None`` means ``$TORCH_HOME`` (else
    ``~/.torch``), as the API itself.
    """
    ns = nats_space(space)
    base = Path(benchmark_dir).expanduser() if benchmark_dir is not None else torch_home()
    for cand in (base, base / ns.dir_name):
        if cand.is_dir() and (cand / META_FILE).is_file():
            return cand.resolve()
    where = (
        f"--benchmark-dir {base}"
        if benchmark_dir is not None
        else (
            f"$TORCH_HOME ({base})"
            if os.environ.get("TORCH_HOME")
            else f"~/.torch ({base}; TORCH_HOME is not set)"
        )
    )
    raise DataError(
        f"No NATS-Bench directory for {ns.space} in {where}: expected {ns.dir_name} "
        f"(holding {META_FILE}); the directory names are "
        f"{NATS_SPACES['nats-tss'].dir_name} (nats-tss) and "
        f"{NATS_SPACES['nats-sss'].dir_name} (nats-sss).",
        f"{DOWNLOAD_HINT} into $TORCH_HOME or pass --benchmark-dir DIR.",
    )


def parse_trial(trial: str | int | bool) -> bool | int:
    """The API's ``is_random`` from 'mean' (False), 'random' (True) or a seed (int)."""
    if isinstance(trial, bool):
        return trial
    if isinstance(trial, int):
        return trial
    t = str(trial).strip().lower()
    if t == "mean":
        return False
    if t == "random":
        return True
    try:
        return int(t)
    except ValueError:
        raise UsageError(
            f"--trial must be 'mean', 'random' or a seed such as 777 (got {trial!r})."
        ) from None


def arch_file(directory: Path, index: int) -> Path:
    """The file the API reads for ``index`` (``api.reload``'s own two spellings)."""
    p = directory / f"{index:06d}.pickle.pbz2"
    return p if p.is_file() else directory / f"{index:d}.pickle.pbz2"


_READ_ERRORS = (
    OSError,
    EOFError,
    pickle.UnpicklingError,
    ValueError,
    KeyError,
    TypeError,
    AttributeError,
    IndexError,
    AssertionError,
    ImportError,
)


def open_api(space: str, directory: Path) -> Any:
    """The NATS-Bench API over a fast-mode directory (reads only its meta file)."""
    import nats_bench

    ns = nats_space(space)
    meta = directory / META_FILE
    try:
        return nats_bench.create(str(directory), ns.api_name, fast_mode=True, verbose=False)
    except _READ_ERRORS as e:
        raise DataError(
            f"Cannot read the NATS-Bench file {meta}: {type(e).__name__}: {_first_line(e)}.",
            f"The file is corrupt or not NATS-Bench's. {DOWNLOAD_HINT}.",
        ) from None


def _first_line(e: BaseException) -> str:
    s = str(e).strip()
    return s.splitlines()[0] if s else "no detail"


def iter_architectures(
    api: Any,
    space: str,
    datasets: Sequence[str],
    hp: str,
    is_random: bool | int,
    missing: dict[str, int],
) -> Any:
    """Yield ``(index, rows)`` per architecture, rows being tuples
    (canonical arch, dataset, split, accuracy, params, flops).

    One architecture at a time: read with ``api.reload``, queried, dropped from the cache.
    ``missing`` counts (per dataset) architectures without results for the dataset or seed.
    """
    from nasfilter.spaces import get_space

    sp = get_space(space)
    directory = Path(api.archive_dir)
    hp = str(hp)
    for index in range(len(api)):
        path = arch_file(directory, index)
        if not path.is_file():
            raise DataError(
                f"Missing NATS-Bench file {directory / f'{index:06d}.pickle.pbz2'} "
                f"(architecture {index} of {len(api):,}): the directory is incomplete.",
                f"{DOWNLOAD_HINT}.",
            )
        try:
            api.reload(str(directory), index)
        except _READ_ERRORS as e:
            raise DataError(
                f"Cannot read the NATS-Bench file {path}: {type(e).__name__}: {_first_line(e)}.",
                f"The file is corrupt or truncated. {DOWNLOAD_HINT}.",
            ) from None
        try:
            per_hp = api.arch2infos_dict[index]
            if hp not in per_hp:
                raise DataError(
                    f"{path} has no results for --hp {hp} (it has: {', '.join(sorted(per_hp))}).",
                    "Pass one of those with --hp.",
                )
            try:
                arch = sp.canonical(str(api.arch(index)))
            except Exception as e:  # InvalidArchitectureError
                raise DataError(
                    f"{path}: architecture {index} is {api.arch(index)!r}, not a {sp.name} "
                    f"identity ({e}).",
                    "Is this the benchmark of another space?",
                ) from None
            results = per_hp[hp]
            names = set(results.get_dataset_names())
            rows = []
            for dataset in datasets:
                if dataset not in names or (
                    not isinstance(is_random, bool)
                    and is_random not in results.get_dataset_seeds(dataset)
                ):
                    missing[dataset] = missing.get(dataset, 0) + 1
                    continue
                try:
                    info = api.get_more_info(index, dataset, hp=hp, is_random=is_random)
                    costs = results.get_compute_costs(dataset)
                except _READ_ERRORS + (ZeroDivisionError,) as e:
                    raise DataError(
                        f"Cannot read {dataset} results (hp {hp}) from {path}: "
                        f"{type(e).__name__}: {_first_line(e)}.",
                        f"The file is corrupt. {DOWNLOAD_HINT}.",
                    ) from None
                params = costs.get("params")
                params = million_to_count(params) if params is not None else None
                flops = costs.get("flops")
                flops = million_to_count(flops) if flops is not None else None
                for split, key in (("valid", "valid-accuracy"), ("test", "test-accuracy")):
                    acc = info.get(key)
                    if acc is not None:
                        rows.append((arch, dataset, split, float(acc), params, flops))
        finally:
            # drop the architecture: memory stays flat whatever the number of files
            api.arch2infos_dict.pop(index, None)
            api.evaluated_indexes.discard(index)
        yield index, rows


def load_nats_bench(
    store: Store,
    space: str,
    benchmark_dir: str | Path | None = None,
    datasets: Sequence[str] | None = None,
    hp: str | None = None,
    trial: str | int | bool = "mean",
    on_total: Callable[[int], None] | None = None,
    on_progress: Callable[[int], None] | None = None,
) -> LoadSummary:
    """Read NATS-Bench for ``space`` and upsert its accuracies, in one transaction."""
    import nats_bench

    started = time.perf_counter()
    ns = nats_space(space)
    ds = [canonical_dataset(d) for d in (datasets or DATASETS)]
    ds = list(dict.fromkeys(ds))
    hp = str(hp) if hp is not None else ns.default_hp
    is_random = parse_trial(trial)
    directory = resolve_benchmark_dir(ns.space, benchmark_dir)
    api = open_api(ns.space, directory)
    total = len(api)
    if on_total:
        on_total(total)
    missing: dict[str, int] = {}
    batch = TruthBatch()
    for index, rows in iter_architectures(api, ns.space, ds, hp, is_random, missing):
        for arch, dataset, split, acc, params, flops in rows:
            batch.add(arch, dataset, split, acc, index, params, flops)
        if on_progress:
            on_progress(1)
    if not len(batch):
        raise DataError(
            f"{directory} has no results for {', '.join(ds)} with hp {hp} and trial {trial}.",
            "Check --dataset, --hp and --trial.",
        )
    settings = {
        "benchmark_dir": str(directory),
        "api": f"nats_bench {nats_bench.version()}",
        "search_space": ns.api_name,
        "fast_mode": True,
        "hp": hp,
        "is_random": is_random,
        "trial": "mean over seeds"
        if is_random is False
        else ("random seed per query" if is_random is True else f"seed {is_random}"),
        "datasets": ds,
        "architectures": total,
        "missing": missing,
        "splits": {
            "cifar10-valid": {"valid": "x-valid", "test": "ori-test"},
            "cifar10": {"test": "ori-test"},
            "cifar100": {"valid": "x-valid", "test": "x-test"},
            "ImageNet16-120": {"valid": "x-valid", "test": "x-test"},
        },
        "params_unit": PARAMS_UNIT,
        "flops_unit": FLOPS_UNIT,
    }
    return write_truth(store, "nats_bench", ns.space, ns.base_name, settings, batch, started)
