"""The Typer application: one-line errors and exit codes, ``--version``, ``-h``.

The commands are plain functions in ``core``, ``analyze``, ``search`` and ``truth``,
registered on ``app`` by ``nasfilter.cli`` (no module registers itself on import).
"""

from __future__ import annotations

from typing import Annotated, Any

import typer
from typer.core import TyperGroup

from nasfilter import __version__
from nasfilter.errors import NasfilterError


class _Group(TyperGroup):
    def main(self, *args: Any, standalone_mode: bool = True, **kwargs: Any) -> Any:  # type: ignore[override]
        """Bad usage (an unknown option, a value not among the choices) is one line on
        stderr with exit code 2, like every other error of nasfilter."""
        if not standalone_mode:
            return super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
        import sys

        try:  # typer >= 0.20 vendors click
            from typer._click import exceptions as cx
        except ImportError:  # pragma: no cover - older typer uses click itself
            from click import exceptions as cx  # type: ignore[no-redef]

        try:
            rv = super().main(*args, standalone_mode=False, **kwargs)  # type: ignore[misc]
        except cx.UsageError as e:
            if type(e).__name__ == "NoArgsIsHelpError":
                e.show()
                sys.exit(e.exit_code)
            hint = f" Try '{e.ctx.command_path} -h' for help." if e.ctx is not None else ""
            message = " ".join(e.format_message().split()).replace("Value error, ", "")
            if not message.endswith("."):
                message += "."
            typer.echo(f"Error: {message}{hint}", err=True)
            sys.exit(e.exit_code)
        except cx.ClickException as e:
            typer.echo(f"Error: {' '.join(e.format_message().split())}", err=True)
            sys.exit(e.exit_code)
        except typer.Abort:
            typer.echo("Aborted.", err=True)
            sys.exit(1)
        sys.exit(rv if isinstance(rv, int) else 0)

    def invoke(self, ctx: Any) -> Any:
        try:
            return super().invoke(ctx)
        except NasfilterError as e:
            from nasfilter.cli.render import err_console

            err_console.print(f"Error: {e}", markup=False, highlight=False, soft_wrap=True)
            raise typer.Exit(e.exit_code) from None
        except KeyboardInterrupt:
            from nasfilter.cli.render import err_console

            err_console.print("Interrupted.", markup=False)
            raise typer.Exit(130) from None


app = typer.Typer(
    name="nasfilter",
    cls=_Group,
    help="Score neural architectures without training them, and pick which to train.",
    rich_markup_mode="rich",
    context_settings={"help_option_names": ["-h", "--help"]},
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"nasfilter {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Show the version and exit."
        ),
    ] = False,
) -> None:
    """Score neural architectures without training them, and pick which to train."""
