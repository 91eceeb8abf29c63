"""Commands: truth load, truth import (ground truth)."""

from __future__ import annotations
