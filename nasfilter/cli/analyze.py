"""Commands: analyze (how well each metric predicts accuracy and size)."""

from __future__ import annotations
