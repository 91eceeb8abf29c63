"""Shared parts of the search algorithms: the request, the population, scoring through
the engine with reuse of stored scores, ranking, and statistics.

Scoring always goes through ``nasfilter.engine``: a repeat that needs a value nobody has
stored yet starts a score run (``engine.start``) and scores exactly the architectures it
asks for (``engine.execute(..., archs=[...])``), so every value lands in ``scores`` with
its seconds.

Reuse ("same metric and settings"). A stored score of architecture ``a`` for metric ``m``
may stand in for a new one when the score run that holds it has the same *reuse key* as
the score run the search would start (see :func:`reuse_key`):

- the space, the metric's name and version, and its path ('analytic' or 'model');
- the dataset shape (classes, resolution) and bytes per parameter;
- for the model path only: the input batch (data name, batch size, seed and the SHA-256 of
  the images the run recorded), the seed (which also seeds the weights, per architecture),
  the BatchNorm mode, the device setting and the initialization scheme.

Penalized rows (``<metric>_<penalty>``) are never reused: a penalty is applied by the
search itself, to the base value, so the same stored value serves every penalty.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np

from nasfilter.errors import NasfilterError, SampleSizeError, UsageError
from nasfilter.spaces.base import Space
from nasfilter.store import Store

ALGORITHMS = ("random", "two-stage", "evolution")
POPULATIONS = ("space", "truth")
TRUTH_DATASETS = ("cifar10-valid", "cifar10", "cifar100", "ImageNet16-120")  # = truth.DATASETS
SPLITS = ("valid", "test")
DEFAULT_FILTER_METRIC = "relu_count"
STAGE_FINAL = "final"
STAGE_FILTER = "filter"


# --- the request ----------------------------------------------------------------------------


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
    dataset: str | None = None
    split: str | None = None  # None: 'test' if the database has test truth, else 'valid'
    population: str = "space"
    seed: int = 0
    score_seed: int = 0
    data: str | None = None
    data_dir: str | None = None
    batch_size: int = 128
    device: str = "auto"
    bn_mode: str = "batch"
    bytes_per_param: float = 1.0
    reuse: bool = True


def default_metric(algo: str) -> str:
    return "naswot" if algo == "two-stage" else "relu_count"


def keep_count(keep: float, n: int) -> int:
    """ceil(keep * n), at least 1, computed on the decimal value of ``keep`` (so that
    0.1 * 30 is 3, not 4)."""
    return max(1, math.ceil(Fraction(repr(float(keep))) * n))


def canonical_dataset(name: str) -> str:
    from nasfilter.truth import canonical_dataset as _canonical

    return _canonical(name)


def plan_search(req: SearchRequest) -> dict[str, Any]:
    """Validate a request (everything that needs no database); return the settings stored
    with the search run. Raises UsageError (exit 2) with what to change."""
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
    if req.population not in POPULATIONS:
        raise UsageError(
            f"Unknown --population {req.population!r}.",
            "Choose 'space' (every architecture) or 'truth' (those with ground "
            "truth for --dataset).",
        )
    dataset = canonical_dataset(req.dataset) if req.dataset is not None else None
    if req.split is not None and req.split not in SPLITS:
        raise UsageError(f"Unknown --split {req.split!r}.", f"Choose one of: {', '.join(SPLITS)}.")
    if req.population == "truth" and dataset is None:
        raise UsageError("--population truth needs --dataset D (whose ground truth defines it).")
    if req.seed < 0 or req.score_seed < 0:
        raise UsageError("Seeds must be >= 0.")
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
    score_requests = {m.name: asdict(score_request(req, m.name)) for m in stages}
    from nasfilter import engine

    for r in score_requests.values():  # the engine's own validation (data, batch size, ...)
        engine.plan(engine.ScoreRequest(**r))
    rank_by = metric.name if penalty is None else f"{metric.name}_{penalty['penalty']}"
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
        "dataset": dataset,
        "split": req.split,
        "population": req.population,
        "seed": int(req.seed),
        "score_seed": int(req.score_seed),
        "reuse": bool(req.reuse),
        "score_requests": score_requests,
        "seeds": "repeat r samples with seed + r; every score run uses score_seed",
    }


def score_request(req: SearchRequest, metric: str) -> Any:
    """The engine request a search scores ``metric`` with (n is set per run)."""
    from nasfilter.engine import ScoreRequest

    return ScoreRequest(
        space=req.space,
        n=1,
        metrics=metric,
        seed=req.score_seed,
        data=req.data,
        data_dir=req.data_dir,
        batch_size=req.batch_size,
        device=req.device,
        bn_mode=req.bn_mode,
        bytes_per_param=req.bytes_per_param,
    )


# --- reuse keys -----------------------------------------------------------------------------


def reuse_key(settings: dict[str, Any], record: dict[str, Any]) -> str | None:
    """The settings a stored value of one metric depends on, as canonical JSON.

    ``settings``: a score run's settings; ``record``: its ``run_metrics`` row for the metric
    (keys metric, version, path). None for penalized rows (never reused).
    """
    if record["path"] not in ("analytic", "model"):
        return None
    key: dict[str, Any] = {
        "space": settings["space"],
        "metric": record["metric"],
        "version": record["version"],
        "path": record["path"],
        "dataset_shape": settings["dataset_shape"]["name"],
        "bytes_per_param": float(settings["bytes_per_param"]),
    }
    if record["path"] == "model":
        batch = settings.get("batch") or {}
        key.update(
            data=settings.get("data"),
            batch_size=settings.get("batch_size"),
            seed=settings.get("seed"),
            images_sha256=batch.get("images_sha256"),
            bn_mode=settings.get("bn_mode"),
            device=settings.get("device"),
            init=settings.get("init"),
        )
    return json.dumps(key, sort_keys=True)


@dataclass
class PlannedScore:
    """A metric as a search will score it: the engine request and its reuse key."""

    metric: str
    request: dict[str, Any]
    key: str
    higher_is_better: bool


def plan_score(request: dict[str, Any], metric: str) -> PlannedScore:
    """Plan the engine request (loading its input batch once, as ``engine.start`` does, to
    know the images' hash) and compute the reuse key a run of it will have."""
    from nasfilter import engine
    from nasfilter.metrics import get_metric

    req = engine.ScoreRequest(**request)
    settings, metrics = engine.plan(req)
    if settings["builds_networks"]:
        from nasfilter.data import describe

        settings["batch"] = describe(engine.load_inputs(settings, download=req.download))
    recs = engine.metric_records(metrics, settings["builds_networks"])
    rec = next(r for r in recs if r["name"] == metric)
    key = reuse_key(settings, {"metric": metric, "version": rec["version"], "path": rec["path"]})
    assert key is not None
    return PlannedScore(metric, request, key, get_metric(metric).higher_is_better)


def matching_runs(store: Store, space: str, planned: PlannedScore) -> list[int]:
    """Score runs of ``space`` whose values of the metric have ``planned``'s reuse key."""
    rows = store.con.execute(
        "SELECT r.run_id, r.settings, m.metric, m.version, m.path FROM runs r "
        "JOIN run_metrics m USING (run_id) WHERE r.kind = 'score' AND r.space = ? "
        "AND m.metric = ? ORDER BY r.run_id",
        [space, planned.metric],
    ).fetchall()
    out = []
    for run_id, settings, metric, version, path in rows:
        key = reuse_key(json.loads(settings), {"metric": metric, "version": version, "path": path})
        if key == planned.key:
            out.append(int(run_id))
    return out


# --- the population -------------------------------------------------------------------------


class Population:
    """Where a search samples: the whole space, or a list of members (e.g. the
    architectures with ground truth), kept in the space's rank order."""

    def __init__(self, space: Space, members: Sequence[str] | None = None, label: str = "space"):
        self.space = space
        self.label = label
        if members is None:
            self.members: list[str] | None = None
            self.size = space.size
            self._digits: np.ndarray | None = None
        else:
            self.members = sorted(set(members), key=space.rank)
            self.size = len(self.members)
            self._digits = None

    def check(self, n: int, what: str = "--n") -> None:
        if n > self.size:
            where = (
                f"the {self.space.name} space"
                if self.members is None
                else f"the population ({self.label})"
            )
            raise SampleSizeError(
                f"{what} {n} is larger than {where}, which has {self.size:,} architectures.",
                f"Use {what} {self.size} or less.",
            )

    def sample(self, n: int, seed: int) -> list[str]:
        """``n`` distinct members drawn with ``seed``. On the whole space this is
        ``space.sample(n, seed)``, the sample of ``nasfilter score --n n --seed seed``."""
        self.check(n)
        if self.members is None:
            return [self.space.unrank(int(i)) for i in self.space.sample_indices(n, seed)]
        rng = np.random.default_rng(seed)
        idx = rng.choice(self.size, size=n, replace=False)
        return [self.members[int(i)] for i in idx]

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        """A random member at the smallest positive number of changed positions (edges,
        widths) from ``arch``: on the whole space, exactly one (``space.mutate``)."""
        if self.members is None:
            return self.space.mutate(arch, rng)
        if self._digits is None:
            self._digits = np.array([self.space.digits(a) for a in self.members], dtype=np.int16)
        d = np.array(self.space.digits(arch), dtype=np.int16)
        dist = (self._digits != d).sum(axis=1)
        dist[dist == 0] = np.iinfo(np.int32).max  # never the parent itself
        best = np.flatnonzero(dist == dist.min())
        if dist.min() == np.iinfo(np.int32).max:  # a population of one
            return arch
        return self.members[int(best[int(rng.integers(len(best)))])]


# --- evaluation -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Evaluation:
    """One architecture's stored score, as a search used it."""

    arch: str
    metric: str
    value: float
    status: str
    seconds: float
    params: int
    size_kb: float
    score_run_id: int
    source: str  # 'scored' | 'stored' | 'repeat'


class Evaluator:
    """Scores architectures with one metric for one repeat, reusing stored scores.

    ``evaluate(archs)`` returns one Evaluation per requested architecture, in order. Values
    come, in this order of preference, from: what this repeat already evaluated (source
    'repeat'); ``stored``, the values of score runs made earlier with the same reuse key,
    earliest run first ('stored'; None disables reuse); else the repeat's own score run,
    started on first need and executed for exactly the missing architectures ('scored').
    Values this evaluator scores are added to ``stored`` for later repeats.
    """

    def __init__(
        self,
        store: Store,
        space: str,
        planned: PlannedScore,
        budget: int,
        stored: dict[str, Evaluation] | None,
        command: str | None = None,
    ) -> None:
        self.store = store
        self.space = space
        self.planned = planned
        self.budget = budget
        self.command = command
        self.stored = stored
        self.run_id: int | None = None
        self._own: list[str] = []
        self._seen: dict[str, Evaluation] = {}
        self.measured_seconds = 0.0

    def evaluate(self, archs: Sequence[str]) -> list[Evaluation]:
        need = [a for a in dict.fromkeys(archs) if a not in self._seen]
        fresh: dict[str, Evaluation] = {}
        if self.stored:
            for a in need:
                ev = self.stored.get(a)
                if ev is not None:
                    fresh[a] = _replace_source(ev, "stored")
        missing = [a for a in need if a not in fresh]
        if missing:
            got = self._score(missing)
            fresh.update(got)
            if self.stored is not None:
                self.stored.update(got)
        out = []
        for a in archs:
            if a in fresh:
                ev = fresh.pop(a)
                self._seen[a] = ev
            else:
                ev = _replace_source(self._seen[a], "repeat")
            out.append(ev)
        return out

    def _score(self, archs: list[str]) -> dict[str, Evaluation]:
        from nasfilter import engine

        if self.run_id is None:
            req = engine.ScoreRequest(
                **{**self.planned.request, "n": self._run_n(), "explicit": True}
            )
            self.run_id = engine.start(self.store, req, command=self.command)
        self._own.extend(archs)
        t = time.perf_counter()
        engine.execute(self.store, self.run_id, archs=list(self._own))
        self.measured_seconds += time.perf_counter() - t
        got = fetch_scores(self.store, self.planned.metric, [self.run_id], archs, "scored")
        lost = [a for a in archs if a not in got]
        if lost:  # pragma: no cover - the engine stores every architecture it scores
            raise NasfilterError(
                f"Score run {self.run_id} holds no {self.planned.metric} for {lost[0]}."
            )
        return got

    def _run_n(self) -> int:
        from nasfilter.spaces import get_space

        return max(1, min(self.budget, get_space(self.space).size))


def fetch_scores(
    store: Store, metric: str, run_ids: list[int], archs: list[str] | None, source: str
) -> dict[str, Evaluation]:
    """Stored values of ``metric`` (with params and size_kb of the same run) in runs
    ``run_ids``, for ``archs`` (None: all); the earliest run wins."""
    import pyarrow as pa

    if not run_ids:
        return {}
    want = pa.table({"arch": pa.array(archs or [], pa.string())})
    join = "" if archs is None else "JOIN _nf_want w ON w.arch = s.arch"
    with store.transaction(_nf_want=want) as con:
        rows = con.execute(
            f"""SELECT s.arch, s.run_id, s.value, s.status, s.seconds, p.value, z.value
FROM scores s
{join}
JOIN scores p ON p.run_id = s.run_id AND p.arch = s.arch AND p.metric = 'params'
JOIN scores z ON z.run_id = s.run_id AND z.arch = s.arch AND z.metric = 'size_kb'
WHERE s.metric = ? AND list_contains(?, s.run_id)
QUALIFY row_number() OVER (PARTITION BY s.arch ORDER BY s.run_id) = 1""",
            [metric, run_ids],
        ).fetchall()
    return {
        a: Evaluation(
            a,
            metric,
            float(v) if v is not None else math.nan,
            st,
            float(sec),
            int(p),
            float(z),
            int(rid),
            source,
        )
        for a, rid, v, st, sec, p, z in rows
    }


def stored_scores(store: Store, space: str, planned: PlannedScore) -> dict[str, Evaluation]:
    """Every reusable stored value for ``planned`` (earliest matching run first)."""
    return fetch_scores(store, planned.metric, matching_runs(store, space, planned), None, "stored")


def _replace_source(ev: Evaluation, source: str) -> Evaluation:
    d = asdict(ev)
    d["source"] = source
    return Evaluation(**d)


# --- ranking ----------------------------------------------------------------------------------


class Ranker:
    """Orders evaluations best first by a metric, penalized or not.

    rank value: the value, or value x p(size_kb / 1000) with a penalty (non-finite values
    kept as they are). NaN ranks last; ties go to fewer parameters, then the identity
    (as ``nasfilter top``).
    """

    def __init__(self, higher_is_better: bool, penalty: dict[str, Any] | None) -> None:
        self.higher = higher_is_better
        self.penalty = penalty

    def value(self, ev: Evaluation) -> float:
        if self.penalty is None:
            return ev.value
        from nasfilter.penalties import penalized

        p = self.penalty
        return float(penalized(ev.value, ev.size_kb / 1000.0, p["penalty"], p["mu"], p["sigma"]))

    def key(self, ev: Evaluation) -> tuple[Any, ...]:
        v = self.value(ev)
        nan = v != v
        return (nan, 0.0 if nan else (-v if self.higher else v), ev.params, ev.arch)

    def order(self, evs: Sequence[Evaluation]) -> list[int]:
        return sorted(range(len(evs)), key=lambda i: self.key(evs[i]))

    def best(self, evs: Sequence[Evaluation]) -> int:
        return min(range(len(evs)), key=lambda i: self.key(evs[i]))


# --- what a repeat produces -------------------------------------------------------------------


@dataclass
class Candidate:
    stage: str
    step: int
    evaluation: Evaluation
    rank_value: float
    parent: str | None = None


@dataclass
class RepeatContext:
    """What an algorithm gets for one repeat."""

    store: Store
    settings: dict[str, Any]
    population: Population
    repeat: int
    seed: int  # the repeat's sampling seed: settings seed + repeat
    planned: dict[str, PlannedScore]
    search_run_id: int
    stored: dict[str, dict[str, Evaluation]] | None  # reusable values by metric; None: off
    evaluators: list[Evaluator] = field(default_factory=list)
    candidates: list[Candidate] = field(default_factory=list)

    def evaluator(self, metric: str, budget: int, stage: str) -> Evaluator:
        ev = Evaluator(
            self.store,
            self.settings["space"],
            self.planned[metric],
            budget,
            self.stored[metric] if self.stored is not None else None,
            command=(
                f"nasfilter search (run {self.search_run_id}, repeat {self.repeat}, stage {stage})"
            ),
        )
        self.evaluators.append(ev)
        return ev

    def ranker(self, metric: str) -> Ranker:
        return Ranker(self.planned[metric].higher_is_better, self.settings["penalty"])

    def record(
        self,
        stage: str,
        evs: Sequence[Evaluation],
        ranker: Ranker,
        parents: Sequence[str | None] | None = None,
    ) -> list[Candidate]:
        start = sum(1 for c in self.candidates if c.stage == stage)
        out = []
        for i, ev in enumerate(evs):
            c = Candidate(
                stage, start + i, ev, ranker.value(ev), parents[i] if parents is not None else None
            )
            out.append(c)
        self.candidates.extend(out)
        return out


Algorithm = Callable[[RepeatContext], Candidate]


# --- statistics -----------------------------------------------------------------------------


def stats(values: Sequence[float | None]) -> dict[str, Any]:
    """mean, sample standard deviation (n - 1; None below two values) and n, over the
    finite values (as SQL's avg and stddev_samp over ``isfinite`` rows)."""
    xs = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if not xs:
        return {"mean": None, "std": None, "n": 0}
    arr = np.array(xs, dtype=float)
    return {
        "mean": float(arr.mean()),
        "std": float(arr.std(ddof=1)) if len(arr) > 1 else None,
        "n": len(arr),
    }


def truth_accuracy(store: Store, space: str, dataset: str, split: str) -> dict[str, float]:
    """Ground-truth accuracy (percent) by architecture: ``nasfilter.truth.accuracy_of``."""
    from nasfilter.truth import accuracy_of

    return dict(accuracy_of(store, space, dataset, split))


def resolve_split(store: Store, space: str, dataset: str, split: str | None) -> str:
    """``split``, or when None: 'test' if the database has test truth for the space and
    dataset, else 'valid' (the shipped sample has validation accuracy only)."""
    if split is not None:
        return split
    row = store.con.execute(
        "SELECT count(*) FROM truth WHERE space = ? AND dataset = ? AND split = 'test'",
        [space, dataset],
    ).fetchone()
    return "test" if row and row[0] else "valid"


def truth_available(store: Store, space: str) -> list[tuple[str, str, int]]:
    """(dataset, split, architectures) of the truth held for ``space``."""
    return [
        (d, s, int(n))
        for d, s, n in store.con.execute(
            "SELECT dataset, split, count(*) FROM truth WHERE space = ? GROUP BY ALL ORDER BY ALL",
            [space],
        ).fetchall()
    ]
