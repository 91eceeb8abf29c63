"""Rendering of tabular results: rich table, CSV or JSON. No logic of its own."""

from __future__ import annotations

import csv
import json
import math
import sys
from collections.abc import Sequence
from enum import Enum
from typing import Any

from rich.console import Console

# Piped output is not cut to 80 columns: tables are only as wide as their content.
console = Console(width=None if sys.stdout.isatty() else 400)
err_console = Console(stderr=True)


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def _json_safe(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None  # JSON has no NaN/inf: the row's status column says what it was
    if hasattr(v, "isoformat"):
        return v.isoformat()
    return v


def _cell(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v == int(v) and abs(v) < 1e15:
            return f"{int(v):,}"
        return f"{v:.6g}"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    return str(v)


def render(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: Format = Format.table,
    title: str | None = None,
    json_obj: Any = None,
) -> None:
    """Print rows. ``json_obj`` replaces the default list-of-objects JSON form."""
    if fmt == Format.json:
        obj = (
            json_obj
            if json_obj is not None
            else [{c: _json_safe(v) for c, v in zip(columns, r, strict=True)} for r in rows]
        )
        sys.stdout.write(json.dumps(obj, indent=2, default=_json_safe) + "\n")
        return
    if fmt == Format.csv:
        w = csv.writer(sys.stdout, lineterminator="\n")
        w.writerow(columns)
        for r in rows:
            w.writerow(["" if v is None else v for v in r])
        return
    from rich.table import Table

    t = Table(title=title, show_lines=False, header_style="bold")
    for c in columns:
        # identities are long and must stay copy-pasteable: never wrap them
        t.add_column(c, overflow="fold", no_wrap=c == "arch")
    for r in rows:
        t.add_row(*(_cell(v) for v in r))
    console.print(t)
