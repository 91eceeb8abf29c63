"""The search request: every option of ``nasfilter search``, validated into the settings
stored with the search run (everything that needs no database)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from nasfilter.errors import SampleSizeError, UsageError
from nasfilter.ranking import DEFAULT_TIE_BREAK, check_tie_break
from nasfilter.scoring.settings import DEFAULT_MEMORY_FORMAT, RunSettings, penalized_name

ALGORITHMS: tuple[str, ...] = ("random", "two-stage", "evolution")
POPULATIONS: tuple[str, ...] = ("space", "truth")
SPLITS = ("valid", "test")
DEFAULT_FILTER_METRIC = "relu_count"
STAGE_FINAL = "final"
STAGE_FILTER = "filter"
STAGE_TIE = "tie"


@dataclass
class SearchRequest:
    """Every option of ``nasfilter search``; see docs/search.md."""

    space: str
    algo: str = "random"
    n: int = 100
    repeats: int = 10
    metric: str | None = None  # default: naswot for two-stage, relu_count otherwise
    filter_metric: str = DEFAULT_FILTER_METRIC  # two-stage only
    keep: float = 0.1  # two-stage only
    ea_population: int = 10  # evolution only
    ea_sample: int = 3  # evolution only
    penalty: str | None = None
    mu: float = 0.2
    sigma: float = 0.4
    tie_break: str = DEFAULT_TIE_BREAK
    budget: str | None = None  # a preset of nasfilter.budgets
    max_kb: float | None = None
    max_ram_kb: float | None = None
    max_macs: float | None = None
    dataset: str | None = None
    split: str | None = None  # None: 'test' if the database has test truth, else 'valid'
    population: str = "space"
    seed: int = 0
    score_seed: int = 0
    data: str | None = None
    shape: str | None = None
    data_dir: str | None = None
    batch_size: int = 128
    device: str = "auto"
    bn_mode: str = "batch"
    memory_format: str = DEFAULT_MEMORY_FORMAT
    bytes_per_param: float = 1.0
    params: dict[str, float] | None = None  # metrics' own settings (--param)
    reuse: bool = True


def default_metric(algo: str) -> str:
    return "naswot" if algo == "two-stage" else "relu_count"


def keep_count(keep: float, n: int) -> int:
    """ceil(keep * n), at least 1, computed on the decimal value of ``keep`` (so that
    0.1 * 30 is 3, not 4)."""
    return max(1, math.ceil(Fraction(repr(float(keep))) * n))


def metric_settings(req: SearchRequest, metric: str) -> RunSettings:
    """The score-run settings a search scores ``metric`` with (params and size_kb are
    always recorded beside it)."""
    return RunSettings.make(
        req.space,
        metric,
        seed=req.score_seed,
        data=req.data,
        shape=req.shape,
        data_dir=req.data_dir,
        batch_size=req.batch_size,
        device=req.device,
        bn_mode=req.bn_mode,
        memory_format=req.memory_format,
        bytes_per_param=req.bytes_per_param,
        params={k: v for k, v in (req.params or {}).items() if k in _params_of(metric)},
    )


def _params_of(metric: str) -> set[str]:
    from nasfilter.metrics import get_metric

    return {name for name, _ in get_metric(metric).params}


def plan_search(req: SearchRequest) -> dict[str, Any]:
    """Validate a request (everything that needs no database); return the settings stored
    with the search run. Raises UsageError (exit 2) with what to change."""
    from nasfilter.datasets import canonical_truth_dataset
    from nasfilter.metrics import get_metric
    from nasfilter.spaces import get_space

    space = get_space(req.space)
    if req.algo not in ALGORITHMS:
        raise UsageError(
            f"Unknown search algorithm {req.algo!r}.", f"Choose one of: {', '.join(ALGORITHMS)}."
        )
    if req.n < 1:
        raise SampleSizeError(f"--n must be at least 1 (got {req.n}).")
    if req.repeats < 1:
        raise UsageError(f"--repeats must be at least 1 (got {req.repeats}).")
    keep = float(req.keep)
    if not (math.isfinite(keep) and 0.0 < keep <= 1.0):
        raise UsageError(
            f"--keep must be a fraction in (0, 1] (got {req.keep!r}).",
            "Pass e.g. --keep 0.1 to keep the top 10%.",
        )
    if req.ea_population < 1:
        raise UsageError(f"--ea-population must be at least 1 (got {req.ea_population}).")
    if not 1 <= req.ea_sample <= req.ea_population:
        raise UsageError(
            f"--ea-sample must be between 1 and --ea-population {req.ea_population} "
            f"(got {req.ea_sample})."
        )
    if req.algo == "evolution" and not space.can_mutate:
        raise UsageError(
            f"The {space.name} space defines no mutation, so it cannot be searched by evolution.",
            "Use --algo random or two-stage.",
        )
    if req.population not in POPULATIONS:
        raise UsageError(
            f"Unknown --population {req.population!r}.",
            "Choose 'space' (every architecture) or 'truth' (those with ground "
            "truth for --dataset).",
        )
    dataset = canonical_truth_dataset(req.dataset) if req.dataset is not None else None
    if req.split is not None and req.split not in SPLITS:
        raise UsageError(f"Unknown --split {req.split!r}.", f"Choose one of: {', '.join(SPLITS)}.")
    if req.population == "truth" and dataset is None:
        raise UsageError("--population truth needs --dataset D (whose ground truth defines it).")
    if req.seed < 0 or req.score_seed < 0:
        raise UsageError("Seeds must be at least 0.")
    metric = get_metric(req.metric or default_metric(req.algo))
    stages = [metric]
    filter_metric = None
    if req.algo == "two-stage":
        filter_metric = get_metric(req.filter_metric)
        if filter_metric == metric:
            raise UsageError(
                f"--filter-metric and --metric are both {metric.name}.",
                "Two stages need two metrics, e.g. relu_count then naswot.",
            )
        stages = [filter_metric, metric]
    tie_break = check_tie_break(req.tie_break)
    _check_rank_aggregates(req, stages, tie_break)
    from nasfilter.budgets import make_budget, require_figures

    bud = make_budget(
        req.budget,
        max_kb=req.max_kb,
        max_ram_kb=req.max_ram_kb,
        max_macs=req.max_macs,
        bytes_per_param=req.bytes_per_param,
    )
    if bud is not None:
        require_figures(space, bud, analytic_only=True)
        if req.shape is None and req.data is None and bud.shape in space.shapes:
            from dataclasses import replace as _replace

            req = _replace(req, shape=bud.shape)  # search at the budget's own shape
    penalty = None
    if req.penalty is not None:
        from nasfilter.penalties import get_penalty, penalty_settings

        penalty = penalty_settings(get_penalty(req.penalty).name, req.mu, req.sigma)
        for m in stages:
            if not m.higher_is_better:
                raise UsageError(
                    f"A size penalty multiplies a higher-is-better score; {m.name} is "
                    "lower-is-better.",
                    "Drop --penalty or choose another --metric.",
                )
    names = [m.name for m in stages]
    if tie_break not in ("first", "smallest", "largest") and tie_break not in names:
        names.append(tie_break)
    run_settings = {name: metric_settings(req, name) for name in names}  # validates each
    rank_by = metric.name if penalty is None else penalized_name(metric.name, penalty["penalty"])
    return {
        "space": space.name,
        "algo": req.algo,
        "n": int(req.n),
        "repeats": int(req.repeats),
        "metric": metric.name,
        "higher_is_better": metric.higher_is_better,
        "filter_metric": filter_metric.name if filter_metric else None,
        "keep_fraction": keep if req.algo == "two-stage" else None,
        "keep": keep_count(keep, req.n) if req.algo == "two-stage" else None,
        "ea_population": min(req.ea_population, req.n) if req.algo == "evolution" else None,
        "ea_sample": req.ea_sample if req.algo == "evolution" else None,
        "penalty": penalty,
        "rank_by": rank_by,
        "tie_break": tie_break,
        "budget": _budget_dict(bud),
        "dataset": dataset,
        "split": req.split,
        "population": req.population,
        "seed": int(req.seed),
        "score_seed": int(req.score_seed),
        "reuse": bool(req.reuse),
        "score_settings": {k: v.to_json() for k, v in run_settings.items()},
        "seeds": "repeat r (from 1) samples with seed + r - 1; every score run uses score_seed",
    }


def _check_rank_aggregates(req: SearchRequest, stages: list[Any], tie_break: str) -> None:
    """Where a rank aggregate cannot serve: it ranks the candidates a stage compares all
    at once, which evolution (one child at a time) and a tie-break (only the tied few)
    do not do, and its log form (at most 0) is not a score a size penalty can multiply."""
    from nasfilter.metrics import get_metric

    def rank(name: str) -> bool:
        m = get_metric(name)
        return m.aggregate is not None and m.aggregate.kind == "rank"

    for m in stages:
        if not rank(m.name):
            continue
        if req.algo == "evolution":
            raise UsageError(
                f"{m.name} ranks within the candidates a search compares, and evolution "
                "compares one child at a time.",
                "Use --algo random or two-stage, or a per-architecture metric "
                "(e.g. ensemble_free).",
            )
        if req.penalty is not None:
            raise UsageError(
                f"A size penalty multiplies a positive score; {m.name} is a sum of log "
                "ranks (at most 0).",
                "Drop --penalty, or bound the size with --max-kb.",
            )
    if tie_break not in ("first", "smallest", "largest") and rank(tie_break):
        raise UsageError(
            f"--tie-break {tie_break}: a rank aggregate cannot break ties (it would rank "
            "only the tied candidates).",
            "Choose first, smallest, largest or a per-architecture metric.",
        )


def _budget_dict(bud: object) -> dict[str, Any] | None:
    if bud is None:
        return None
    from dataclasses import asdict

    return asdict(bud)  # type: ignore[call-overload]
