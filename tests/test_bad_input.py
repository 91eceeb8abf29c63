"""Bad input gets one line that says what was wrong and what to do, and loses nothing:
fractions imported as truth, a database without permission, message punctuation, and
the shapes the public relu_count/naswot API is given."""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from nasfilter.errors import UsageError
from nasfilter.metrics import naswot, relu_count
from tests.conftest import invoke

TSS = (
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
    "skip_connect~2|"
)


def _one_line(r, code: int = 2) -> str:  # type: ignore[no-untyped-def]
    assert r.exit_code == code, r.output
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), r.stderr
    return lines[0]


def _truth_rows(db: Path) -> list[tuple]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute("SELECT arch, accuracy FROM truth ORDER BY arch").fetchall()
    finally:
        con.close()


# -- truth import of fractions -----------------------------------------------------------


def test_fractions_are_refused_and_scale_100_imports_them(
    runner: CliRunner, db: Path, tmp_path: Path
) -> None:
    f = tmp_path / "acc.csv"
    f.write_text("arch,acc\n8:8:8:8:8,0.5\n64:64:64:64:64,0.931\n")
    args = ["truth", "import", str(f), "--space", "nats-sss", "--dataset", "cifar10"]
    args += ["--arch-col", "arch", "--acc-col", "acc", "--db", str(db)]
    line = _one_line(invoke(runner, *args))
    assert "fractions" in line and "--scale 100" in line
    assert _truth_rows(db) == []  # nothing imported
    assert invoke(runner, *args, "--scale", "100").exit_code == 0
    rows = _truth_rows(db)
    assert [a for a, _ in rows] == ["64:64:64:64:64", "8:8:8:8:8"]
    assert [v for _, v in rows] == pytest.approx([93.1, 50.0], abs=1e-12)
    assert invoke(runner, *args, "--scale", "1").exit_code == 0  # as they are, if asked
    assert [v for _, v in _truth_rows(db)] == [0.931, 0.5]
    assert "must be a positive" in _one_line(invoke(runner, *args, "--scale", "0"))
    f.write_text("arch,acc\n8:8:8:8:8,0.5\n64:64:64:64:64,93.1\n")  # percent: one above 1
    assert invoke(runner, *args).exit_code == 0
    assert [v for _, v in _truth_rows(db)] == [93.1, 0.5]


# -- punctuation ------------------------------------------------------------------------


def test_messages_end_with_one_full_stop(runner: CliRunner, db: Path, tmp_path: Path) -> None:
    f = tmp_path / "bad.csv"
    f.write_text(f"arch,acc\n{TSS},90\nnot-a-cell,91\n{TSS},92\n")
    line = _one_line(
        invoke(
            runner,
            *("truth", "import", str(f), "--space", "nats-tss", "--dataset", "cifar10"),
            *("--arch-col", "arch", "--acc-col", "acc", "--db", str(db)),
        ),
        code=4,
    )
    assert ".." not in line and ".;" not in line and line.endswith(".")
    assert "line 3" in line and "line 4: duplicate of line 2" in line
    assert invoke(runner, "score", "nats-sss", "--n", "3", "--db", str(db)).exit_code == 0
    line = _one_line(invoke(runner, "sql", "SELEC 1", "--db", str(db)))
    assert line.endswith(".") and ".." not in line
    line = _one_line(invoke(runner, "sql", "SELECT * FROM nowhere", "--db", str(db)))
    assert line[-1] in ".!" and ".." not in line  # DuckDB's own sentence ends with "!"
    junk = tmp_path / "junk.duckdb"
    junk.write_bytes(b"not a database at all" * 100)
    line = _one_line(invoke(runner, "runs", "--db", str(junk)), code=3)
    assert ".." not in line and line.endswith(".")


# -- permissions --------------------------------------------------------------------------

SETPRIV = shutil.which("setpriv")
NO_DAC = ["--bounding-set", "-dac_override,-dac_read_search"]
NO_DAC += ["--inh-caps", "-dac_override,-dac_read_search"]


def _as_plain_user(*args: str) -> subprocess.CompletedProcess:
    """Run the CLI without root's power to ignore file permissions (when we are root),
    so that the file's mode bits apply as they would to any user."""
    cmd = [sys.executable, "-m", "nasfilter", *args]
    if os.geteuid() == 0:
        assert SETPRIV is not None
        cmd = [SETPRIV, *NO_DAC, *cmd]
    env = {k: v for k, v in os.environ.items() if k != "NASFILTER_DB"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)


@pytest.mark.skipif(os.geteuid() == 0 and SETPRIV is None, reason="needs setpriv as root")
def test_a_database_without_permission_says_permission(runner: CliRunner, tmp_path: Path) -> None:
    folder = tmp_path / "dbs"
    folder.mkdir()
    db = folder / "ro.duckdb"
    assert invoke(runner, "score", "nats-sss", "--n", "3", "--db", str(db)).exit_code == 0
    before = db.read_bytes()
    try:
        db.chmod(0o444)  # read-only file: a writing command cannot open it
        r = _as_plain_user("truth", "sample", "--db", str(db))
        assert r.returncode == 3, r.stderr
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and "permission denied" in lines[0], r.stderr
        assert "written by nasfilter" not in lines[0]
        r = _as_plain_user("runs", "--db", str(db))  # reading is fine
        assert r.returncode == 0, r.stderr
        db.chmod(0o000)  # unreadable: even reading says so, in one line
        r = _as_plain_user("runs", "--db", str(db))
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 3 and len(lines) == 1 and "permission denied" in lines[0]
        db.chmod(0o644)
        folder.chmod(0o555)  # the .wal file cannot be created beside it
        r = _as_plain_user("truth", "sample", "--db", str(db))
        lines = r.stderr.strip().splitlines()
        assert r.returncode == 3 and len(lines) == 1 and "permission denied" in lines[0], r.stderr
    finally:
        folder.chmod(0o755)
        db.chmod(0o644)
    assert db.read_bytes() == before
    assert sorted(p.name for p in folder.iterdir()) == ["ro.duckdb"]


# -- shapes given to relu_count / naswot -----------------------------------------------


def _net() -> nn.Module:
    """Conv 3->4 (3x3, padding 1) + ReLU, then conv 4->2 (stride 2) + ReLU: on 8x8 inputs
    N_A = 4*8*8 + 2*4*4 = 288 per sample (counted by hand)."""
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 2, 3, stride=2, padding=1), nn.ReLU()
    )


def test_relu_count_takes_one_chw_sample_and_refuses_empty_or_wrong_ranks() -> None:
    m = _net()
    assert relu_count(m, (1, 3, 8, 8)) == 288
    assert relu_count(m, (3, 8, 8)) == 288  # one (C, H, W) sample
    assert relu_count(m, torch.Size([3, 8, 8])) == 288
    for bad, what in (
        ((0, 3, 8, 8), "batch of 0"),
        ((2, 3, 0, 8), "empty dimension"),
        ((), "non-empty tuple"),
        ((3, 8), "(N, C, H, W)"),
        ((1, 1, 3, 8, 8), "(N, C, H, W)"),
        ((1.0, 3, 8, 8), "integers"),
    ):
        with pytest.raises(UsageError) as e:
            relu_count(m, bad)  # type: ignore[arg-type]
        assert what in str(e.value) and "\n" not in str(e.value)
    # a network without 2-d convolutions keeps the batch-first reading of any rank
    mlp = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
    assert relu_count(mlp, (3, 2, 4)) == 2 * 6


def test_naswot_refuses_fewer_than_two_samples() -> None:
    torch.manual_seed(0)
    m = _net()
    x = torch.randn(2, 3, 8, 8)
    assert math.isfinite(naswot(m, x))
    for bad, what in (
        (torch.randn(3, 8, 8), "single (C, H, W) sample"),
        (torch.randn(1, 3, 8, 8), "K = 1"),
        (torch.randn(0, 3, 8, 8), "batch of 0"),
    ):
        with pytest.raises(UsageError) as e:
            naswot(m, bad)
        assert what in str(e.value) and "\n" not in str(e.value)
    with pytest.raises(UsageError, match="torch tensor"):
        naswot(m, [[1.0, 2.0]])
