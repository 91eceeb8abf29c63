"""Tables at 80 and 120 columns: numbers keep their full width and never wrap, long
identities are shortened in the middle (whole with --wide and in csv/json), piped output
is not forced to 400 columns, and numbers are formatted alike down a column."""

from __future__ import annotations

import csv
import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from rich.console import Console
from typer.testing import CliRunner

from nasfilter.cli import render as R
from tests.conftest import invoke

TSS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|",
    "|avg_pool_3x3~0|+|nor_conv_1x1~0|skip_connect~1|+|nor_conv_1x1~0|skip_connect~1|nor_conv_1x1~2|",
    "|none~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|nor_conv_3x3~1|nor_conv_3x3~2|",
]
COLUMNS = ["arch", "relu_count", "status", "params", "size_kb", "naswot"]
ROWS = [
    (TSS[0], 471040.0, "ok", 802426, 802.426, 1574.2345678),
    (TSS[1], 614400.0, "ok", 185306, 185.306, float("nan")),
    (TSS[2], 901120.0, "singular", 1073466, 1073.466, float("-inf")),
]
# the cells as they must appear, whole, on each row's one line
EXPECTED = [
    ["471,040", "802,426", "802.426", "1,574.23"],
    ["614,400", "185,306", "185.306", "nan"],
    ["901,120", "1,073,466", "1,073.466", "-inf"],
]


def _table(width: int, monkeypatch: pytest.MonkeyPatch, **kw) -> list[str]:  # type: ignore[no-untyped-def]
    buf = io.StringIO()
    monkeypatch.setattr(R, "console", Console(width=width, file=buf, force_terminal=False))
    R.render(COLUMNS, ROWS, R.Format.table, title="Top 3", **kw)
    return buf.getvalue().splitlines()


def _rows(lines: list[str]) -> list[list[str]]:
    """The body rows: lines between the header rule and the bottom rule, as cells."""
    start = next(i for i, ln in enumerate(lines) if ln.startswith("┡")) + 1
    end = next(i for i, ln in enumerate(lines) if ln.startswith("└"))
    return [[c.strip() for c in ln.strip("│").split("│")] for ln in lines[start:end]]


@pytest.mark.parametrize("width", [80, 120])
def test_numbers_are_never_wrapped_or_emptied(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _table(width, monkeypatch)
    assert max(len(ln) for ln in lines) <= width
    body = _rows(lines)
    assert len(body) == len(ROWS)  # one line per row: nothing wrapped onto a second line
    for cells, expected, row in zip(body, EXPECTED, ROWS, strict=True):
        assert [cells[1], cells[3], cells[4], cells[5]] == expected
        assert cells[2] == row[2]
        arch = cells[0]
        assert "…" in arch and len(arch) < len(row[0])  # shortened in the middle
        head, tail = arch.split("…")
        assert row[0].startswith(head) and row[0].endswith(tail) and len(head) >= 8
    assert any("--wide" in ln for ln in lines)  # says how to see them whole


@pytest.mark.parametrize("width", [80, 120])
def test_wide_shows_identities_whole(width: int, monkeypatch: pytest.MonkeyPatch) -> None:
    lines = _table(width, monkeypatch, wide=True)
    body = _rows(lines)
    assert [c[0] for c in body] == TSS
    assert [[c[1], c[3], c[4], c[5]] for c in body] == EXPECTED


def test_more_numbers_than_the_screen_holds_widen_the_table(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    buf = io.StringIO()
    monkeypatch.setattr(R, "console", Console(width=80, file=buf, force_terminal=False))
    cols = [f"metric_{i}" for i in range(9)]
    row = [123456789 + i for i in range(9)]
    R.render(cols, [row], R.Format.table)
    body = _rows(buf.getvalue().splitlines())
    assert body == [[f"{v:,}" for v in row]]  # wider than 80 rather than squeezed


def test_number_formats() -> None:
    cells, kind = R._column_cells([7.14, 0.1, 123.45, None])
    assert kind == "number" and cells == ["7.14", "0.10", "123.45", ""]
    cells, _ = R._column_cells([0.5618384254974571, -0.25])
    assert cells == ["0.561838", "-0.250000"]  # six significant digits for the largest
    cells, _ = R._column_cells([1234567.0, 12.0])
    assert cells == ["1,234,567", "12"]  # whole floats are counts
    cells, _ = R._column_cells([1.5e-7, 2.0e-6])
    assert cells == ["1.50000e-07", "2.00000e-06"]
    assert R.fmt_mean_std(92.7123, 0.3456) == "92.71 ± 0.35"
    assert R.fmt_mean_std(92.7, 0.35) == "92.70 ± 0.35"  # same decimals on both sides
    assert R.fmt_mean_std(1574.0, 12.0) == "1,574 ± 12"
    assert R.fmt_mean_std(0.0123, 0.002) == "0.0123 ± 0.0020"
    assert R.fmt_mean_std(0.012346, 0.0021) == "0.01235 ± 0.00210"  # four significant


def test_csv_and_json_keep_identities_whole(runner: CliRunner, db: Path) -> None:
    r = invoke(runner, "score", "nats-tss", "--n", "30", "--db", str(db))
    assert r.exit_code == 0, r.output
    r = invoke(runner, "top", "--k", "5", "--db", str(db), "-f", "csv")
    archs = [row["arch"] for row in csv.DictReader(io.StringIO(r.stdout))]
    assert len(archs) == 5 and all(len(a) > 80 and "…" not in a for a in archs)
    r = invoke(runner, "top", "--k", "5", "--db", str(db), "-f", "json")
    assert [o["arch"] for o in json.loads(r.stdout)] == archs
    q = "SELECT arch, relu_count FROM results ORDER BY relu_count DESC, arch LIMIT 3"
    r = invoke(runner, "sql", q, "--db", str(db), "--wide")
    assert r.exit_code == 0, r.output
    wide = [c[0] for c in _rows(r.stdout.splitlines())]
    r = invoke(runner, "sql", q, "--db", str(db), "-f", "csv")
    assert wide == [row["arch"] for row in csv.DictReader(io.StringIO(r.stdout))]
    assert all(len(a) > 80 for a in wide)


def test_piped_output_is_not_forced_to_400_columns(runner: CliRunner, db: Path) -> None:
    r = invoke(runner, "score", "nats-tss", "--n", "30", "--db", str(db))
    assert r.exit_code == 0, r.output
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "NASFILTER_DB")}
    out = subprocess.run(  # stdout is a pipe, no COLUMNS: rich's 80 columns
        [sys.executable, "-m", "nasfilter", "top", "--k", "5", "--db", str(db)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(len(ln) for ln in lines) <= 80
    body = _rows(lines)
    assert len(body) == 5 and all("…" in c[0] for c in body)
