"""Progress bars on stderr (rich), shared by score, search and reproduce.

A bar appears on its first update, so a command that fails while validating its input
prints only its one-line error.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from nasfilter.cli.render import err_console


def rate_text(per_second: float | None, unit: str = "arch") -> str:
    """``1,234 arch/s``, or ``2.5 s/arch`` below one per second."""
    if not per_second:
        return ""
    if per_second >= 1.0:
        return f"{per_second:,.0f} {unit}/s"
    return f"{1.0 / per_second:,.1f} s/{unit}"


class Bar:
    """One progress task: ``total(n, done)``, ``advance(k)``, ``print(text)``."""

    def __init__(self, description: str, unit: str, total: int | None) -> None:
        self.description = description
        self.unit = unit
        self._total = total
        self.progress: Any = None
        self.task: Any = None

    def _start(self) -> None:
        if self.progress is not None:
            return
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.progress = Progress(
            TextColumn("[bold]{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("[cyan]{task.fields[rate]}"),
            TimeElapsedColumn(),
            TextColumn("ETA"),
            TimeRemainingColumn(),
            console=err_console,
            transient=False,
        )
        self.progress.start()
        self.task = self.progress.add_task(self.description, total=self._total, rate="")

    def total(self, total: int | None, done: int = 0) -> None:
        self._start()
        self.progress.update(self.task, total=total, completed=done)

    def advance(self, k: int = 1) -> None:
        self._start()
        self.progress.advance(self.task, k)
        t = next(x for x in self.progress.tasks if x.id == self.task)
        if t.speed:
            self.progress.update(self.task, rate=rate_text(t.speed, self.unit))

    def status(self, text: str) -> None:
        """Show ``text`` (e.g. ``writing 1,694,496 rows``) where the rate was: the bar is
        full but the command is not done; ``""`` puts the rate back."""
        self._start()
        t = next(x for x in self.progress.tasks if x.id == self.task)
        rate = text + "…" if text else rate_text(t.speed or t.finished_speed, self.unit)
        self.progress.update(self.task, rate=rate)

    def print(self, text: str) -> None:
        """A message above the bar (or plainly, before it appears)."""
        console = self.progress.console if self.progress is not None else err_console
        console.print(text, markup=False, highlight=False, soft_wrap=True)

    def stop(self) -> None:
        if self.progress is not None:
            self.progress.stop()


@contextmanager
def progress_bar(description: str, unit: str = "arch", total: int | None = None) -> Iterator[Bar]:
    """A bar with count, rate (or seconds per item below one per second), elapsed time
    and ETA, on stderr; left on screen when done."""
    bar = Bar(description, unit, total)
    try:
        yield bar
    finally:
        bar.stop()
