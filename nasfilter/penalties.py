"""Size penalty functions (dissertation section 4.2.1).

A penalty multiplies a metric's score by a factor ``p(s)`` of the network size ``s``, in MB
of parameters stored at one byte each (so ``s`` is also the parameter count in millions;
see :func:`params_to_mb`). The text of the dissertation asks for a factor "equal to one at
the origin, then vanishing after a smooth transition" set by a target size. The formulas it
prints are piecewise: a probability density for s >= mu and "x otherwise" below (read as
1: no penalty under the target); at s = mu the densities do not equal 1, so the printed
forms jump at the target, and the printed hyperbolic-secant form has no sigma at all (see
docs/penalties.md). This module implements the stated intent instead: exactly 1 up to mu,
then a smooth decay of width sigma. With ``t = (s - mu) / sigma``:

=======  ===========================================  =======================
name     p(s) for s > mu  (p = 1 for s <= mu)          p at s = mu + sigma
=======  ===========================================  =======================
gdf      exp(-t^2 / 2)                                exp(-1/2) ~ 0.6065
hsdf     sech(t) = 2 / (exp(t) + exp(-t))             sech(1) ~ 0.6481
rdf      (1 + t) * exp(-t - t^2 / 2)                  2 exp(-3/2) ~ 0.4463
=======  ===========================================  =======================

``rdf`` is the Rayleigh density scaled so that its mode is 1 and shifted so that the mode
sits at ``mu``: with ``x = 1 + t``, ``p = x exp((1 - x^2) / 2)``.

Every factor is exactly 1 for ``s <= mu``, continuous with a zero first derivative at
``mu`` (C1), strictly decreasing above ``mu``, and in (0, 1] for every finite ``s``, except
that it underflows to 0.0 once the true value is below the smallest double (~4.9e-324):
``t`` above ~38.6 for gdf, ~37.7 for rdf, ~746 for hsdf (with the defaults: s ~ 15.6 MB,
15.3 MB and 298 MB). :func:`log_penalty` gives ``log p(s)``, which never underflows. For every
``s``: rdf <= gdf <= hsdf (hsdf has the heaviest tail, ~2 exp(-t)).

Caveat: the penalized score is ``score * p(s)``. That lowers positive scores but moves a
*negative* score toward 0, i.e. makes it *better* for a higher-is-better metric (for
instance a negative NASWOT log-determinant). This is not special-cased; the main metrics
(relu_count, NASWOT) are positive in practice. Non-finite scores (NaN, +-inf) are kept as
they are.

Only numpy is imported here; :func:`plot_penalties` imports matplotlib when called.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from numbers import Real
from typing import Any

import numpy as np

from nasfilter.errors import UsageError

DEFAULT_MU = 0.2  # MB: a 200 kB target at one byte per parameter
DEFAULT_SIGMA = 0.4  # MB

_LOG2 = math.log(2.0)


# --- parameters and sizes ----------------------------------------------------------------


def _as_real(value: Any, what: str) -> float:
    if isinstance(value, bool | np.bool_) or not isinstance(value, Real | np.number):
        raise UsageError(
            f"Penalty parameter {what} must be a real number, got {value!r}.",
            f"Pass a number, e.g. {what}={DEFAULT_MU if what == 'mu' else DEFAULT_SIGMA}.",
        )
    return float(value)


def validate_params(mu: Any, sigma: Any) -> tuple[float, float]:
    """Check the target size ``mu`` (MB) and width ``sigma`` (MB); return them as floats.

    Raises ``UsageError`` unless both are finite real numbers with ``mu >= 0`` and
    ``sigma > 0``.
    """
    m = _as_real(mu, "mu")
    s = _as_real(sigma, "sigma")
    if not math.isfinite(m) or m < 0:
        raise UsageError(
            f"Penalty target size mu must be finite and >= 0 (MB), got {mu!r}.",
            f"Pass e.g. mu={DEFAULT_MU} for a 200 kB target.",
        )
    if not math.isfinite(s) or s <= 0:
        raise UsageError(
            f"Penalty width sigma must be finite and > 0 (MB), got {sigma!r}.",
            f"Pass e.g. sigma={DEFAULT_SIGMA}.",
        )
    return m, s


def _as_float_array(value: Any, what: str) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise UsageError(
            f"{what} must be a number or an array of numbers, got {value!r}.",
            "Pass floats (sizes in MB) or a numpy array.",
        ) from None
    return arr


def _out(arr: np.ndarray, like: Any) -> float | np.ndarray:
    """A Python float for scalar input, an ndarray otherwise."""
    if np.ndim(like) == 0 and arr.ndim == 0:
        return float(arr)
    return arr


def params_to_mb(params: Any) -> float | np.ndarray:
    """Size in MB at one byte per parameter: ``params / 1e6`` (decimal MB, as ``size_kb``).

    Scalars give a float, arrays an ndarray. NaN passes through; negative counts raise
    ``UsageError``. (From the ``size_kb`` metric: ``size_mb = size_kb / 1000``, which also
    honours a different bytes-per-parameter setting.)
    """
    arr = _as_float_array(params, "Parameter count")
    if np.any(arr < 0):
        raise UsageError(
            "Parameter counts must be >= 0.", "Check where the parameter counts come from."
        )
    return _out(arr / 1e6, params)


# --- the shapes, in the log domain -------------------------------------------------------
# Each takes t = (s - mu) / sigma >= 0 and returns log p <= 0.


def _log_gdf_t(t: np.ndarray) -> np.ndarray:
    return -0.5 * t * t


def _log_hsdf_t(t: np.ndarray) -> np.ndarray:
    # log sech(t) = log 2 - log(exp(t) + exp(-t)), stable for every t
    return _LOG2 - np.logaddexp(t, -t)


def _log_rdf_t(t: np.ndarray) -> np.ndarray:
    # log[(1 + t) exp(-t - t^2/2)] = (log1p(t) - t) - t^2/2, each term <= 0
    return (np.log1p(t) - t) - 0.5 * t * t


def _make_log(shape: Callable[[np.ndarray], np.ndarray]) -> Callable[..., np.ndarray]:
    def log_p(s: Any, mu: float = DEFAULT_MU, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
        m, sg = validate_params(mu, sigma)
        arr = _as_float_array(s, "Size")
        with np.errstate(invalid="ignore", over="ignore"):
            above = arr > m  # False for NaN and for s <= mu
            t = np.where(above, (arr - m) / sg, 0.0)
            logp = np.minimum(shape(t), 0.0)  # guard against rounding above 0
            out = np.where(above, logp, 0.0)
            out = np.where(np.isposinf(arr), -np.inf, out)  # rdf would give inf - inf
            out = np.where(np.isnan(arr), np.nan, out)
        return np.asarray(out, dtype=float)

    return log_p


def _make_func(log_p: Callable[..., np.ndarray]) -> Callable[..., np.ndarray]:
    def func(s: Any, mu: float = DEFAULT_MU, sigma: float = DEFAULT_SIGMA) -> np.ndarray:
        lp = log_p(s, mu, sigma)
        with np.errstate(under="ignore"):
            p = np.exp(lp)
        # exp(0.0) is exactly 1.0, so s <= mu gives exactly 1
        return np.asarray(p, dtype=float)

    return func


@dataclass(frozen=True)
class Penalty:
    """A size penalty: ``func(s, mu, sigma)`` is the factor p(s) as an ndarray."""

    name: str
    description: str
    formula: str  # plain text, for docs and the CLI
    func: Callable[..., np.ndarray]
    log_func: Callable[..., np.ndarray] | None = None  # log p(s); never underflows


def _penalty(name: str, description: str, formula: str, shape: Callable) -> Penalty:
    log_p = _make_log(shape)
    log_p.__name__ = f"log_{name}"
    func = _make_func(log_p)
    func.__name__ = name
    return Penalty(name=name, description=description, formula=formula, func=func, log_func=log_p)


PENALTIES: dict[str, Penalty] = {
    p.name: p
    for p in (
        _penalty(
            "gdf",
            "Gaussian decay: half a Gaussian bell, 1 up to mu, exp(-1/2) ~ 0.61 at mu + sigma",
            "p(s) = 1 if s <= mu, else exp(-t^2 / 2) with t = (s - mu) / sigma",
            _log_gdf_t,
        ),
        _penalty(
            "hsdf",
            "hyperbolic secant decay: 1 up to mu, sech(1) ~ 0.65 at mu + sigma, "
            "exponential (heaviest) tail ~ 2 exp(-t)",
            "p(s) = 1 if s <= mu, else sech(t) = 2 / (exp(t) + exp(-t)) with t = (s - mu) / sigma",
            _log_hsdf_t,
        ),
        _penalty(
            "rdf",
            "Rayleigh decay: Rayleigh density scaled to 1 at its mode, mode shifted to mu; "
            "2 exp(-3/2) ~ 0.45 at mu + sigma, lightest tail",
            "p(s) = 1 if s <= mu, else (1 + t) * exp(-t - t^2 / 2) with t = (s - mu) / sigma "
            "(= x * exp((1 - x^2) / 2), x = 1 + t)",
            _log_rdf_t,
        ),
    )
}


def get_penalty(name: str) -> Penalty:
    """The penalty called ``name`` (case-insensitive); ``UsageError`` listing the choices."""
    key = name.strip().lower() if isinstance(name, str) else None
    if key not in PENALTIES:
        raise UsageError(
            f"Unknown size penalty {name!r}.", f"Choose from: {', '.join(sorted(PENALTIES))}."
        )
    return PENALTIES[key]


def penalty_factor(
    name: str, size_mb: Any, mu: float = DEFAULT_MU, sigma: float = DEFAULT_SIGMA
) -> float | np.ndarray:
    """The factor p(s) in (0, 1] for sizes ``size_mb`` (float in, float out; arrays too).

    Exactly 1 for ``s <= mu``; NaN sizes give NaN; ``s = +inf`` (or values past the
    underflow point described in the module docstring) give 0.0.
    """
    pen = get_penalty(name)
    return _out(pen.func(size_mb, mu, sigma), size_mb)


def log_penalty(
    name: str, size_mb: Any, mu: float = DEFAULT_MU, sigma: float = DEFAULT_SIGMA
) -> float | np.ndarray:
    """``log p(s)`` (<= 0, exactly 0 for ``s <= mu``); -inf only for ``s = +inf``.

    (For gdf and rdf ``t^2`` overflows, giving -inf, once ``t = (s - mu) / sigma`` exceeds
    ~1e154, far past any network size.)

    Use it to rank positive scores of very large networks: ``log(score) + log_penalty``.
    """
    pen = get_penalty(name)
    assert pen.log_func is not None
    return _out(pen.log_func(size_mb, mu, sigma), size_mb)


def penalized(
    score: Any,
    size_mb: Any,
    name: str,
    mu: float = DEFAULT_MU,
    sigma: float = DEFAULT_SIGMA,
) -> float | np.ndarray:
    """``score * p(size_mb)``, broadcast over arrays; a float for scalar inputs.

    Non-finite scores are returned as they are (NaN stays NaN, -inf stays -inf, +inf stays
    +inf), never replaced by numbers. A NaN size gives NaN.

    Caveat: multiplying by p < 1 moves a negative score toward 0, which *improves* it for a
    higher-is-better metric (e.g. a negative NASWOT log-determinant). This is deliberate
    arithmetic, not special-cased; shift or rank such scores in the log domain yourself.
    """
    sc = _as_float_array(score, "Score")
    p = get_penalty(name).func(size_mb, mu, sigma)
    try:
        sc_b, p_b = np.broadcast_arrays(sc, p)
    except ValueError:
        raise UsageError(
            f"Scores of shape {sc.shape} do not match sizes of shape {p.shape}.",
            "Pass one size per score, or a single size.",
        ) from None
    with np.errstate(invalid="ignore", over="ignore", under="ignore"):
        out = np.where(np.isfinite(sc_b), sc_b * p_b, sc_b)  # non-finite scores kept as is
    out = np.asarray(out, dtype=float)
    if np.ndim(score) == 0 and np.ndim(size_mb) == 0:
        return float(out)
    return out


def penalty_settings(
    name: str, mu: float = DEFAULT_MU, sigma: float = DEFAULT_SIGMA
) -> dict[str, Any]:
    """A JSON-safe record of the penalty, to store with a run."""
    pen = get_penalty(name)
    m, s = validate_params(mu, sigma)
    return {"penalty": pen.name, "mu": m, "sigma": s, "formula": pen.formula}


# --- plot --------------------------------------------------------------------------------


def plot_penalties(path: Any, mu: float = DEFAULT_MU, sigma: float = DEFAULT_SIGMA) -> Any:
    """Draw the three factors over s in [0, 2] MB to ``path`` (PNG); return ``path``.

    matplotlib is imported here, and drawn with its Agg canvas without touching pyplot's
    global backend.
    """
    m, sg = validate_params(mu, sigma)
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    s = np.linspace(0.0, 2.0, 801)
    fig = Figure(figsize=(6.4, 4.0), dpi=120)
    FigureCanvasAgg(fig)
    ax = fig.add_subplot(1, 1, 1)
    styles = {"gdf": "-", "hsdf": "--", "rdf": "-."}
    for key in ("gdf", "hsdf", "rdf"):
        ax.plot(s, PENALTIES[key].func(s, m, sg), styles[key], label=key)
    ax.axvline(m, color="0.6", lw=0.8)
    ax.axvline(m + sg, color="0.8", lw=0.8, ls=":")
    ax.text(m, 1.03, " mu", color="0.4", va="bottom", fontsize=8)
    ax.text(m + sg, 1.03, " mu + sigma", color="0.4", va="bottom", fontsize=8)
    ax.set_xlim(0.0, 2.0)
    ax.set_ylim(0.0, 1.1)
    ax.set_xlabel("size s (MB at 1 byte/parameter = millions of parameters)")
    ax.set_ylabel("penalty factor p(s)")
    ax.set_title(f"Size penalties, mu = {m:g} MB, sigma = {sg:g} MB")
    ax.grid(True, alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, format="png", metadata={"Software": None})
    return path


__all__ = [
    "DEFAULT_MU",
    "DEFAULT_SIGMA",
    "PENALTIES",
    "Penalty",
    "get_penalty",
    "log_penalty",
    "params_to_mb",
    "penalized",
    "penalty_factor",
    "penalty_settings",
    "plot_penalties",
    "validate_params",
]
