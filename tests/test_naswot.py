"""NASWOT and the ReLU probe: the kernel identities, an independent recomputation, the
singular status, functional ReLUs, arbitrary modules, BN mode and determinism.

The independent kernel is built from codes captured by plain ``nn.ReLU`` forward
pre-hooks (or recorded by a test network's own forward), concatenated, and multiplied
with numpy: K_H = C Cᵀ + (1−C)(1−C)ᵀ; the score is ``numpy.linalg.slogdet`` of it.
"""

from __future__ import annotations

import math
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from nasfilter import engine
from nasfilter.data import load_batch, synthetic_batch
from nasfilter.metrics import naswot, relu_count
from nasfilter.metrics import probe as probe_mod
from nasfilter.metrics.measures.naswot import score_kernel
from nasfilter.metrics.probe import ModelProbe
from nasfilter.spaces import get_space
from nasfilter.store import Store

pytestmark = pytest.mark.usefixtures("one_torch_thread")

ALL_NONE = "|none~0|+|none~0|none~1|+|none~0|none~1|none~2|"
TSS_SAMPLE = [
    get_space("nats-tss").unrank(int(i)) for i in get_space("nats-tss").sample_indices(5, 7)
]
SSS_SAMPLE = [
    get_space("nats-sss").unrank(int(i)) for i in get_space("nats-sss").sample_indices(3, 7)
]
CASES = [("nats-tss", a) for a in [*TSS_SAMPLE, ALL_NONE]] + [("nats-sss", a) for a in SSS_SAMPLE]


def batch(k: int, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(synthetic_batch(k, seed).images)


def build(space: str, arch: str, seed: int = 0) -> nn.Module:
    torch.manual_seed(engine.arch_seed(seed, arch))
    return get_space(space).build(arch, 10)


def module_codes(model: nn.Module, x: torch.Tensor, train: bool = True) -> np.ndarray:
    """Concatenated codes (K x N_A, float64) from pre-hooks on every ``nn.ReLU``."""
    parts: list[np.ndarray] = []

    def hook(mod: nn.Module, inp: tuple[torch.Tensor, ...]) -> None:
        parts.append((inp[0] > 0).reshape(inp[0].shape[0], -1).numpy().astype(np.float64))

    handles = [m.register_forward_pre_hook(hook) for m in model.modules() if isinstance(m, nn.ReLU)]
    model.train(train)
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    if not parts:
        return np.zeros((x.shape[0], 0))
    return np.concatenate(parts, axis=1)


def reference_kernel(codes: np.ndarray) -> np.ndarray:
    return codes @ codes.T + (1.0 - codes) @ (1.0 - codes).T


def reference_score(kernel: np.ndarray) -> float:
    sign, logdet = np.linalg.slogdet(kernel)
    return -math.inf if sign == 0 else float(logdet)


def has_duplicate_codes(codes: np.ndarray) -> bool:
    return len({row.tobytes() for row in codes}) < codes.shape[0]


def assert_same_score(got: float, want: float) -> None:
    if math.isinf(want):
        assert got == want
    else:
        assert abs(got - want) <= 1e-9 * abs(want), (got, want)


# -- the identities, architecture by architecture ---------------------------------------
@pytest.mark.parametrize("space,arch", CASES)
def test_kernel_identities_and_independent_recomputation(space: str, arch: str) -> None:
    k = 8 if space == "nats-tss" else 12
    x = batch(k)
    model = build(space, arch)
    p = ModelProbe(model, x, want_kernel=True)
    kh = p.kernel()
    n_a = get_space(space).costs(arch).relu_count
    assert p.relu_count() == n_a

    km = kh.numpy()
    assert km.dtype == np.float64 and km.shape == (k, k)
    assert np.all(np.diag(km) == n_a)
    assert np.trace(km) == k * n_a
    assert np.array_equal(km, km.T)
    assert np.array_equal(km, np.round(km))
    assert km.min() >= 0 and km.max() <= n_a

    codes = module_codes(model, x)
    assert codes.shape == (k, n_a)
    ref = reference_kernel(codes)
    assert np.array_equal(km, ref)

    sc = score_kernel(kh)
    if has_duplicate_codes(codes):
        assert (sc.value, sc.status) == (-math.inf, "singular")
    else:
        assert sc.status == "ok"
        assert_same_score(sc.value, reference_score(ref))
    assert naswot(model, x) == sc.value  # the API: same code path


def test_all_none_cell_is_singular_not_a_number() -> None:
    model = build("nats-tss", ALL_NONE)
    sc = score_kernel(ModelProbe(model, batch(8), want_kernel=True).kernel())
    assert sc.status == "singular" and sc.value == -math.inf


def test_float_path_split_in_chunks_gives_the_same_kernel(monkeypatch: pytest.MonkeyPatch) -> None:
    """The Gram products are exact: float32, also split into chunks of 1,000 codes (sums
    far below 2**24 each), and int8 ``_int_mm`` (AVX-512 CPUs) give the int64 product of
    the codes."""
    model, x = build("nats-tss", TSS_SAMPLE[0]), batch(8)
    want = ModelProbe(model, x, want_kernel=True).kernel()
    codes = torch.from_numpy(module_codes(model, x)).long()
    g = codes @ codes.T
    r = torch.diagonal(g)
    exact = 2 * g - r[:, None] - r[None, :] + codes.shape[1]
    assert torch.equal(want, exact.to(torch.float64))
    monkeypatch.setitem(probe_mod._INT_MM_OK, "cpu", True)  # the AVX-512 path: int8 products
    assert torch.equal(ModelProbe(model, x, want_kernel=True).kernel(), exact.to(torch.float64))
    monkeypatch.setitem(probe_mod._INT_MM_OK, "cpu", False)
    monkeypatch.setattr(probe_mod, "_F32_EXACT", 1001)
    assert torch.equal(ModelProbe(model, x, want_kernel=True).kernel(), want)


# -- singular -----------------------------------------------------------------------------
def test_two_identical_samples_give_singular_through_the_api() -> None:
    model = build("nats-tss", TSS_SAMPLE[0])
    x = batch(8)
    x[5] = x[2]
    kh = ModelProbe(model, x, want_kernel=True).kernel()
    assert kh[2, 5] == kh[2, 2]
    sc = score_kernel(kh)
    assert (sc.value, sc.status) == (-math.inf, "singular")
    assert naswot(model, x) == -math.inf


def write_cifar10(
    root: Path, seed: int = 0, per_batch: int = 4, dup: tuple[int, int] | None = None
) -> Path:
    """``root/cifar-10-python.tar.gz`` in the official format (5 train batches + test)."""
    rng = np.random.default_rng(seed)
    rows = rng.integers(0, 256, size=(5 * per_batch + 4, 3072), dtype=np.uint8)
    if dup is not None:
        rows[dup[1]] = rows[dup[0]]
    members = {}
    for b in range(5):
        sl = slice(b * per_batch, (b + 1) * per_batch)
        members[f"data_batch_{b + 1}"] = {
            b"batch_label": b"training batch %d of 5" % (b + 1),
            b"labels": [i % 10 for i in range(sl.start, sl.stop)],
            b"data": rows[sl],
            b"filenames": [b"img_%d.png" % i for i in range(sl.start, sl.stop)],
        }
    members["test_batch"] = {b"labels": [0] * 4, b"data": rows[-4:]}
    members["batches.meta"] = {
        b"num_cases_per_batch": per_batch,
        b"label_names": [b"c"] * 10,
        b"num_vis": 3072,
    }
    root.mkdir(parents=True, exist_ok=True)
    archive = root / "cifar-10-python.tar.gz"
    staging = root / "staging"
    staging.mkdir(exist_ok=True)
    with tarfile.open(archive, "w:gz") as tar:
        for name, obj in members.items():
            path = staging / name
            path.write_bytes(pickle.dumps(obj, protocol=2))
            tar.add(path, arcname=f"cifar-10-batches-py/{name}")
    return archive


def test_singular_through_the_cli_is_stored_and_counted(tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from nasfilter.cli import app

    data = tmp_path / "data"
    write_cifar10(data, dup=(3, 7))  # 20 training images, two identical; K=20 takes all
    db = tmp_path / "s.duckdb"
    r = CliRunner().invoke(
        app,
        [
            "score",
            "nats-tss",
            "--n",
            "2",
            "--metrics",
            "naswot",
            "--data",
            "cifar10",
            "--data-dir",
            str(data),
            "-K",
            "20",
            "--db",
            str(db),
        ],
    )
    assert r.exit_code == 0, r.output
    assert "naswot: 2 singular" in r.stderr
    with Store.open(db, read_only=True) as store:
        _, rows = store.query("SELECT value, status FROM scores WHERE metric = 'naswot'")
    assert sorted(rows) == [(-math.inf, "singular")] * 2


# -- ReLU counting on arbitrary modules ---------------------------------------------------
class Functional(nn.Module):
    """Every ReLU form once or more; expected N_A for a 3x8x8 input below."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.act = nn.ReLU(inplace=True)
        self.plain = nn.ReLU()
        self.others = nn.Sequential(nn.ReLU6(), nn.LeakyReLU(), nn.GELU(), nn.ELU())
        self.lin = nn.Linear(4 * 8 * 8, 5)
        self.gate = nn.Parameter(torch.ones(7))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.conv(x)  # (K, 4, 8, 8): 256 per sample
        a = F.relu(h)  # 256
        b = torch.relu(a - 0.1)  # 256
        c = (b + 1).relu_()  # 256, Tensor.relu_
        d = F.relu(c - 1, inplace=True)  # 256
        e = self.act(d - 0.5)  # 256, nn.ReLU(inplace=True)
        f = self.plain(e)  # 256, nn.ReLU
        f = torch.relu_(f.clone())  # 256
        f = F.relu_(f - 0.2)  # 256
        f = self.others(f)  # not ReLU: not counted
        g = self.lin(f.flatten(1))  # (K, 5)
        w = F.relu(self.gate)  # a parameter, not a per-sample activation: not counted
        return g.relu() + w.sum()  # 5


FUNCTIONAL_N_A = 8 * 256 + 5


def test_relu_count_of_functional_and_module_relus() -> None:
    model = Functional()
    assert relu_count(model, (1, 3, 8, 8)) == FUNCTIONAL_N_A
    assert relu_count(model, (3, 3, 8, 8)) == FUNCTIONAL_N_A  # per sample
    p = ModelProbe(model, torch.zeros(2, 3, 8, 8)).run()
    assert p.relu_calls() == 9 and p.skipped_calls() == 1


def test_relu_count_of_small_custom_modules() -> None:
    mlp = nn.Sequential(nn.Linear(10, 20), nn.ReLU(), nn.Linear(20, 7), nn.ReLU(inplace=True))
    assert relu_count(mlp, (1, 10)) == 27

    class Twice(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.r = nn.ReLU()

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.r(x) + self.r(x) + torch.relu(x[:, :2]).sum(1, keepdim=True)

    assert relu_count(Twice(), (2, 3, 4)) == 12 + 12 + 8
    assert relu_count(nn.Sequential(nn.Linear(4, 4), nn.Tanh()), (1, 4)) == 0


# -- naswot on arbitrary modules --------------------------------------------------------------
class SmallNet(nn.Module):
    """A conv net using functional ReLUs that records its own codes when asked."""

    def __init__(self) -> None:
        super().__init__()
        self.c1 = nn.Conv2d(3, 6, 3, padding=1)
        self.bn = nn.BatchNorm2d(6)
        self.c2 = nn.Conv2d(6, 8, 3, stride=2, padding=1)
        self.fc = nn.Linear(8 * 4 * 4, 10)
        self.record: list[np.ndarray] | None = None

    def _relu(self, h: torch.Tensor, fn) -> torch.Tensor:  # type: ignore[no-untyped-def]
        if self.record is not None:
            self.record.append((h > 0).reshape(h.shape[0], -1).numpy().astype(np.float64))
        return fn(h)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self._relu(self.bn(self.c1(x)), F.relu)
        z = self.c2(h)
        h = self._relu(z, torch.relu) + self._relu(z, torch.relu)  # z twice: Gram reused
        h = self.fc(h.flatten(1))
        return self._relu(h, lambda t: t.relu_())


def test_naswot_api_on_an_arbitrary_conv_net() -> None:
    torch.manual_seed(3)
    model, x = SmallNet(), torch.randn(10, 3, 8, 8)
    got = naswot(model, x)
    model.record = []
    model.train()
    with torch.no_grad():
        model(x)
    codes = np.concatenate(model.record, axis=1)
    assert codes.shape[1] == relu_count(model, (1, 3, 8, 8)) == 6 * 64 + 2 * 8 * 16 + 10
    assert_same_score(got, reference_score(reference_kernel(codes)))
    assert math.isfinite(got)


def test_naswot_api_on_an_mlp() -> None:
    torch.manual_seed(4)
    mlp = nn.Sequential(nn.Flatten(), nn.Linear(12, 32), nn.ReLU(), nn.Linear(32, 16), nn.ReLU())
    x = torch.randn(9, 3, 2, 2)
    assert_same_score(naswot(mlp, x), reference_score(reference_kernel(module_codes(mlp, x))))


def test_reused_gram_products_follow_in_place_changes() -> None:
    """A tensor ReLU'd several times: reused while unchanged, recomputed after in-place ops."""

    class Edits(nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            record = self.record  # type: ignore[attr-defined]
            h = x.clone()
            out = []
            for step in ("same", "same", "neg", "same", "inplace", "same", "shift", "same"):
                if step == "neg":
                    h.mul_(-1)
                elif step == "shift":
                    h.add_(0.3)
                elif step == "inplace":
                    record.append((h > 0).reshape(h.shape[0], -1).numpy().astype(np.float64))
                    torch.relu_(h)
                    continue
                record.append((h > 0).reshape(h.shape[0], -1).numpy().astype(np.float64))
                out.append(F.relu(h))
            return torch.stack(out).sum(0)

    model, x = Edits(), torch.randn(6, 5, 3)
    model.record = []  # type: ignore[attr-defined]
    p = ModelProbe(model, x, want_kernel=True)
    kh = p.kernel().numpy()
    codes = np.concatenate(model.record, axis=1)  # type: ignore[attr-defined]
    assert np.array_equal(kh, reference_kernel(codes))
    assert p.relu_calls() == 8 and p.reused_calls() == 4


def test_a_network_without_relu_is_singular() -> None:
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 4))
    x = torch.randn(5, 3, 2, 2)
    assert torch.equal(
        ModelProbe(model, x, want_kernel=True).kernel(), torch.zeros(5, 5, dtype=torch.float64)
    )
    assert naswot(model, x) == -math.inf


# -- BN mode ------------------------------------------------------------------------------------
def test_bn_mode_changes_the_score_and_restores_the_model_mode() -> None:
    torch.manual_seed(5)
    model, x = SmallNet(), torch.randn(10, 3, 8, 8) * 3 + 1
    with torch.no_grad():
        model.bn.running_mean.fill_(0.7)
    model.eval()
    s_batch = naswot(model, x, bn_mode="batch")
    assert model.training is False
    s_eval = naswot(model, x, bn_mode="eval")
    assert s_batch != s_eval
    model.record = []
    model.eval()
    with torch.no_grad():
        model(x)
    assert_same_score(s_eval, reference_score(reference_kernel(np.concatenate(model.record, 1))))
    with pytest.raises(ValueError, match="bn_mode"):
        ModelProbe(model, x, bn_mode="train")


def test_bn_mode_is_recorded_with_the_run_and_changes_scores(tmp_path: Path) -> None:
    arch = TSS_SAMPLE[1]
    values = {}
    with Store.open(tmp_path / "b.duckdb") as store:
        for mode in ("batch", "eval"):
            req = engine.ScoreRequest(
                space="nats-tss",
                archs=[arch],
                metrics="naswot",
                data="synthetic",
                batch_size=8,
                bn_mode=mode,
            )
            run_id = engine.start(store, req)
            engine.execute(store, run_id)
            assert store.get_run(run_id)["settings"]["bn_mode"] == mode
            _, rows = store.query(
                "SELECT value FROM scores WHERE run_id = ? AND metric = 'naswot'", [run_id]
            )
            values[mode] = rows[0][0]
    assert values["batch"] != values["eval"]
    assert math.isfinite(values["batch"]) and math.isfinite(values["eval"])


# -- determinism ----------------------------------------------------------------------------------
def test_same_seed_same_batch_same_init_same_scores(tmp_path: Path) -> None:
    assert np.array_equal(
        load_batch("synthetic", 8, 3).images, load_batch("synthetic", 8, 3).images
    )
    assert not np.array_equal(
        load_batch("synthetic", 8, 3).images, load_batch("synthetic", 8, 4).images
    )
    a, b = build("nats-tss", TSS_SAMPLE[2], seed=3), build("nats-tss", TSS_SAMPLE[2], seed=3)
    assert all(
        torch.equal(p, q)
        for p, q in zip(a.state_dict().values(), b.state_dict().values(), strict=True)
    )
    c = build("nats-tss", TSS_SAMPLE[2], seed=4)
    assert not torch.equal(a.stem[0].weight, c.stem[0].weight)

    archs = TSS_SAMPLE[:3]

    def scores(seed: int, db: str) -> dict[str, float]:
        with Store.open(tmp_path / db) as store:
            req = engine.ScoreRequest(
                space="nats-tss", archs=archs, metrics="naswot", data="synthetic", batch_size=8,
                seed=seed,
            )  # fmt: skip
            run_id = engine.start(store, req)
            engine.execute(store, run_id)
            _, rows = store.query(
                "SELECT arch, value FROM scores WHERE run_id = ? AND metric = 'naswot'", [run_id]
            )
        return dict(rows)

    first, again, other = scores(3, "a.duckdb"), scores(3, "b.duckdb"), scores(4, "c.duckdb")
    assert first == again
    assert all(math.isfinite(v) for v in first.values())
    assert all(first[a] != other[a] for a in archs)


def test_retain_freed_memory_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    import platform
    import sys

    monkeypatch.setattr(probe_mod, "_ALLOCATOR", {})
    monkeypatch.setenv("NASFILTER_KEEP_FREED_MEMORY", "0")
    assert probe_mod.retain_freed_memory() is False
    monkeypatch.setattr(probe_mod, "_ALLOCATOR", {})
    monkeypatch.delenv("NASFILTER_KEEP_FREED_MEMORY")
    glibc = sys.platform.startswith("linux") and platform.libc_ver()[0] == "glibc"
    assert probe_mod.retain_freed_memory() is glibc
    assert probe_mod.retain_freed_memory() is glibc  # once; the answer is kept
