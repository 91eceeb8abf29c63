"""Interrupts that never cut a batch in half.

While a run writes, SIGINT (Ctrl-C) and SIGTERM (kill) raise ``KeyboardInterrupt`` in
the main thread, except inside ``critical()`` sections (a batch being committed), where
the signal is remembered and raised as soon as the section ends.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

_state = {"depth": 0, "pending": False}


def _handler(signum: int, frame: Any) -> None:
    if _state["depth"] > 0:
        _state["pending"] = True
        return
    raise KeyboardInterrupt


@contextmanager
def critical() -> Iterator[None]:
    """Defer SIGINT/SIGTERM (as installed by ``interruptible``) until the block ends."""
    _state["depth"] += 1
    try:
        yield
    finally:
        _state["depth"] -= 1
    if _state["depth"] == 0 and _state["pending"]:
        _state["pending"] = False
        raise KeyboardInterrupt


@contextmanager
def interruptible() -> Iterator[None]:
    """Install the handlers for SIGINT and SIGTERM (main thread only) for the block."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    _state["pending"] = False
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
