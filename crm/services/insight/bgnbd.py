"""The BG/NBD purchase model (Fader, Hardie & Lee 2005): fit, probability alive, expected purchases, next purchase."""
from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import linalg, special

from crm.services.insight.fitting import _judge_fit, _minimise_from_starts, _params, _wsum

# --------------------------------------------------------------------------
# BG/NBD
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class BgNbdFit:
    """Maximum-likelihood BG/NBD parameters and how the fit went.

    Purchase rates are Gamma(shape r, rate alpha) across customers; the
    chance of dropping out after each repeat purchase is Beta(a, b).
    ``log_likelihood`` is the total over customers at the estimate (without
    the penalty); ``converged`` is False whenever the estimate should not be
    trusted, and ``message`` says why.
    """

    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float
    converged: bool
    n_customers: int
    message: str
    penalizer: float = 0.0

    @property
    def params(self) -> tuple[float, float, float, float]:
        return (self.r, self.alpha, self.a, self.b)


def _check_rft(x: Any, t_x: Any, T: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    x, t_x, T = (np.asarray(v, dtype=float) for v in (x, t_x, T))
    x, t_x, T = np.broadcast_arrays(x, t_x, T)
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(t_x)) and np.all(np.isfinite(T))):
        raise ValueError("x, t_x and T must be finite")
    if np.any(x < 0) or np.any(x != np.round(x)):
        raise ValueError("x must be whole numbers >= 0")
    # A little slack for t_x and T computed in floating point.
    if np.any(t_x < 0) or np.any(t_x > T * (1 + 1e-12) + 1e-12):
        raise ValueError("need 0 <= t_x <= T")
    return x, t_x, T


def _bgnbd_ll_terms(r, alpha, a, b, x, t_x, T) -> np.ndarray:
    """Return per-customer BG/NBD log-likelihoods (eq. 6 of Fader, Hardie & Lee 2005).

    L = B(a, b+x)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+T)^(r+x))
      + [x > 0] B(a+1, b+x-1)/B(a, b) * G(r+x) alpha^r / (G(r) (alpha+t_x)^(r+x))
    The first term is "still alive at T", the second "dropped out right after
    the x-th repeat purchase"; the second does not exist when x == 0.
    """
    log_common = special.gammaln(r + x) - special.gammaln(r) + r * np.log(alpha)
    log_beta_ab = special.betaln(a, b)
    log_alive = special.betaln(a, b + x) - log_beta_ab - (r + x) * np.log(alpha + T)
    with np.errstate(divide="ignore", invalid="ignore"):
        # For x == 0, b + x - 1 may be <= 0: computed, then masked out.
        log_dead = special.betaln(a + 1, b + x - 1) - log_beta_ab - (r + x) * np.log(alpha + t_x)
    log_dead = np.where(x > 0, log_dead, -np.inf)
    return log_common + np.logaddexp(log_alive, log_dead)


def bgnbd_log_likelihood(params: Any, x: Any, t_x: Any, T: Any, *, per_customer: bool = False):
    """Return the BG/NBD log-likelihood: the total, or per customer if asked.

    ``params`` is a BgNbdFit or (r, alpha, a, b).
    """
    r, alpha, a, b = _params(params, 4, "r, alpha, a, b")
    x, t_x, T = _check_rft(x, t_x, T)
    ll = _bgnbd_ll_terms(r, alpha, a, b, x, t_x, T)
    return ll if per_customer else float(np.sum(ll))


def _bgnbd_objective(theta, xu, inv, t_x, T, weights, penalizer, centre=0.0):
    """Return (-weighted mean log-likelihood + penalty, its gradient) at log-parameters theta.

    The penalty is ``penalizer * sum((theta - centre)^2)`` on this *mean*
    scale; fit_bgnbd passes its prior weight divided by the number of
    customers, so the prior weighs on the total log-likelihood.

    The same likelihood as _bgnbd_ll_terms, but the gamma/beta-function
    parts are computed once per distinct x (they depend on nothing else),
    and the gradient is analytic: with L = C + logaddexp(A, D) and
    w = P(alive term) = exp(A - logaddexp(A, D)),
    dL = dC + w dA + (1 - w) dD, where (psi = digamma)
      d/dr:     dC = psi(r+x) - psi(r) + ln(alpha), dA = -ln(alpha+T), dD = -ln(alpha+t_x)
      d/dalpha: dC = r/alpha, dA = -(r+x)/(alpha+T), dD = -(r+x)/(alpha+t_x)
      d/da:     dA = psi(a+b) - psi(a+b+x), dD = dA + 1/a
      d/db:     dA = psi(b+x) - psi(b) + psi(a+b) - psi(a+b+x),
                dD = psi(b+x-1) - psi(b) + psi(a+b) - psi(a+b+x)
    and d/dtheta = param * d/dparam.
    """
    r, alpha, a, b = np.exp(theta)
    has_repeat = xu > 0
    log_beta_ab = special.betaln(a, b)
    common_u = special.gammaln(r + xu) - special.gammaln(r) + r * np.log(alpha)
    alive_u = special.betaln(a, b + xu) - log_beta_ab
    with np.errstate(divide="ignore", invalid="ignore"):
        dead_u = np.where(has_repeat, special.betaln(a + 1, b + xu - 1) - log_beta_ab, -np.inf)
    rx = (r + xu)[inv]
    log_aT = np.log(alpha + T)
    log_atx = np.log(alpha + t_x)
    log_alive = alive_u[inv] - rx * log_aT
    log_dead = dead_u[inv] - rx * log_atx
    total = np.logaddexp(log_alive, log_dead)
    ll = _wsum(common_u[inv] + total, weights)
    w = np.exp(log_alive - total)  # share of the "alive" term; 1 when x == 0
    wd = 1.0 - w

    psi = special.digamma
    d_r = (psi(r + xu) - psi(r))[inv] + np.log(alpha) - w * log_aT - wd * log_atx
    d_alpha = r / alpha - rx * (w / (alpha + T) + wd / (alpha + t_x))
    dA_a = psi(a + b) - psi(a + b + xu)
    d_a = dA_a[inv] + wd / a
    dA_b = psi(b + xu) - psi(b) + psi(a + b) - psi(a + b + xu)
    with np.errstate(divide="ignore", invalid="ignore"):
        dD_b = np.where(has_repeat, psi(b + xu - 1) - psi(b) + psi(a + b) - psi(a + b + xu), 0.0)
    d_b = w * dA_b[inv] + wd * dD_b[inv]
    grad = np.array([_wsum(d, weights) for d in (d_r, d_alpha, d_a, d_b)])
    grad *= np.exp(theta)

    off = theta - centre
    value = -ll + penalizer * float(off @ off)
    grad = -grad + 2.0 * penalizer * off
    if not (np.isfinite(value) and np.all(np.isfinite(grad))):
        return 1e100, np.zeros_like(theta)
    return float(value), grad


def fit_bgnbd(
    x: Any,
    t_x: Any,
    T: Any,
    *,
    penalizer: float = 0.0,
    starts: Sequence[Sequence[float]] | None = None,
) -> BgNbdFit:
    """Return the maximum-likelihood BG/NBD fit for customers' (x, t_x, T).

    Minimises  -total log-likelihood + penalizer * sum((log(param) - centre)^2)
    over the log-parameters with L-BFGS-B (analytic gradient) from several
    starting points and keeps the best.  The optional penalty is a weak
    normal prior on the log-parameters, centred on a neutral shape at the
    data's own time scale (``bgnbd_prior_centre``: r = a = b = 1 and alpha
    such that r / alpha is the observed repeat-purchase rate), so it does not
    depend on the time unit.  It weighs on the *total* log-likelihood: its
    pull is that of a fixed handful of customers, so it steadies a shop of
    thirty and fades to nothing for one of thirty thousand (the estimate
    moves towards the maximum-likelihood one as the shop grows).  Off by
    default.  ``starts`` overrides the starting (r, alpha, a, b) values.
    Never raises for bad data: a fit that failed or ran off to implausible
    values comes back with ``converged=False`` and a message (and nan
    parameters when there was nothing to fit).

    Small shops: with a few hundred customers or fewer, the dropout
    parameters are weakly identified and ``a`` often runs off to 0 or
    infinity unpenalised; ``PRIOR_WEIGHT`` keeps such fits finite (see
    tests/test_predict_models.py for the simulations).
    """
    if penalizer < 0:
        raise ValueError("penalizer must be >= 0")
    x, t_x, T = _check_rft(x, t_x, T)
    x, t_x, T = x.reshape(-1), t_x.reshape(-1), T.reshape(-1)
    n = int(x.size)
    if n == 0 or x.max() == 0:
        # Without repeat purchases the likelihood just pushes the purchase
        # rate to zero; there is nothing to estimate.
        message = "no customers" if n == 0 else "no customer has a repeat purchase; there is nothing to fit"
        return BgNbdFit(*(math.nan,) * 5, converged=False, n_customers=n,
                        message=message, penalizer=penalizer)
    # Customers with the same (x, t_x, T) contribute the same term; with
    # day-granular data that collapses the work a lot.
    rows, counts = np.unique(np.column_stack([x, t_x, T]), axis=0, return_counts=True)
    ut, uT = np.ascontiguousarray(rows[:, 1]), np.ascontiguousarray(rows[:, 2])
    xu, inv = np.unique(rows[:, 0], return_inverse=True)
    inv = inv.reshape(-1)
    weights = counts.astype(float) / n
    centre = np.log(bgnbd_prior_centre(x, T))

    def objective(theta: np.ndarray) -> tuple[float, np.ndarray]:
        # The optimiser works on the mean scale (well-conditioned at any size): the total
        # log-likelihood's prior weight divided by n is the same minimum.
        return _bgnbd_objective(theta, xu, inv, ut, uT, weights, penalizer / n, centre)

    if starts is None:
        # Scale alpha to the data: E[lambda] = r / alpha ~ repeat purchases per unit time.
        rate = _repeat_rate(x, T)
        starts = [
            (1.0, 1.0 / rate, 1.0, 1.0),
            (0.25, 0.25 / rate, 0.8, 2.5),
            (2.0, 2.0 / rate, 0.5, 5.0),
        ]
    start_thetas = [np.log(np.asarray(s, dtype=float)) for s in starts]
    res = _minimise_from_starts(objective, start_thetas)
    converged, message = _judge_fit(objective, res, ("r", "alpha", "a", "b"))
    r, alpha, a, b = (float(v) for v in np.exp(res.x))
    ll_total = _wsum(_bgnbd_ll_terms(r, alpha, a, b, xu[inv], ut, uT), counts)
    return BgNbdFit(r, alpha, a, b, ll_total, converged, n, message, penalizer)


def _repeat_rate(x: np.ndarray, T: np.ndarray) -> float:
    return max(float(x.sum()) / max(float(T.sum()), 1e-12), 1e-6)


def bgnbd_prior_centre(x: Any, T: Any) -> tuple[float, float, float, float]:
    """Return the (r, alpha, a, b) the fit's prior is centred on: a neutral shape at the data's scale.

    r = 1 (exponential spread of purchase rates), alpha = 1 / the observed repeat purchases per
    unit of time (so the centre's mean rate r / alpha is the shop's own), a = b = 1 (every
    dropout chance equally likely).
    """
    x, T = np.asarray(x, dtype=float).reshape(-1), np.asarray(T, dtype=float).reshape(-1)
    return (1.0, 1.0 / _repeat_rate(x, T), 1.0, 1.0)


def bgnbd_p_alive(fit: Any, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """Return P(customer is still active at T | x, t_x, T).

    From Fader, Hardie & Lee (2005) and their note "Computing P(alive)
    Using the BG/NBD Model":

    P = 1 / (1 + [x > 0] * a / (b + x - 1) * ((alpha + T) / (alpha + t_x))^(r + x)),
    computed as a logistic of the log-odds so it neither overflows nor
    rounds to exactly 0 too early.  Equals 1 when x == 0: in BG/NBD a
    customer can only drop out right after a repeat purchase.
    """
    r, alpha, a, b = _params(fit, 4, "r, alpha, a, b")
    x, t_x, T = _check_rft(x, t_x, T)
    with np.errstate(divide="ignore", invalid="ignore"):
        log_odds_dead = (
            np.log(a) - np.log(b + x - 1)
            + (r + x) * (np.log(alpha + T) - np.log(alpha + t_x))
        )
    return np.where(x > 0, special.expit(-log_odds_dead), 1.0)


# ---- E[future purchases | alive]: the hypergeometric term, done carefully ----
#
# Given that a customer is alive at T, the posterior of (lambda, p) is
# Gamma(r + x, alpha + T) x Beta(a, b + x), independently, and the expected
# number of purchases in the next t is
#     M(t) = E[(1 - exp(-lambda p t)) / p]
#          = (c / (a - 1)) * [1 - ((alpha'/(alpha'+t))^(r')) 2F1(r', b'; c; z)]
# with r' = r + x, alpha' = alpha + T, b' = b + x, c = a + b' - 1,
# z = t / (alpha' + t)  (paper eqs. 7 and 10).  Written as in the paper, the
# 2F1 overflows for heavy buyers.  Euler's transformation
#     2F1(r', b'; c; z) = (1 - z)^(c - r' - b') 2F1(c - r', c - b'; c; z)
# turns it into
#     M(t) = (c / (a - 1)) * [1 - (1 - z)^(a - 1) 2F1(c - r', a - 1; c; z)],
# which stays finite far longer (the lifetimes library uses the same identity
# as a fallback).  Where even that fails -- non-finite, outside the bounds
# 0 <= M(t) <= E[lambda] t, or too close to a = 1 where the bracket cancels --
# we integrate over p directly with Gauss quadrature for the Beta weight:
#     M(t) = E_p[(1 - (1 + p t / alpha')^(-r')) / p],  p ~ Beta(a, b').
# The integrand is smooth on [0, 1]; it changes over p ~ 1 / (r' t / alpha'),
# so the node count grows like sqrt(r' t / alpha').

# Beyond this many nodes (r' t / alpha' above ~500,000, e.g. 5,000 repeat
# purchases and a horizon 100 times alpha + T) the rule is used as is and
# may lose accuracy; the hypergeometric form normally covers such cases.
_MAX_NODES = 1500


@functools.lru_cache(maxsize=256)
def _beta_gauss_rule(n: int, a: float, b: float) -> tuple[np.ndarray, np.ndarray]:
    """Return n Gauss nodes in (0, 1) and weights summing to 1 for the Beta(a, b) density.

    Golub-Welsch on the Jacobi matrix for the weight (1-u)^(b-1) (1+u)^(a-1)
    on [-1, 1], mapped by p = (1 + u) / 2.  Weights come from the first
    components of the eigenvectors, so they are normalised without ever
    forming B(a, b) or 2^(a+b) (which overflow for large b).
    """
    al, be = b - 1.0, a - 1.0
    k = np.arange(n, dtype=float)
    s = 2 * k + al + be
    with np.errstate(divide="ignore", invalid="ignore"):
        diag = np.where(k == 0, (be - al) / (al + be + 2), (be * be - al * al) / (s * (s + 2)))
    k1 = np.arange(1, n, dtype=float)
    s1 = 2 * k1 + al + be
    with np.errstate(divide="ignore", invalid="ignore"):
        off2 = 4 * k1 * (k1 + al) * (k1 + be) * (k1 + al + be) / (s1 * s1 * (s1 + 1) * (s1 - 1))
    if n > 1:
        # k = 1 written with (1 + al + be) cancelled: it can be 0 when a + b = 1.
        off2[0] = 4 * (1 + al) * (1 + be) / ((2 + al + be) ** 2 * (3 + al + be))
    if n == 1:
        nodes, vectors = np.array([diag[0]]), np.ones((1, 1))
    else:
        nodes, vectors = linalg.eigh_tridiagonal(diag, np.sqrt(off2))
    weights = vectors[0] ** 2
    weights = weights / weights.sum()
    p = np.clip((1 + nodes) / 2, 1e-300, 1.0)
    return p, weights


def _mean_purchases_if_alive_quadrature(rp, ap, a, bp, t) -> np.ndarray:
    """Return M(t) (see above) by Gauss-Beta quadrature; 1-d float arrays in."""
    out = np.empty(rp.shape)
    kappa = t / ap
    need = np.ceil(2.0 * np.sqrt(rp * kappa) + 8.0 * np.sqrt(kappa)).astype(np.int64) + 32
    need = np.minimum(need, _MAX_NODES)
    for b_value in np.unique(bp):
        idx = np.flatnonzero(bp == b_value)
        # Round up to a multiple of 32 so that the cached rules get reused.
        n = int(-(-need[idx].max() // 32) * 32)
        p, w = _beta_gauss_rule(min(n, _MAX_NODES), float(a), float(b_value))
        for chunk in np.array_split(idx, max(1, idx.size * p.size // 2_000_000 + 1)):
            g = -np.expm1(-rp[chunk, None] * np.log1p(p[None, :] * kappa[chunk, None])) / p[None, :]
            out[chunk] = (g * w).sum(axis=1)
    return out


def _mean_purchases_if_alive(rp, ap, a: float, bp, t) -> np.ndarray:
    """Return M(t) = E[purchases in the next t | alive] for Gamma(rp, ap) x Beta(a, bp)."""
    rp, ap, bp, t = (np.asarray(v, dtype=float) for v in (rp, ap, bp, t))
    rp, ap, bp, t = np.broadcast_arrays(rp, ap, bp, t)
    shape = rp.shape
    rp, ap, bp, t = (v.reshape(-1) for v in (rp, ap, bp, t))
    c = a + bp - 1.0
    with np.errstate(all="ignore"):
        z = t / (ap + t)
        hyp = special.hyp2f1(c - rp, a - 1.0, c, z)
        scaled = np.exp(-(a - 1.0) * np.log1p(t / ap)) * hyp  # (1 - z)^(a-1) 2F1(...)
        value = c / (a - 1.0) * (1.0 - scaled)
        upper = rp * t / ap  # E[lambda] * t: (1 - e^(-lambda p t)) / p <= lambda t
        # Rounding error of 1 - scaled, magnified by c / (a - 1).
        rounding = 64 * np.finfo(float).eps * np.abs(c / (a - 1.0)) * np.maximum(1.0, np.abs(scaled))
        bad = ~(np.isfinite(value) & (value >= 0) & (value <= upper * (1 + 1e-9)) & (rounding <= 1e-9 * np.abs(value)))
    value = np.where(t == 0, 0.0, value)
    bad &= t > 0
    if np.any(bad):
        value[bad] = _mean_purchases_if_alive_quadrature(rp[bad], ap[bad], a, bp[bad], t[bad])
    return value.reshape(shape)


def bgnbd_expected_purchases(fit: Any, t: Any, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """Return E[purchases in (T, T + t] | x, t_x, T], eq. 10 of Fader, Hardie & Lee (2005).

    Computed as P(alive | x, t_x, T) * E[purchases in the next t | alive],
    which is eq. 10 rearranged (see the comment above _beta_gauss_rule for
    how the hypergeometric part is kept finite).
    """
    r, alpha, a, b = _params(fit, 4, "r, alpha, a, b")
    x, t_x, T = _check_rft(x, t_x, T)
    t = np.asarray(t, dtype=float)
    if np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError("t must be finite and >= 0")
    p_alive = bgnbd_p_alive((r, alpha, a, b), x, t_x, T)
    return p_alive * _mean_purchases_if_alive(r + x, alpha + T, a, b + x, t)


def bgnbd_unconditional_expected(fit: Any, t: Any) -> np.ndarray:
    """Return E[X(t)], the expected repeat purchases in (0, t] of a new customer (eq. 7).

    E[X(t)] = (a + b - 1)/(a - 1) * [1 - (alpha/(alpha+t))^r 2F1(r, b; a+b-1; t/(alpha+t))],
    evaluated like the conditional expectation with x = 0 and T = 0.
    """
    r, alpha, a, b = _params(fit, 4, "r, alpha, a, b")
    t = np.asarray(t, dtype=float)
    if np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError("t must be finite and >= 0")
    return _mean_purchases_if_alive(r, alpha, a, b, t)


def bgnbd_prob_purchase_within(fit: Any, t: Any, x: Any, t_x: Any, T: Any) -> np.ndarray:
    """Return P(at least one purchase in (T, T + t] | x, t_x, T).

    Given alive, the wait for the next purchase is exponential with rate
    lambda (dropping out happens only after a purchase), and lambda's
    posterior is Gamma(r + x, alpha + T), so
        P = P(alive) * (1 - ((alpha + T) / (alpha + T + t))^(r + x)).
    """
    r, alpha, a, b = _params(fit, 4, "r, alpha, a, b")
    x, t_x, T = _check_rft(x, t_x, T)
    t = np.asarray(t, dtype=float)
    if np.any(t < 0) or not np.all(np.isfinite(t)):
        raise ValueError("t must be finite and >= 0")
    p_alive = bgnbd_p_alive((r, alpha, a, b), x, t_x, T)
    return p_alive * -np.expm1(-(r + x) * np.log1p(t / (alpha + T)))


def next_purchase_time(
    fit: Any,
    x: Any,
    t_x: Any,
    T: Any,
    *,
    rule: str = "probability",
    probability: float = 0.5,
    max_horizon: float = 5 * 365.25 / 7,
) -> np.ndarray:
    """Return the time after T by which the next order is due (np.inf if not within max_horizon).

    This is the "expected date of the next order" figure, and it needs a
    definition, because with some probability the customer never orders again:

    * ``rule="probability"`` (default): the time by which the chance of at
      least one more order reaches ``probability`` (0.5: "more likely than
      not to have ordered again by then").  Closed form from
      ``bgnbd_prob_purchase_within``; it is inf when P(alive) <= probability,
      i.e. when the model thinks the customer has more likely gone.
    * ``rule="expected_count"``: the time at which the expected number of
      further orders (``bgnbd_expected_purchases``) reaches 1, found by
      bisection.  It can exist even for a doubtful customer, because a small
      chance of many orders adds up; prefer the probability rule for display.

    Times are in the fit's unit (weeks by default); ``max_horizon`` is
    5 years in weeks.  Anything beyond it is reported as inf.
    """
    r, alpha, a, b = _params(fit, 4, "r, alpha, a, b")
    x, t_x, T = _check_rft(x, t_x, T)
    if not max_horizon > 0:
        raise ValueError("max_horizon must be positive")
    if rule == "probability":
        if not 0 < probability < 1:
            raise ValueError("probability must be between 0 and 1")
        p_alive = bgnbd_p_alive((r, alpha, a, b), x, t_x, T)
        with np.errstate(divide="ignore", invalid="ignore"):
            # Solve p_alive * (1 - ((alpha+T)/(alpha+T+t))^(r+x)) = probability for t.
            remaining = np.log1p(-probability / p_alive)  # log of the power term; nan if p_alive <= prob
            t = (alpha + T) * np.expm1(-remaining / (r + x))
        t = np.where(p_alive > probability, t, np.inf)
    elif rule == "expected_count":
        t = np.full(x.shape, np.inf)
        at_cap = bgnbd_expected_purchases((r, alpha, a, b), max_horizon, x, t_x, T)
        # Only customers who reach 1 within the horizon need solving for.
        todo = at_cap >= 1.0
        xs, txs, Ts = x[todo], t_x[todo], T[todo]
        # Bisection on log t (the expectation increases with t), from
        # max_horizon * 1e-12 up: 45 halvings pin t down to ~1e-12 relative.
        lo = np.full(xs.shape, math.log(max_horizon) - 12 * math.log(10))
        hi = np.full(xs.shape, math.log(max_horizon))
        for _ in range(45):
            mid = (lo + hi) / 2
            above = bgnbd_expected_purchases((r, alpha, a, b), np.exp(mid), xs, txs, Ts) >= 1.0
            hi = np.where(above, mid, hi)
            lo = np.where(above, lo, mid)
        t[todo] = np.exp(hi)
    else:
        raise ValueError('rule must be "probability" or "expected_count"')
    return np.where(t <= max_horizon, t, np.inf)
