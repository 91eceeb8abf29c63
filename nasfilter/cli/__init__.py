"""The command-line interface: options in, library call, rendering out.

The application (``nasfilter.cli.app``) and the commands (plain functions in ``core``,
``analyze``, ``search``, ``truth``) are registered here, explicitly, in the order of
``--help``. Typed errors from the library become one line on stderr and their exit code
(see ``nasfilter.errors``).
"""

from __future__ import annotations

from typing import Any

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
    _import_typer_rich_utils_lightly()
    app()


class _Deferred(type):
    """A stand-in class: calling it, or reading an attribute of it, loads the real class
    (``cls._module``.``cls.__name__``) and uses that."""

    _module: str

    def _real(cls) -> Any:
        import importlib

        return getattr(importlib.import_module(cls._module), cls.__name__)

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        return cls._real()(*args, **kwargs)

    def __getattr__(cls, attr: str) -> Any:
        return getattr(cls._real(), attr)


def _import_typer_rich_utils_lightly() -> None:
    """Import ``typer.rich_utils`` (what renders ``--help`` and typer's errors) without
    the two rich modules it imports at its top for things nasfilter does not use:
    ``rich.markdown`` (markup mode "markdown"; it brings markdown-it and pygments) and
    ``rich.traceback`` (pretty tracebacks), ~0.12 s of ``nasfilter --help``. While it is
    imported they are stand-ins that load the real class when used; afterwards the
    names are free again, and ``import rich.markdown`` anywhere gives the real module."""
    import sys
    import types

    names = {"rich.markdown": "Markdown", "rich.traceback": "Traceback"}
    if "typer.rich_utils" in sys.modules or any(n in sys.modules for n in names):
        return
    for module, cls in names.items():
        stub = types.ModuleType(module)
        setattr(stub, cls, _Deferred(cls, (), {"_module": module}))
        sys.modules[module] = stub
    try:
        import typer.rich_utils  # noqa: F401
    except Exception:  # noqa: BLE001 - typer imports it itself later, as usual
        sys.modules.pop("typer.rich_utils", None)
    finally:
        for module in names:
            sys.modules.pop(module, None)


__all__ = ["app", "main"]
