"""The scorer seam: typed settings, the per-architecture scorer, metrics by declared needs,
spaces by capability, explicit lists, and the one ranking rule."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from nasfilter import engine
from nasfilter.errors import InvalidArchitectureError, UsageError
from nasfilter.metrics import registry
from nasfilter.metrics.registry import metric
from nasfilter.scoring.scorer import Scorer
from nasfilter.scoring.settings import ArchPlan, RunSettings
from nasfilter.spaces import get_space, list_spaces, register_space
from nasfilter.spaces.base import Space
from nasfilter.store import Store
from tests.conftest import invoke

TSS = get_space("nats-tss")


@pytest.fixture(scope="module", autouse=True)
def _registries_as_found() -> Iterator[None]:
    """The toy metrics and spaces registered here are gone after this module (the
    documentation tests check every registered name, in whatever order they run)."""
    from nasfilter import spaces

    registry.list_metrics(), list_spaces()  # the built-in ones are loaded: they stay
    metrics_before, spaces_before = set(registry._REGISTRY), set(spaces._REGISTRY)
    yield
    for name in set(registry._REGISTRY) - metrics_before:
        registry._REGISTRY.pop(name)
    for name in set(spaces._REGISTRY) - spaces_before:
        spaces._REGISTRY.pop(name)


# -- toy metric: gradients and a fresh network ----------------------------------------------
_CALLS: dict[str, int] = {}


def _register_toy_metric() -> None:
    if "toy_gradnorm" in registry._REGISTRY:
        return

    @metric(
        "toy_gradnorm",
        needs=("data", "labels", "gradients", "fresh_network"),
        description="test: sum of squared loss gradients, after zeroing the first conv",
    )
    def toy_gradnorm(inp):  # type: ignore[no-untyped-def]
        import torch

        _CALLS["n"] = _CALLS.get("n", 0) + 1
        net = inp.model
        first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
        with torch.no_grad():
            first.weight.zero_()  # modifies its copy: allowed, it declared fresh_network
        net.train()
        loss = torch.nn.functional.cross_entropy(inp.logits(net, inp.inputs), inp.targets)
        loss.backward()
        return float(sum((p.grad**2).sum() for p in net.parameters() if p.grad is not None))


def _independent_toy(arch: str, seed: int, k: int) -> float:
    """The same value computed here from scratch: the seeded network, the run's batch and
    labels (synthetic: seeded N(0,1) images, labels drawn after them)."""
    import torch

    from nasfilter.data import synthetic_batch
    from nasfilter.scoring.settings import arch_seed

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(arch_seed(seed, arch))
        net = TSS.build(arch)
    b = synthetic_batch(k, seed)
    first = next(m for m in net.modules() if isinstance(m, torch.nn.Conv2d))
    with torch.no_grad():
        first.weight.zero_()
    net.train()
    out = net(torch.from_numpy(b.images))
    out = out[-1] if isinstance(out, tuple) else out
    loss = torch.nn.functional.cross_entropy(out, torch.from_numpy(b.labels))
    loss.backward()
    return float(sum((p.grad**2).sum() for p in net.parameters() if p.grad is not None))


def test_a_toy_metric_with_gradients_and_a_fresh_network_scores_from_the_cli(
    runner: CliRunner, db: Path
) -> None:
    _register_toy_metric()
    r = invoke(
        runner, "score", "nats-tss", "--n", "3", "--metrics", "toy_gradnorm,naswot,relu_count",
        "--data", "synthetic", "-K", "4", "--seed", "2", "--db", str(db), "-f", "json",
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    summary = json.loads(r.stdout)
    assert summary["statuses"]["toy_gradnorm"] == {"ok": 3}
    with Store.open(db, read_only=True) as st:
        rows = st.con.execute(
            "SELECT arch, metric, value FROM scores WHERE run_id = 1 ORDER BY position"
        ).fetchall()
        meta = {m["metric"]: m for m in st.run_metrics(1)}
    assert meta["toy_gradnorm"]["path"] == "model" and meta["toy_gradnorm"]["needs_gradients"]
    assert json.loads(meta["toy_gradnorm"]["metadata"])["needs_fresh_network"] is True
    got = {(a, m): v for a, m, v in rows}
    archs = TSS.sample(3, 2)
    for a in archs:
        assert got[(a, "toy_gradnorm")] == pytest.approx(_independent_toy(a, 2, 4), rel=1e-5)
    # naswot saw the pristine network: equal to a run without the modifying metric
    r = invoke(
        runner, "score", "nats-tss", "--n", "3", "--metrics", "naswot", "--data", "synthetic",
        "-K", "4", "--seed", "2", "--db", str(db),
    )  # fmt: skip
    assert r.exit_code == 0, r.output
    with Store.open(db, read_only=True) as st:
        alone = dict(
            st.con.execute(
                "SELECT arch, value FROM scores WHERE run_id = 2 AND metric = 'naswot'"
            ).fetchall()
        )
    for a in archs:
        assert alone[a] == got[(a, "naswot")]


@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
def test_compute_gives_the_cli_value_and_leaves_the_model_unchanged(layout: str) -> None:
    """compute() on a network and batch in the run's memory format = the run's value,
    bit for bit (the default run lays them out channels-last)."""
    import torch

    from nasfilter.data import synthetic_batch
    from nasfilter.metrics import compute
    from nasfilter.scoring.settings import arch_seed

    _register_toy_metric()
    arch = TSS.sample(1, 9)[0]
    fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
    settings = RunSettings.make("nats-tss", "toy_gradnorm,naswot", data="synthetic",
                                batch_size=4, seed=9, memory_format=layout)  # fmt: skip
    assert settings.memory_format == layout
    with Scorer(settings) as sc:
        res = sc.score(arch)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(arch_seed(9, arch))
        net = TSS.build(arch).to(memory_format=fmt)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    b = synthetic_batch(4, 9)
    x, y = torch.from_numpy(b.images), torch.from_numpy(b.labels)
    x = x.contiguous(memory_format=fmt)
    assert compute("toy_gradnorm", net, x, y) == res.value("toy_gradnorm")[0]
    assert compute("naswot", net, x) == res.value("naswot")[0]
    after = net.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert all(p.grad is None for p in net.parameters())
    with pytest.raises(UsageError, match="needs targets"):
        compute("toy_gradnorm", net, x)


def test_memory_format_is_recorded_and_keys_reuse() -> None:
    """The layout is a setting: recorded with a run that builds networks, read back
    (runs recorded before it existed were contiguous), part of a network metric's reuse
    key and absent from an analytic-only run's."""
    cl = RunSettings.make("nats-tss", "naswot", data="synthetic")
    nchw = RunSettings.make("nats-tss", "naswot", data="synthetic", memory_format="contiguous")
    assert cl.memory_format == "channels_last" and nchw.memory_format == "contiguous"
    assert RunSettings.from_json(cl.to_json()) == cl
    assert RunSettings.from_json(nchw.to_json()) == nchw
    old = cl.to_json()
    del old["memory_format"]
    assert RunSettings.from_json(old).memory_format == "contiguous"
    assert cl.reuse_key("naswot") != nchw.reuse_key("naswot")
    assert RunSettings.from_json(old).reuse_key("naswot") == nchw.reuse_key("naswot")
    assert cl.reuse_key("params") == nchw.reuse_key("params")  # analytic
    analytic = RunSettings.make("nats-tss", "relu_count", memory_format="contiguous")
    assert analytic.memory_format is None
    assert RunSettings.from_json(analytic.to_json()) == analytic
    with pytest.raises(UsageError, match="memory-format"):
        RunSettings.make("nats-tss", "naswot", data="synthetic", memory_format="nhwc")


def test_map_with_and_without_the_build_thread_gives_the_same_values() -> None:
    """map() builds in turn on the CPU and one ahead in a thread on an accelerator; both
    give score()'s values, in order, for every architecture."""
    archs = TSS.sample(4, 3)
    settings = RunSettings.make("nats-tss", "naswot,relu_count", data="synthetic", batch_size=4)
    with Scorer(settings) as sc:
        assert sc.prefetch is False  # the CPU
        alone = [sc.score(a, i).rows for i, a in enumerate(archs)]
        inline = [(r.position, r.rows) for r in sc.map(enumerate(archs))]
        sc.prefetch = True
        ahead = [(r.position, r.rows) for r in sc.map(enumerate(archs))]
        assert sc._pool is not None  # the thread ran
    values = [[(n, v, st) for n, v, st, _ in rows] for rows in alone]
    for got in (inline, ahead):
        assert [p for p, _ in got] == [0, 1, 2, 3]
        assert [[(n, v, st) for n, v, st, _ in rows] for _, rows in got] == values


def _register_rewiring_metric() -> None:
    """A fresh_network metric that changes its network's structure and leaves a hook."""
    if "toy_rewire" in registry._REGISTRY:
        return

    @metric("toy_rewire", needs=("fresh_network",), description="test: rewires its copy")
    def toy_rewire(inp):  # type: ignore[no-untyped-def]
        import torch

        net = inp.model
        net.classifier = torch.nn.Linear(net.classifier.in_features, 3)
        torch.nn.init.constant_(net.classifier.weight, 0.5)  # deterministic
        torch.nn.init.constant_(net.classifier.bias, 0.25)
        net.register_forward_hook(lambda *a: None)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(1.0)
        return float(sum(p.sum() for p in net.parameters()))


@pytest.mark.parametrize(
    "metrics",
    [
        "meco,az_expressivity,az_trainability,zen,linear_regions,naswot,relu_count",
        "toy_gradnorm,naswot,toy_rewire,meco,swap,toy_gradnorm",
        "toy_rewire,synflow,jacob_cov,toy_gradnorm",
    ],
)
def test_a_lent_network_gives_the_values_of_copies(metrics: str) -> None:
    """fresh_network metrics scored on the pristine network lent to them (taken back in
    place, or built again when one rewired it) give exactly the values of deep copies,
    whatever the order of the metrics and whatever each did to its network."""
    _register_toy_metric()
    _register_rewiring_metric()
    settings = RunSettings.make("nats-tss", metrics.split(","), data="synthetic", batch_size=4)
    archs = TSS.sample(2, 5)
    got = {}
    for lend in (True, False):
        with Scorer(settings) as sc:
            sc.lend = lend
            got[lend] = [[(n, v, st) for n, v, st, _ in sc.score(a).rows] for a in archs]
    assert got[True] == got[False]
    assert all(st == "ok" for rows in got[True] for _, _, st in rows)


def test_a_lent_network_is_taken_back_or_built_again() -> None:
    import torch

    from nasfilter.datasets import get_shape
    from nasfilter.metrics.inputs import ArchState
    from nasfilter.metrics.registry import ScoreContext

    _register_rewiring_metric()
    shape = get_shape("cifar10")
    arch = TSS.sample(1, 2)[0]

    def build() -> torch.nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(7)
            return TSS.build(arch)

    net = build()
    want = {k: v.clone() for k, v in net.state_dict().items()}
    st = ArchState(
        net, shape=shape, batch_size=4, device=torch.device("cpu"), seed=0,
        ctx=ScoreContext(dataset=shape), lend=True, rebuild=build,
    )  # fmt: skip
    lent = st.scratch(None)
    assert lent is net  # no copy
    with torch.no_grad():
        next(lent.parameters()).mul_(3)
    lent.eval()
    assert st.clean() is net and st.rebuilds == 0  # taken back in place
    assert all(torch.equal(want[k], v) for k, v in net.state_dict().items())
    assert net.training
    lent = st.scratch(None)
    lent.classifier = torch.nn.Identity()  # structure changed: built again
    back = st.clean()
    assert back is not net and st.rebuilds == 1
    assert all(torch.equal(want[k], v) for k, v in back.state_dict().items())
    copy_ = st.fresh()
    assert copy_ is not back and st.rebuilds == 1


def test_metrics_are_discovered_and_declare_their_needs() -> None:
    names = {m.name for m in registry.list_metrics()}
    assert {"relu_count", "params", "flops", "size_kb", "naswot"} <= names
    for m in registry.list_metrics():
        assert set(m.needs) <= set(registry.NEEDS), m.name
        assert m.model_capable or m.from_arch is not None or m.aggregate is not None
    with pytest.raises(ValueError, match="unknown needs"):
        registry.register(
            registry.Metric(
                "toy_bad_needs", "1", True, "x", needs=frozenset({"wifi"}), from_arch=lambda *a: 1
            )
        )


# -- toy space: sampling only, no analytic costs ----------------------------------------------
class _ToySpace(Space):
    """Chains of 1-4 conv widths from {4, 8, 12}: 'w1-w2-...'; sampled, never enumerated."""

    name = "toy-chains"
    description = "test space"
    notation = "w1-w2-... (1 to 4 widths from 4, 8, 12)"
    shapes = ("cifar10",)

    def parse(self, arch: str) -> tuple[int, ...]:
        try:
            ws = tuple(int(w) for w in str(arch).split("-"))
        except ValueError:
            raise InvalidArchitectureError(f"Malformed chain {arch!r}.") from None
        if not 1 <= len(ws) <= 4 or any(w not in (4, 8, 12) for w in ws):
            raise InvalidArchitectureError(f"Malformed chain {arch!r}.")
        return ws

    def format(self, parsed: tuple[int, ...]) -> str:
        return "-".join(str(w) for w in parsed)

    def draw(self, rng: np.random.Generator) -> str:
        n = int(rng.integers(1, 5))
        return self.format(tuple(int(w) for w in rng.choice([4, 8, 12], size=n)))

    def mutate(self, arch: str, rng: np.random.Generator) -> str:
        ws = list(self.parse(arch))
        i = int(rng.integers(len(ws)))
        ws[i] = int(rng.choice([w for w in (4, 8, 12) if w != ws[i]]))
        return self.format(tuple(ws))

    def build(self, arch, shape=None):  # type: ignore[no-untyped-def]
        from torch import nn

        shape = self.shape(shape)
        layers: list[nn.Module] = []
        c = shape.channels
        for w in self.parse(arch):
            layers += [nn.Conv2d(c, w, 3, padding=1), nn.ReLU()]
            c = w
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(c, shape.num_classes)]
        return nn.Sequential(*layers)


def _toy() -> Space:
    if "toy-chains" not in {s.name for s in list_spaces()}:
        register_space(_ToySpace)
    return get_space("toy-chains")


def test_builtin_spaces_stay_registered_next_to_a_custom_one() -> None:
    _toy()
    names = {s.name for s in list_spaces()}
    assert {"nats-tss", "nats-sss", "toy-chains"} <= names


def test_a_sampling_only_space_without_costs_scores_and_measures(
    runner: CliRunner, db: Path
) -> None:
    sp = _toy()
    r = invoke(runner, "score", "toy-chains", "--n", "6", "--seed", "1", "--db", str(db))
    assert r.exit_code == 0, r.output
    with Store.open(db, read_only=True) as st:
        rows = st.con.execute("SELECT arch, metric, value FROM scores WHERE run_id = 1").fetchall()
        paths = {m["metric"]: m["path"] for m in st.run_metrics(1)}
        ref = st.con.execute("SELECT params, flops FROM architectures").fetchall()
    assert paths == {
        "relu_count": "probe", "flops": "probe", "params": "model", "size_kb": "model",
    }  # fmt: skip
    assert ref and all(p is None and f is None for p, f in ref)  # no analytic costs: NULL
    got = {(a, m): v for a, m, v in rows}
    sample = sp.sample(6, 1)
    assert len(set(sample)) == 6 and {a for a, _ in got} == set(sample)
    for a in sample:  # independent counts of the chain network
        ws = sp.parse(a)
        cins = (3, *ws[:-1])
        params = sum(9 * ci * w + w for ci, w in zip(cins, ws, strict=True)) + ws[-1] * 10 + 10
        assert got[(a, "params")] == params
        assert got[(a, "relu_count")] == sum(ws) * 32 * 32
        flops = sum((9 * ci * w + w) * 1024 for ci, w in zip(cins, ws, strict=True))
        assert got[(a, "flops")] == flops + ws[-1] * 10 + 10
        assert got[(a, "size_kb")] == params / 1000
    r = invoke(runner, "score", "toy-chains", "--all", "--db", str(db))
    assert r.exit_code == 2 and "cannot be enumerated" in r.stderr
    r = invoke(runner, "search", "toy-chains", "--algo", "evolution", "--n", "12",
               "--repeats", "1", "--db", str(db))  # fmt: skip
    assert r.exit_code == 0, r.output


# -- explicit lists ---------------------------------------------------------------------------
def test_archs_file_is_canonicalized_and_bad_lines_refuse_it_whole(
    runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    f = tmp_path / "archs.txt"
    f.write_text("8:16:24:32:64\n# a comment\n\n 8:8:8:8:8\nbad\n8:16:24:32:64\n")
    r = invoke(runner, "score", "nats-sss", "--archs", str(f), "--db", str(db))
    assert r.exit_code == 2
    assert "line 5: Malformed SSS" in r.stderr and "line 6: duplicate of line 1" in r.stderr
    assert "nothing was scored" in r.stderr
    assert not db.exists() or invoke(runner, "runs", "--db", str(db)).stdout.count("score") == 0
    f.write_text("64:8:8:8:8\n8:16:24:32:64\n")
    r = invoke(runner, "score", "nats-sss", "--archs", str(f), "--n", "3", "--db", str(db))
    assert r.exit_code == 2 and "not several" in r.stderr
    r = invoke(runner, "score", "nats-sss", "--archs", str(f), "--db", str(db))
    assert r.exit_code == 0, r.output
    with Store.open(db, read_only=True) as st:
        order = st.con.execute(
            "SELECT arch FROM scores WHERE run_id = 1 AND metric = 'params' ORDER BY position"
        ).fetchall()
        assert [a for (a,) in order] == ["64:8:8:8:8", "8:16:24:32:64"]
        assert st.run_archs(1) == ["64:8:8:8:8", "8:16:24:32:64"]
    r = runner.invoke(
        __import__("nasfilter.cli", fromlist=["app"]).app,
        ["score", "nats-sss", "--archs", "-", "--db", str(db)],
        input="16:16:16:16:16\n",
    )
    assert r.exit_code == 0, r.output


def test_resuming_a_list_run_scores_its_list_and_never_a_fresh_sample(db: Path) -> None:
    archs = TSS.sample(40, 3)[::-1]
    with Store.open(db) as st:
        run = engine.start(st, engine.ScoreRequest("nats-tss", archs=archs))
        seen = 0

        def stop(k: int) -> None:
            nonlocal seen
            seen += k
            if seen >= 10:
                raise KeyboardInterrupt

        with pytest.raises(engine.RunInterrupted):
            engine.execute(st, run, on_progress=stop, flush_seconds=0.0)
        s = engine.execute(st, run)
        assert s.archs_total == 40 and s.archs_skipped + s.archs_scored == 40
        got = st.con.execute(
            "SELECT arch FROM scores WHERE run_id = ? AND metric = 'params' ORDER BY position",
            [run],
        ).fetchall()
    assert [a for (a,) in got] == archs


# -- settings: typed, the reuse key, old runs ---------------------------------------------------
def test_settings_round_trip_and_reuse_key() -> None:
    s = RunSettings.make("nats-tss", "naswot", data="synthetic", batch_size=8, seed=3)
    assert s.metrics == ("naswot", "params", "size_kb")
    again = RunSettings.from_json(json.loads(json.dumps(s.to_json())))
    assert again == s
    assert s.reuse_key("naswot") == again.reuse_key("naswot")
    assert s.reuse_key("naswot") != RunSettings.make(
        "nats-tss", "naswot", data="synthetic", batch_size=8, seed=4
    ).reuse_key("naswot")
    # a data-free run records no data, so its values are reusable whatever --data was
    free = RunSettings.make("nats-tss", "relu_count", data="synthetic", seed=3)
    assert free.data is None
    assert free.reuse_key("relu_count") == RunSettings.make("nats-tss", "relu_count").reuse_key(
        "relu_count"
    )
    # nasfilter 0.x settings still read
    old = {
        "space": "nats-sss", "n": 5, "all": False, "seed": 1, "metrics": ["relu_count"],
        "dataset_shape": {"name": "cifar10", "num_classes": 10, "resolution": 32},
        "bytes_per_param": 1.0, "builds_networks": False, "penalty": None,
    }  # fmt: skip
    assert RunSettings.from_json(old).space == "nats-sss"
    assert ArchPlan.from_json(old) == ArchPlan("sample", 5)
    for bad, msg in (
        (dict(seed=-1), "--seed must be at least 0"),
        (dict(device="tpu"), "Unknown --device 'tpu'"),
        (dict(bytes_per_param=math.nan), "--bytes-per-param must be a positive number"),
        (dict(shape="moon"), "Unknown dataset shape"),
        (dict(shape="mnist"), "not built at the mnist shape"),
    ):
        with pytest.raises(UsageError, match=msg):
            RunSettings.make("nats-tss", "relu_count", **bad)  # type: ignore[arg-type]


def test_usage_errors_leave_no_run_row(runner: CliRunner, db: Path) -> None:
    """Regression: `--seed -1` left a failed run; `--device` was checked after the run row."""
    for args in (
        ("--seed", "-1"),
        ("--device", "tpu"),
        ("--metrics", "naswot", "--data", "synthetic", "--device", "cuda"),
    ):
        r = invoke(runner, "score", "nats-tss", "--n", "3", *args, "--db", str(db))
        assert r.exit_code in (2, 5), r.output
        assert r.stderr.startswith("Error: ") and "Traceback" not in r.output
    if db.exists():
        with Store.open(db, read_only=True) as st:
            assert st.con.execute("SELECT count(*) FROM runs").fetchone() == (0,)


# -- one ranking rule: SQL and Python agree ------------------------------------------------------
@pytest.mark.parametrize("tie", ["first", "smallest", "largest", "flops"])
def test_top_sql_order_equals_the_python_rule(runner: CliRunner, db: Path, tie: str) -> None:
    from nasfilter.ranking import RankRule

    r = invoke(runner, "score", "nats-tss", "--n", "400", "--seed", "3", "--db", str(db))
    assert r.exit_code == 0
    r = invoke(runner, "top", "--k", "60", "--tie-break", tie, "--db", str(db), "-f", "json")
    assert r.exit_code == 0, r.output
    got = [x["arch"] for x in json.loads(r.stdout)]
    sample = TSS.sample(400, 3)
    rule = RankRule(True, tie, tie_higher_is_better=False)
    want = sorted(
        range(400),
        key=lambda i: rule.key(
            TSS.costs(sample[i]).relu_count,
            i,
            TSS.costs(sample[i]).params,
            sample[i],
            TSS.costs(sample[i]).flops,
        ),
    )[:60]
    assert got == [sample[i] for i in want]


def test_top_says_how_large_the_tie_group_at_the_cut_is(runner: CliRunner, db: Path) -> None:
    invoke(runner, "score", "nats-tss", "--n", "500", "--db", str(db))
    sample = TSS.sample(500, 0)
    values = sorted({TSS.costs(a).relu_count for a in sample}, reverse=True)
    counts = [sum(1 for a in sample if TSS.costs(a).relu_count == v) for v in values]
    k = counts[0] + 2  # the cut falls two into the second group
    assert counts[1] > 2  # relu_count ties: the normal case on TSS
    r = invoke(runner, "top", "--k", str(k), "--db", str(db))
    assert r.exit_code == 0
    want = f"{counts[1]:,} architectures tie at relu_count = {values[1]:,}; showing 2 of them"
    assert want in r.stderr
    r = invoke(runner, "top", "--k", str(counts[0]), "--db", str(db))
    assert "tie at" not in r.stderr  # the cut falls between groups


@pytest.mark.parametrize(
    ("value", "msg"),
    [("inf", "finite"), ("nan", "finite"), ("-1", "positive"), ("0", "positive")],
)
def test_top_max_kb_must_be_a_positive_finite_size(
    runner: CliRunner, db: Path, value: str, msg: str
) -> None:
    invoke(runner, "score", "nats-sss", "--n", "5", "--db", str(db))
    r = invoke(runner, "top", "--max-kb", value, "--db", str(db))
    assert r.exit_code == 2 and msg in r.stderr and r.stderr.count("\n") == 1


def test_latest_is_the_users_score_run_not_a_searchs(runner: CliRunner, db: Path) -> None:
    """Regression: after a search, bare `top` failed with "Run 3 has no metric ..."."""
    invoke(runner, "score", "nats-tss", "--n", "50", "--db", str(db))
    r = invoke(runner, "search", "nats-tss", "--n", "10", "--repeats", "2", "--metric",
               "params", "--db", str(db))  # fmt: skip
    assert r.exit_code == 0, r.output
    for cmd in (("top",), ("analyze",), ("export", "--out", str(db.parent / "x.parquet"))):
        r = invoke(runner, *cmd, "--db", str(db))
        assert "has no metric" not in r.stderr, (cmd, r.stderr)
        assert "run 1" in (r.stdout + r.stderr).lower() or r.exit_code in (0, 4), (cmd, r.output)
    r = invoke(runner, "top", "--run", "2", "--db", str(db))
    assert r.exit_code == 2 and "is a search run" in r.stderr and "run(s) 3, 4" in r.stderr


def test_score_prints_the_run_id_on_stdout(runner: CliRunner, db: Path) -> None:
    r = invoke(runner, "score", "nats-sss", "--n", "4", "--db", str(db))
    assert r.exit_code == 0 and r.stdout == "1\n"
    r = invoke(runner, "score", "nats-sss", "--n", "4", "--db", str(db), "-f", "json")
    d = json.loads(r.stdout)
    assert d["run_id"] == 2 and d["archs_scored"] == 4 and d["status"] == "completed"


def test_each_metric_stores_its_own_time(db: Path) -> None:
    """Regression: in a NASWOT run, params and size_kb carried the whole model time."""
    with Store.open(db) as st:
        run = engine.start(
            st,
            engine.ScoreRequest(
                "nats-tss", n=3, metrics="naswot", data="synthetic", batch_size=8
            ),  # fmt: skip
        )
        engine.execute(st, run)
        rows = st.con.execute(
            "SELECT metric, max(seconds) FROM scores WHERE run_id = ? GROUP BY metric", [run]
        ).fetchall()
        timings = st.con.execute(
            "SELECT min(build_seconds), min(pass_seconds) FROM arch_timings WHERE run_id = ?",
            [run],
        ).fetchone()
    own = dict(rows)
    assert own["params"] < 0.01 and own["size_kb"] < 0.01  # analytic: microseconds
    assert timings[0] > 0 and timings[1] > own["params"]  # the shared work, stored once


def test_readers_get_in_between_batches_of_a_running_score(db: Path, tmp_path: Path) -> None:
    """Regression: a long score run locked the database for its whole duration."""
    import subprocess
    import sys
    import time

    script = tmp_path / "run.py"
    script.write_text(
        "import time\nfrom nasfilter import engine\nfrom nasfilter.store import Store\n"
        f"s = Store.open({str(db)!r})\n"
        "run = engine.start(s, engine.ScoreRequest(space='nats-sss', n=3000))\n"
        "print(run, flush=True)\n"
        "engine.execute(s, run, on_progress=lambda k: time.sleep(0.05), batch_rows=400,"
        " chunk_size=50, release_seconds=0.2)\n"
        "s.close()\n"
    )
    p = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None
        run = int(p.stdout.readline())
        time.sleep(1.0)
        with pytest.MonkeyPatch.context() as mp:
            mp.setenv("NASFILTER_LOCK_TIMEOUT", "10")
            with Store.open(db, read_only=True) as st:  # gets in while the run goes on
                status = st.get_run(run)["status"]
                n = st.con.execute("SELECT count(*) FROM scores").fetchone()[0]
        assert status == "running" and n % 4 == 0
    finally:
        p.wait(timeout=120)
    assert p.returncode == 0
