"""Size penalties (nasfilter.penalties): shape, width, vectorization, non-finite scores."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from nasfilter.errors import UsageError
from nasfilter.penalties import (
    PENALTIES,
    Penalty,
    get_penalty,
    log_penalty,
    params_to_mb,
    penalized,
    penalty_factor,
    penalty_settings,
    plot_penalties,
    validate_params,
)

NAMES = ["gdf", "hsdf", "rdf"]
MU, SIGMA = 0.2, 0.4

# documented closed-form values at s = mu + sigma (t = 1)
AT_WIDTH = {
    "gdf": math.exp(-0.5),
    "hsdf": 1.0 / math.cosh(1.0),
    "rdf": 2.0 * math.exp(-1.5),
}


def test_registry_keys_and_types():
    assert set(PENALTIES) == set(NAMES)
    for name, pen in PENALTIES.items():
        assert isinstance(pen, Penalty)
        assert pen.name == name
        assert pen.description and pen.formula
        assert get_penalty(name) is pen
    assert get_penalty(" GDF ") is PENALTIES["gdf"]


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("mu", "sigma"), [(MU, SIGMA), (0.0, 1.0), (1.5, 0.05)])
def test_exactly_one_up_to_mu(name, mu, sigma):
    s = np.concatenate([np.linspace(0.0, mu, 101), [-1.0, mu - 1e-12, mu]])
    p = penalty_factor(name, s, mu, sigma)
    assert np.all(p == 1.0)
    assert np.all(log_penalty(name, s, mu, sigma) == 0.0)
    assert penalty_factor(name, mu, mu, sigma) == 1.0


@pytest.mark.parametrize("name", NAMES)
def test_range_is_zero_one(name):
    s = np.linspace(0.0, 10.0, 10001)
    p = penalty_factor(name, s, MU, SIGMA)
    assert np.all(p > 0.0)
    assert np.all(p <= 1.0)
    assert np.all(p[s > MU] < 1.0)


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("mu", "sigma"), [(MU, SIGMA), (0.0, 1.0), (0.5, 0.1)])
def test_strictly_decreasing_above_mu(name, mu, sigma):
    s = mu + np.linspace(0.0, 4.0 * sigma, 4001)
    p = penalty_factor(name, s, mu, sigma)
    assert np.all(np.diff(p) < 0.0)
    lp = log_penalty(name, mu + np.linspace(0.0, 200.0 * sigma, 2001), mu, sigma)
    assert np.all(np.diff(lp) < 0.0)


@pytest.mark.parametrize("name", NAMES)
def test_continuous_at_mu(name):
    for eps in (1e-9, 1e-6):
        p = penalty_factor(name, MU + eps, MU, SIGMA)
        assert p == pytest.approx(1.0, abs=1e-6)
        assert p <= 1.0
    # zero slope at mu: a step of 1e-4 sigma changes p by O(1e-8), not O(1e-4)
    assert 1.0 - penalty_factor(name, MU + 1e-4 * SIGMA, MU, SIGMA) < 1e-7


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize(("mu", "sigma"), [(MU, SIGMA), (0.0, 1.0), (3.0, 2.5)])
def test_value_at_mu_plus_sigma(name, mu, sigma):
    p = penalty_factor(name, mu + sigma, mu, sigma)
    assert p == pytest.approx(AT_WIDTH[name], rel=1e-12)


def test_closed_forms_match_formulas():
    t = np.linspace(0.01, 6.0, 600)
    s = MU + SIGMA * t
    np.testing.assert_allclose(penalty_factor("gdf", s), np.exp(-(t**2) / 2), rtol=1e-12)
    np.testing.assert_allclose(penalty_factor("hsdf", s), 1.0 / np.cosh(t), rtol=1e-12)
    x = 1.0 + t
    np.testing.assert_allclose(penalty_factor("rdf", s), x * np.exp((1 - x**2) / 2), rtol=1e-12)
    # documented ordering: rdf <= gdf <= hsdf
    assert np.all(penalty_factor("rdf", s) <= penalty_factor("gdf", s))
    assert np.all(penalty_factor("gdf", s) <= penalty_factor("hsdf", s))


@pytest.mark.parametrize("name", NAMES)
def test_smaller_sigma_decays_faster(name):
    s = np.linspace(MU + 0.01, 3.0, 300)
    wide = penalty_factor(name, s, MU, SIGMA)
    narrow = penalty_factor(name, s, MU, SIGMA / 2)
    assert np.all(narrow < wide)


@pytest.mark.parametrize("name", NAMES)
def test_vectorized_equals_scalar(name):
    s = np.array([0.0, 0.1, 0.2, 0.25, 0.6, 1.0, 2.0, 7.5])
    vec = penalty_factor(name, s)
    assert isinstance(vec, np.ndarray) and vec.shape == s.shape
    for si, vi in zip(s, vec, strict=True):
        sc = penalty_factor(name, float(si))
        assert isinstance(sc, float)
        assert sc == vi
    grid = penalty_factor(name, s.reshape(2, 4))
    assert grid.shape == (2, 4)
    np.testing.assert_array_equal(grid.ravel(), vec)
    np.testing.assert_array_equal(penalty_factor(name, list(s)), vec)
    np.testing.assert_array_equal(PENALTIES[name].func(s, MU, SIGMA), vec)


@pytest.mark.parametrize("name", NAMES)
def test_log_penalty_never_underflows(name):
    huge = [50.0, 1e3, 1e6]
    p = penalty_factor(name, np.array(huge))
    lp = log_penalty(name, np.array(huge))
    assert np.all(np.isfinite(lp)) and np.all(lp < -100)
    assert np.all(np.diff(lp) < 0)
    assert np.all((p >= 0.0) & (p < 1e-40))
    s = np.linspace(0.0, 5.0, 501)
    np.testing.assert_allclose(np.exp(log_penalty(name, s)), penalty_factor(name, s), rtol=1e-13)
    assert penalty_factor(name, math.inf) == 0.0
    assert math.isnan(penalty_factor(name, math.nan))


@pytest.mark.parametrize("name", NAMES)
def test_penalized_keeps_non_finite_scores(name):
    assert penalized(-math.inf, 1.0, name) == -math.inf
    assert penalized(math.inf, 1.0, name) == math.inf
    assert math.isnan(penalized(math.nan, 1.0, name))
    # even where p underflows to 0 or the size is unknown
    assert penalized(-math.inf, 1e6, name) == -math.inf
    assert penalized(-math.inf, math.nan, name) == -math.inf
    assert math.isnan(penalized(math.nan, 1e6, name))
    scores = np.array([5.0, -math.inf, math.nan, math.inf, 2.0])
    sizes = np.array([1.0, 1.0, 1.0, 1.0, 0.1])
    out = penalized(scores, sizes, name)
    assert out[0] == pytest.approx(5.0 * penalty_factor(name, 1.0))
    assert out[1] == -math.inf
    assert math.isnan(out[2])
    assert out[3] == math.inf
    assert out[4] == 2.0


def test_penalized_values_and_broadcast():
    assert penalized(10.0, 0.6, "gdf") == pytest.approx(10.0 * math.exp(-0.5))
    assert isinstance(penalized(10, 0.6, "gdf"), float)
    assert penalized(10.0, 0.1, "hsdf") == 10.0
    out = penalized(np.array([1.0, 2.0, 3.0]), 0.6, "rdf", mu=0.2, sigma=0.4)
    np.testing.assert_allclose(out, np.array([1.0, 2.0, 3.0]) * 2 * math.exp(-1.5))
    # negative scores move toward 0 (documented caveat, not special-cased)
    assert penalized(-10.0, 0.6, "gdf") == pytest.approx(-10.0 * math.exp(-0.5))
    with pytest.raises(UsageError):
        penalized(np.ones(3), np.ones(2), "gdf")


def test_unknown_name_lists_choices():
    with pytest.raises(UsageError) as exc:
        get_penalty("laplace")
    assert "laplace" in exc.value.message
    for name in NAMES:
        assert name in exc.value.hint
    with pytest.raises(UsageError):
        penalty_factor("nope", 1.0)
    with pytest.raises(UsageError):
        penalized(1.0, 1.0, "nope")
    with pytest.raises(UsageError):
        get_penalty(None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("mu", "sigma"),
    [
        (0.2, 0.0),
        (0.2, -0.4),
        (0.2, math.inf),
        (0.2, math.nan),
        (-0.1, 0.4),
        (math.inf, 0.4),
        (math.nan, 0.4),
        ("0.2", 0.4),
        (0.2, None),
        (True, 0.4),
    ],
)
def test_bad_params_raise(mu, sigma):
    with pytest.raises(UsageError):
        validate_params(mu, sigma)
    for name in NAMES:
        with pytest.raises(UsageError):
            penalty_factor(name, 1.0, mu, sigma)
        with pytest.raises(UsageError):
            PENALTIES[name].func(1.0, mu, sigma)
    with pytest.raises(UsageError):
        penalty_settings("gdf", mu, sigma)


def test_validate_params_accepts_good_values():
    assert validate_params(0.2, 0.4) == (0.2, 0.4)
    assert validate_params(0, 1) == (0.0, 1.0)
    assert validate_params(np.float32(0.5), np.int64(2)) == (0.5, 2.0)


def test_penalty_settings_is_json_safe():
    rec = penalty_settings("HSDF", np.float64(0.2), 0.4)
    assert rec == {
        "penalty": "hsdf",
        "mu": 0.2,
        "sigma": 0.4,
        "formula": PENALTIES["hsdf"].formula,
    }
    assert json.loads(json.dumps(rec)) == rec
    assert all(type(v) in (str, float) for v in rec.values())


def test_params_to_mb():
    assert params_to_mb(200_000) == pytest.approx(0.2)
    assert isinstance(params_to_mb(1_500_000), float)
    np.testing.assert_allclose(params_to_mb(np.array([0, 1e6, 2.5e6])), [0.0, 1.0, 2.5])
    with pytest.raises(UsageError):
        params_to_mb(-1)
    with pytest.raises(UsageError):
        penalty_factor("gdf", "big")


def test_no_matplotlib_at_import():
    code = (
        "import sys, nasfilter.penalties as p; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported'; "
        "p.penalty_factor('gdf', 1.0)"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_plot_penalties_writes_png(tmp_path):
    pytest.importorskip("matplotlib")
    path = tmp_path / "p.png"
    assert plot_penalties(path, mu=0.3, sigma=0.2) == path
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with pytest.raises(UsageError):
        plot_penalties(tmp_path / "bad.png", sigma=0.0)
