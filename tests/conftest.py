"""Shared fixtures: a CLI runner, a fresh database path per test, and a private cache
directory for the whole session (nothing is written to the user's ~/.cache)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner


@pytest.fixture(scope="session", autouse=True)
def private_cache(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """``$NASFILTER_CACHE`` for the session: the NAS-Bench-101 enumeration is built there
    once (about a second) and shared by every test."""
    path = tmp_path_factory.mktemp("nasfilter-cache")
    old = os.environ.get("NASFILTER_CACHE")
    os.environ["NASFILTER_CACHE"] = str(path)
    yield path
    if old is None:
        os.environ.pop("NASFILTER_CACHE", None)
    else:
        os.environ["NASFILTER_CACHE"] = old


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "test.duckdb"


def invoke(runner: CliRunner, *args: str):  # type: ignore[no-untyped-def]
    from nasfilter.cli import app

    return runner.invoke(app, list(args), catch_exceptions=False)


@pytest.fixture(scope="module")
def one_torch_thread() -> Iterator[None]:
    """One torch intra-op thread for a module (``pytestmark =
    pytest.mark.usefixtures("one_torch_thread")``): small batches run faster on one, and
    two threads thrash on a busy two-core machine."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def python_c(code: str) -> subprocess.CompletedProcess[str]:
    """``python -c code`` in a fresh interpreter (what a test of imports needs), asserted
    to exit 0 (its stderr is the message otherwise)."""
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    return r
