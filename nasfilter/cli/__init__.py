"""The command-line interface: options in, library call, rendering out.

The application (``nasfilter.cli.app``) and the commands (plain functions in ``core``,
``analyze``, ``search``, ``truth``) are registered here, explicitly, in the order of
``--help``. Typed errors from the library become one line on stderr and their exit code
(see ``nasfilter.errors``).
"""

from __future__ import annotations

from nasfilter.cli import analyze, core, search, truth
from nasfilter.cli.app import app

for _command in (
    core.spaces,
    core.metrics,
    core.info,
    core.score,
    core.runs,
    core.top,
    core.sql,
    core.export,
    analyze.analyze,
    search.search,
    search.reproduce,
):
    app.command()(_command)
app.add_typer(truth.truth_app, name="truth")


def main() -> None:
    import os

    # torch's OpenMP threads spin while they wait; on a machine with other work that
    # costs several times the run time. Passive waiting (before torch is imported).
    os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    app()


__all__ = ["app", "main"]
