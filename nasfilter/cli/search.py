"""Commands: search, reproduce."""

from __future__ import annotations
