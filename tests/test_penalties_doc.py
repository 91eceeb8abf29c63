"""docs/penalties.md and the README read the dissertation's printed penalty formulas as
printed: piecewise (a density for s >= mu, "x otherwise" below), the HSDF without sigma;
and the figures quoted for them are the formulas' own values (computed here)."""

from __future__ import annotations

import math
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DOC = (ROOT / "docs" / "penalties.md").read_text(encoding="utf-8")
README = (ROOT / "README.md").read_text(encoding="utf-8")
PRINTED = DOC[DOC.index("## What the dissertation prints") : DOC.index("## Python API")]


def test_the_printed_forms_are_described_as_piecewise() -> None:
    assert "x otherwise" in PRINTED and "s ≥ μ" in PRINTED
    assert "without σ" in PRINTED and "no σ" in PRINTED
    # the old misreadings: symmetric densities penalizing small networks, HSDF with sigma
    for wrong in ("symmetric", "smaller* than μ", "(1 / (2σ))", "0 at the origin"):
        assert wrong not in PRINTED, wrong
    readme = README[README.index("## Size penalties") : README.index("## Development")]
    assert "x otherwise" in readme and "without σ" in readme
    assert "penalizes networks smaller than the target" not in readme
    assert "0 at the origin" not in readme


def _gauss(s: float, mu: float, sigma: float) -> float:
    return math.exp(-((s - mu) ** 2) / (2 * sigma**2)) / (sigma * math.sqrt(2 * math.pi))


def _rayleigh(s: float, sigma: float) -> float:
    return s / sigma**2 * math.exp(-(s**2) / (2 * sigma**2))


def test_quoted_values_are_the_printed_formulas_values() -> None:
    mu = 0.2
    assert f"{_gauss(mu, mu, 0.4):.4f}" == "0.9974" and "0.9974" in PRINTED
    assert f"{_gauss(mu, mu, 0.2):.3f}" == "1.995" and "1.995 for σ = 0.2" in PRINTED
    assert f"{_gauss(mu, mu, 1.0):.3f}" == "0.399" and "0.399 for σ = 1" in PRINTED
    assert 0.5 / math.cosh(0.0) == 0.5 and "½ sech(π(s − μ)/2)" in PRINTED
    assert f"{_rayleigh(mu, 0.4):.3f}" == "1.103" and "| 1.103 |" in PRINTED
    assert f"{_rayleigh(0.4, 0.4):.3f}" == "1.516" and "(1.516 for σ = 0.4)" in PRINTED
    # where the printed RDF falls back to 1 above its peak: bisection on [sigma, 2]
    lo, hi = 0.4, 2.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if _rayleigh(mid, 0.4) > 1 else (lo, mid)
    assert f"{lo:.2f}" == "0.68" and "s ≈ 0.68 MB" in PRINTED
