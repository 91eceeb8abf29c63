"""Rendering of tabular results: rich table, CSV or JSON. No logic of its own.

Tables fit the terminal (or ``COLUMNS``, or 80 columns when piped) without ever
squeezing a number: number columns keep their full width and never wrap; long unbroken
tokens such as TSS identities are shortened in the middle (``|nor_conv_3x3~0|+…``) to
the width left over, prose wraps on words. ``wide=True`` (the ``--wide`` option) shows
every cell whole and lets the table be as wide as it needs. CSV and JSON always carry the
full values.

Numbers are formatted per column: counts (integers, or floats that are whole) with
thousands separators; other floats with the same number of decimals down the column,
chosen to give ``SIG`` significant digits to its largest value (scientific notation when
that value is below 1e-4 or from 1e15 up). ``fmt_mean_std`` formats a mean and its
standard deviation alike.
"""

from __future__ import annotations

import csv
import json
import math
import re
import sys
from collections.abc import Sequence
from enum import Enum
from typing import Any

from rich.console import Console

# Width: the terminal's, else $COLUMNS, else 80 (piped output is not forced wider).
console = Console()
err_console = Console(stderr=True)

#: Significant digits of the largest value of a float column.
SIG = 6
#: Columns holding identities (shortened in the middle, never wrapped).
IDENTITY_COLUMNS = {"arch", "parent"}
#: The narrowest a shortened identity gets (then the table gets wider than the screen).
MIN_IDENTITY = 16
_ELLIPSIS = "…"
_NUMBER_RE = re.compile(r"^[+-]?(\d[\d,]*(\.\d*)?|\.\d+)([eE][+-]?\d+)?%?$|^[+-]?(nan|inf)$")


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


# -- numbers --------------------------------------------------------------------------------


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _decimals(values: Sequence[float], sig: int = SIG) -> int | None:
    """Decimals for a column: values that are exact with at most 3 decimals keep them
    (size_kb 802.426, seconds 7.14); others get enough to give ``sig`` significant digits
    to the largest. 0 when all are whole; None (scientific notation) below 1e-4 or from
    1e15 up."""
    finite = [abs(v) for v in values if math.isfinite(v)]
    if not finite or all(v == int(v) and v < 1e15 for v in finite):
        return 0
    top = max(finite)
    if top >= 1e15 or top < 1e-4:
        return None
    most = max(0, sig - 1 - math.floor(math.log10(top)))
    for d in range(max(most, 3) + 1):
        if all(abs(round(v, d) - v) <= 1e-9 * max(1.0, v) for v in finite):
            return d if d <= 3 else min(d, most)
    return most


def fmt_number(v: Any, decimals: int | None = 0) -> str:
    """One number: ``decimals`` after the point with thousands separators, or
    scientific notation (``SIG`` significant digits) when None. Non-finite as is."""
    if v is None:
        return ""
    if isinstance(v, bool) or not _is_number(v):
        return str(v)
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if decimals is None:
        return f"{v:.{SIG - 1}e}"
    if decimals == 0 and v == int(v):
        return f"{int(v):,}"
    return f"{v:,.{decimals}f}"


def fmt_mean_std(mean: float | None, std: float | None, sig: int = 4) -> str:
    """``mean ± std`` with the same decimals in both, chosen to give ``sig`` significant
    digits to the larger: ``92.71 ± 0.35``, ``1,574 ± 12``, ``0.01230 ± 0.00200``."""
    if mean is None:
        return ""
    vals = [float(mean)] + ([float(std)] if std is not None else [])
    d = _decimals(vals, sig)

    def one(v: float) -> str:
        if not math.isfinite(v):
            return str(v)
        return f"{v:.{sig - 1}e}" if d is None else f"{v:,.{d}f}"

    return one(float(mean)) if std is None else f"{one(float(mean))} ± {one(float(std))}"


def _cell(v: Any) -> str:
    """A single value as a table cell (used where no column context exists)."""
    if isinstance(v, float):
        return fmt_number(v, _decimals([v]))
    return "" if v is None else fmt_number(v) if _is_number(v) else str(v)


def _column_cells(values: Sequence[Any]) -> tuple[list[str], str]:
    """The cells of one column as text, and its kind: 'number', 'token' (long unbroken
    strings such as identities) or 'text'."""
    nums = [v for v in values if v is not None]
    if nums and all(_is_number(v) for v in nums):
        floats = [float(v) for v in nums]
        d = _decimals(floats) if any(isinstance(v, float) for v in nums) else 0
        return [fmt_number(v, d) for v in values], "number"
    cells = ["" if v is None else v if isinstance(v, str) else _cell(v) for v in values]
    filled = [c for c in cells if c]
    if filled and all(_looks_numeric(c) for c in filled):
        return cells, "number"  # numbers the caller formatted ("+0.5618", "8 of 26", ...)
    if (
        filled
        and not any(ch.isspace() or ch == "," for c in filled for ch in c)
        and max(map(len, filled)) > 2 * MIN_IDENTITY
    ):
        return cells, "token"  # long and unbroken: identities, paths (lists with commas wrap)
    return cells, "text"


def _looks_numeric(cell: str) -> bool:
    """A number, or numbers joined as a range ("1.5–2.5"), "a of b" or "m ± s"."""
    return all(_NUMBER_RE.match(p) for p in re.split(r"–| of | ± ", cell.strip()))


def _shorten(text: str, width: int) -> str:
    """``text`` cut in the middle to ``width`` characters, with an ellipsis."""
    if len(text) <= width:
        return text
    keep = max(width - 1, 2)
    head = (keep + 1) // 2
    return text[:head] + _ELLIPSIS + text[len(text) - (keep - head) :]


# -- the table --------------------------------------------------------------------------


def _fill(low: list[int], high: list[int], budget: int) -> list[int]:
    """Widths between ``low`` and ``high`` summing to ``budget`` where possible: every
    column grows by the same amount (water-filling) until it reaches its ``high``."""
    if sum(high) <= budget:
        return list(high)
    if sum(low) >= budget:
        return list(low)
    lo, hi = 0, max(high)
    while lo < hi:  # the largest level whose total stays within the budget
        mid = (lo + hi + 1) // 2
        if sum(min(h, max(m, mid)) for m, h in zip(low, high, strict=True)) <= budget:
            lo = mid
        else:
            hi = mid - 1
    out = [min(h, max(m, lo)) for m, h in zip(low, high, strict=True)]
    for i in range(len(out)):  # the remainder, one column at a time
        if sum(out) >= budget:
            break
        if out[i] < high[i]:
            out[i] += 1
    return out


def _print_table(
    columns: Sequence[str], rows: Sequence[Sequence[Any]], title: str | None, wide: bool
) -> None:
    from rich.table import Table

    out = console
    ncols = len(columns)
    cols = [_column_cells([r[i] for r in rows]) for i in range(ncols)]
    kinds = [
        "token" if c in IDENTITY_COLUMNS and kind != "number" else kind
        for c, (_, kind) in zip(columns, cols, strict=True)
    ]
    natural = [
        max([len(str(h))] + [len(c) for c in cells])
        for h, (cells, _) in zip(columns, cols, strict=True)
    ]
    overhead = 3 * ncols + 1  # borders and one space of padding either side
    widths = list(natural)  # numbers: always whole
    flex = [i for i, k in enumerate(kinds) if k != "number"]
    if not wide and flex:
        room = out.width - overhead - sum(natural[i] for i, k in enumerate(kinds) if k == "number")

        def low(i: int, least_text: int) -> int:
            if kinds[i] == "token":  # identities: shortened, never below MIN_IDENTITY
                return min(natural[i], max(MIN_IDENTITY, len(str(columns[i]))))
            words = [len(w) for c in [columns[i], *cols[i][0]] for w in str(c).split()]
            return min(natural[i], max(words or [1]), least_text)

        # prose keeps words of up to 16 characters whole (a dataset name, a source):
        # rather than cutting them into slivers, the table gets wider than the screen
        lows = [low(i, 16) for i in flex]
        for i, w in zip(flex, _fill(lows, [natural[i] for i in flex], room), strict=True):
            widths[i] = w
    shortened = any(widths[i] < natural[i] for i in flex if kinds[i] == "token")
    table = Table(
        title=title,
        show_lines=False,
        header_style="bold",
        caption="identities shortened to fit: --wide or --format csv shows them whole"
        if shortened
        else None,
    )
    for i, c in enumerate(columns):
        if kinds[i] == "number":
            table.add_column(c, justify="right", no_wrap=True, width=widths[i])
        elif kinds[i] == "token":
            table.add_column(c, no_wrap=True, width=widths[i], overflow="ellipsis")
        else:
            table.add_column(c, overflow="fold", width=widths[i])
    for r in range(len(rows)):
        table.add_row(
            *(
                _shorten(cells[r], widths[i]) if kinds[i] == "token" else cells[r]
                for i, (cells, _) in enumerate(cols)
            )
        )
    need = overhead + sum(widths)
    if need > out.width:  # wider than the screen rather than a squeezed number
        saved = out._width
        out.width = need
        try:
            out.print(table, crop=False)
        finally:
            out._width = saved
    else:
        out.print(table)


def render(
    columns: Sequence[str],
    rows: Sequence[Sequence[Any]],
    fmt: Format = Format.table,
    title: str | None = None,
    json_obj: Any = None,
    wide: bool = False,
) -> None:
    """Print rows. ``json_obj`` replaces the default list-of-objects JSON form; ``wide``:
    long identities whole in tables (CSV and JSON always have them whole)."""
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
    _print_table(columns, rows, title, wide)
