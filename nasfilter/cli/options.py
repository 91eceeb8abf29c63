"""Options shared by several commands."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from nasfilter.cli.render import Format

DbOption = Annotated[
    Path | None,
    typer.Option(
        "--db",
        envvar="NASFILTER_DB",
        help="DuckDB file to use. \\[default: ./nasfilter.duckdb]",
        show_default=False,
    ),
]
RunOption = Annotated[
    str,
    typer.Option("--run", help="Run id, or 'latest' for the newest score run."),
]
FormatOption = Annotated[
    Format,
    typer.Option("--format", "-f", help="Output format.", case_sensitive=False),
]
ShowSqlOption = Annotated[bool, typer.Option("--show-sql", help="Print the SQL used, on stderr.")]
