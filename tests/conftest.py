"""Shared fixtures: a CLI runner and a fresh database path per test."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def db(tmp_path: Path) -> Path:
    return tmp_path / "test.duckdb"


def invoke(runner: CliRunner, *args: str):  # type: ignore[no-untyped-def]
    from nasfilter.cli import app

    return runner.invoke(app, list(args), catch_exceptions=False)
