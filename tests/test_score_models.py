"""Scoring built networks through the CLI and the engine: synthetic and CIFAR-10 inputs,
data errors, resume after an interruption, a changed data file, out of memory."""

from __future__ import annotations

import math
import pickle
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from nasfilter import engine
from nasfilter.cli import app
from nasfilter.metrics.probe import ModelProbe
from nasfilter.spaces import get_space
from nasfilter.store import Store

pytestmark = pytest.mark.usefixtures("one_torch_thread")

METRICS = ("naswot", "params", "relu_count", "size_kb")


def cli(*args: str):  # type: ignore[no-untyped-def]
    return CliRunner().invoke(app, list(args))


def rows(db: Path, run_id: int | None = None) -> list[tuple]:
    where = "" if run_id is None else f"WHERE run_id = {int(run_id)}"
    with Store.open(db, read_only=True) as store:
        _, out = store.query(
            f"SELECT run_id, arch, metric, value, status FROM scores {where} "
            "ORDER BY run_id, position, metric"
        )
    return out


def by_arch(rs: list[tuple]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for _run, arch, metric, value, _status in rs:
        out.setdefault(arch, {})[metric] = value
    return out


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("Error:")]


def write_cifar10(root: Path, seed: int = 0, per_batch: int = 4) -> Path:
    """``root/cifar-10-python.tar.gz`` in the official format (5 train batches + test)."""
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 256, size=(6 * per_batch, 3072), dtype=np.uint8)
    members = {}
    for b in range(5):
        sl = slice(b * per_batch, (b + 1) * per_batch)
        members[f"data_batch_{b + 1}"] = {
            b"batch_label": b"training batch %d of 5" % (b + 1),
            b"labels": [i % 10 for i in range(sl.start, sl.stop)],
            b"data": data[sl],
            b"filenames": [b"img_%d.png" % i for i in range(sl.start, sl.stop)],
        }
    members["test_batch"] = {b"labels": [0] * per_batch, b"data": data[5 * per_batch :]}
    members["batches.meta"] = {
        b"num_cases_per_batch": per_batch,
        b"label_names": [b"c"] * 10,
        b"num_vis": 3072,
    }
    root.mkdir(parents=True, exist_ok=True)
    staging = root / "staging"
    staging.mkdir(exist_ok=True)
    archive = root / "cifar-10-python.tar.gz"
    with tarfile.open(archive, "w:gz") as tar:
        for name, obj in members.items():
            (staging / name).write_bytes(pickle.dumps(obj, protocol=2))
            tar.add(staging / name, arcname=f"cifar-10-batches-py/{name}")
    return archive


def interrupted_run(db: Path, after: int, **request: object) -> int:
    """Start a score run and interrupt it (KeyboardInterrupt) after ``after`` archs."""
    req = engine.ScoreRequest(**request)  # type: ignore[arg-type]
    seen = 0

    def on_progress(k: int) -> None:
        nonlocal seen
        seen += k
        if seen >= after:
            raise KeyboardInterrupt

    with Store.open(db) as store:
        run_id = engine.start(store, req)
        with pytest.raises(engine.RunInterrupted, match=f"--resume {run_id}"):
            engine.execute(store, run_id, on_progress=on_progress)
        assert store.get_run(run_id)["status"] == "interrupted"
    return run_id


# -- synthetic inputs -----------------------------------------------------------------------
def test_score_synthetic_stores_rows_and_model_relu_count_is_analytic(tmp_path: Path) -> None:
    db = tmp_path / "s.duckdb"
    r = cli("score", "nats-tss", "--n", "6", "--metrics", "naswot,relu_count",
            "--data", "synthetic", "-K", "8", "--db", str(db))  # fmt: skip
    assert r.exit_code == 0, r.output
    assert "Run 1 completed: 6 architectures scored" in r.stderr
    stored = rows(db)
    assert len(stored) == 6 * len(METRICS)
    got = by_arch(stored)
    space = get_space("nats-tss")
    assert list(got) == [space.unrank(int(i)) for i in space.sample_indices(6, 0)]
    for arch, vals in got.items():
        assert set(vals) == set(METRICS)
        assert vals["relu_count"] == space.costs(arch).relu_count
        assert math.isfinite(vals["naswot"]) or vals["naswot"] == -math.inf
    with Store.open(db, read_only=True) as store:
        paths = {m["metric"]: m["path"] for m in store.run_metrics(1)}
        settings = store.get_run(1)["settings"]
    # relu_count stays analytic in a run that builds networks; naswot reads the shared pass
    assert paths["relu_count"] == "analytic" and paths["naswot"] == "probe"
    assert settings["data"] == "synthetic" and settings["batch"]["synthetic"] is True
    assert settings["batch_size"] == 8 and settings["bn_mode"] == "batch"


# -- CIFAR-10 in its official format --------------------------------------------------------
def test_score_cifar10_from_the_official_archive(tmp_path: Path) -> None:
    data = tmp_path / "data"
    archive = write_cifar10(data)
    db = tmp_path / "c.duckdb"
    r = cli("score", "nats-tss", "--n", "3", "--metrics", "naswot,relu_count",
            "--data", "cifar10", "--data-dir", str(data), "-K", "8", "--db", str(db))  # fmt: skip
    assert r.exit_code == 0, r.output
    got = by_arch(rows(db))
    assert len(got) == 3 and all(math.isfinite(v["naswot"]) for v in got.values())
    with Store.open(db, read_only=True) as store:
        batch = store.get_run(1)["settings"]["batch"]
    assert batch["dataset"] == "cifar10" and batch["synthetic"] is False
    assert batch["source"] == str(archive) and len(batch["indices"]) == 8
    assert batch["shape"] == [8, 3, 32, 32]


def test_missing_data_dir_is_one_line_and_keeps_stored_rows(tmp_path: Path) -> None:
    db = tmp_path / "m.duckdb"
    r = cli("score", "nats-tss", "--n", "2", "--metrics", "naswot",
            "--data", "synthetic", "-K", "4", "--db", str(db))  # fmt: skip
    assert r.exit_code == 0, r.output
    before = rows(db)
    missing = tmp_path / "nowhere"
    r = cli("score", "nats-tss", "--n", "2", "--metrics", "naswot", "--data", "cifar10",
            "--data-dir", str(missing), "-K", "4", "--db", str(db))  # fmt: skip
    assert r.exit_code == 4
    assert "Traceback" not in r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error:"), r.stderr
    assert str(missing / "cifar-10-python.tar.gz") in lines[0] and "--download" in lines[0]
    assert rows(db) == before
    with Store.open(db, read_only=True) as store:
        _, runs = store.query("SELECT run_id, status FROM runs")
    assert runs == [(1, "completed")]


def test_naswot_without_data_is_a_clear_error(tmp_path: Path) -> None:
    r = cli("score", "nats-tss", "--n", "2", "--metrics", "naswot",
            "--db", str(tmp_path / "n.duckdb"))  # fmt: skip
    assert r.exit_code == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "naswot needs input images" in lines[0], r.stderr
    assert "--data cifar10 --data-dir DIR" in lines[0] and "--data synthetic" in lines[0]
    assert not (tmp_path / "n.duckdb").exists()


# -- resume ------------------------------------------------------------------------------------
def test_interrupted_run_resumes_to_the_uninterrupted_values(tmp_path: Path) -> None:
    request = dict(space="nats-tss", n=6, metrics="naswot,relu_count", data="synthetic",
                   batch_size=8, seed=2)  # fmt: skip
    db = tmp_path / "r.duckdb"
    run_id = interrupted_run(db, after=3, **request)
    kept = rows(db, run_id)
    assert len(kept) == 3 * len(METRICS)

    r = cli("score", "--resume", str(run_id), "--db", str(db))
    assert r.exit_code == 0, r.output
    assert "3 architectures scored (3 already stored)" in r.stderr
    resumed = rows(db, run_id)
    assert len(resumed) == 6 * len(METRICS)
    assert len({(a, m) for _, a, m, _, _ in resumed}) == len(resumed)  # no duplicates
    assert set(kept) <= set(resumed)  # committed rows untouched
    with Store.open(db, read_only=True) as store:
        assert store.get_run(run_id)["status"] == "completed"

    straight = tmp_path / "u.duckdb"
    with Store.open(straight) as store:
        engine.execute(store, engine.start(store, engine.ScoreRequest(**request)))  # type: ignore[arg-type]
    assert by_arch(resumed) == by_arch(rows(straight))


def test_resume_with_changed_data_file_is_a_data_error(tmp_path: Path) -> None:
    data = tmp_path / "data"
    write_cifar10(data, seed=0)
    db = tmp_path / "d.duckdb"
    run_id = interrupted_run(db, after=1, space="nats-tss", n=3, metrics="naswot",
                             data="cifar10", data_dir=str(data), batch_size=8)  # fmt: skip
    kept = rows(db, run_id)
    assert len(kept) == 3  # naswot, params, size_kb of one architecture
    write_cifar10(data, seed=1)  # same layout, other pixels
    r = cli("score", "--resume", str(run_id), "--db", str(db))
    assert r.exit_code == 4
    assert "Traceback" not in r.output
    (line,) = error_lines(r.stderr)
    assert "differs from the one this run started with" in line
    assert rows(db, run_id) == kept
    import duckdb

    con = duckdb.connect(str(db), read_only=True)
    status = con.execute("SELECT status FROM runs WHERE run_id = ?", [run_id]).fetchone()
    con.close()
    assert status == ("interrupted",)  # still resumable, not left 'running'


# -- out of memory -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "error",
    [
        torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 2.00 GiB"),
        RuntimeError("DefaultCPUAllocator: can't allocate memory: you tried to allocate 9 GB"),
    ],
)
def test_out_of_memory_names_the_arch_and_keeps_rows(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    real_run = ModelProbe.run
    calls = 0

    def run(self: ModelProbe) -> ModelProbe:
        nonlocal calls
        if not self._ran:
            calls += 1
            if calls == 3:
                raise error
        return real_run(self)

    monkeypatch.setattr(ModelProbe, "run", run)
    db = tmp_path / "o.duckdb"
    r = cli("score", "nats-tss", "--n", "5", "--metrics", "naswot,relu_count",
            "--data", "synthetic", "-K", "8", "--db", str(db))  # fmt: skip
    assert r.exit_code == 5, r.output
    assert "Traceback" not in r.output
    space = get_space("nats-tss")
    third = space.unrank(int(space.sample_indices(5, 0)[2]))
    (line,) = error_lines(r.stderr)
    assert f"memory scoring {third} with batch size 8" in line
    assert "smaller --batch-size" in line
    kept = rows(db)
    assert len(kept) == 2 * len(METRICS)
    with Store.open(db, read_only=True) as store:
        assert store.get_run(1)["status"] == "failed"


def test_other_runtime_errors_are_not_reported_as_memory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run(self: ModelProbe) -> ModelProbe:
        raise RuntimeError("mat1 and mat2 shapes cannot be multiplied")

    monkeypatch.setattr(ModelProbe, "run", run)
    with Store.open(tmp_path / "e.duckdb") as store:
        req = engine.ScoreRequest(space="nats-tss", n=1, metrics="naswot", data="synthetic",
                                  batch_size=4)  # fmt: skip
        run_id = engine.start(store, req)
        with pytest.raises(RuntimeError, match="shapes cannot be multiplied"):
            engine.execute(store, run_id)
