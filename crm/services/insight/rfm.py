"""RFM scores and segments: quintile scores for recency, frequency and money, and the segment grid."""
from __future__ import annotations

from typing import Any

import numpy as np

# --------------------------------------------------------------------------
# RFM
# --------------------------------------------------------------------------

# SEGMENTS and SEGMENT_LABELS live in crm.services.insight.rfm_names (no numpy there, for the pages).

# Segment by R (rows, 5 = most recent) against FM, the mean of the F and M
# scores rounded half up ((f + m + 1) // 2), so FM is again 1..5.
#
#            FM=1          FM=2          FM=3                 FM=4       FM=5
#   R=5      new           new           potential_loyalists  champions  champions
#   R=4      new           new           potential_loyalists  loyal      champions
#   R=3      hibernating   hibernating   potential_loyalists  loyal      loyal
#   R=2      hibernating   hibernating   at_risk              at_risk    cant_lose
#   R=1      lost          lost          at_risk              at_risk    cant_lose
#
# Everyone in the middle (3, 3, 3) -- which is what all customers get when
# they cannot be told apart -- lands in "potential_loyalists", the neutral cell.
_SEGMENT_GRID: tuple[tuple[str, ...], ...] = (
    # index [R - 1][FM - 1]
    ("lost", "lost", "at_risk", "at_risk", "cant_lose"),
    ("hibernating", "hibernating", "at_risk", "at_risk", "cant_lose"),
    ("hibernating", "hibernating", "potential_loyalists", "loyal", "loyal"),
    ("new", "new", "potential_loyalists", "loyal", "champions"),
    ("new", "new", "potential_loyalists", "champions", "champions"),
)
_SEGMENT_GRID_ARRAY = np.array(_SEGMENT_GRID, dtype=object)


def _quintile_scores(values: np.ndarray) -> np.ndarray:
    """Return scores 1..5 by mid-rank percentile; equal values get equal scores.

    A value's percentile is (average rank - 1/2) / n, the midpoint of the
    share of customers it ties with; the score is 1 + floor(5 * percentile).
    With many distinct values this is ordinary quintiles; ties always share a
    score; a lone customer (or everyone tied) sits at the 50th percentile and
    gets 3 -- a middle score rather than a pretend best or worst.  The top
    customer gets a 5 once there are at least 3 customers.
    """
    n = values.size
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    _, inverse, counts = np.unique(values, return_inverse=True, return_counts=True)
    start = np.cumsum(counts) - counts  # number of customers strictly below
    # 5 * (start + counts / 2) / n, in integers so boundaries are exact.
    scores = (5 * (2 * start + counts)) // (2 * n) + 1
    return np.minimum(scores, 5)[inverse].astype(np.int64)


def _as_finite_1d(name: str, values: Any) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1:
        arr = arr.reshape(-1)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite numbers")
    return arr


def rfm_scores(
    recency_days: Any, frequency: Any, monetary: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return (r, f, m) integer arrays of quintile scores 1..5, 5 being best.

    ``recency_days`` is the time since the last purchase (smaller is better,
    so the most recent buyers get R = 5); ``frequency`` and ``monetary`` are
    larger-is-better.  Scores are relative to the customers passed in: see
    ``_quintile_scores`` for the tie and small-sample rule.  From a
    PurchaseSummary: ``recency_days``, ``x + 1`` (purchase days) and
    ``total_amount``.
    """
    rec = _as_finite_1d("recency_days", recency_days)
    freq = _as_finite_1d("frequency", frequency)
    mon = _as_finite_1d("monetary", monetary)
    if not (rec.size == freq.size == mon.size):
        raise ValueError("recency_days, frequency and monetary must have the same length")
    return _quintile_scores(-rec), _quintile_scores(freq), _quintile_scores(mon)


def _check_score(name: str, arr: np.ndarray) -> np.ndarray:
    arr = np.asarray(arr)
    as_int = arr.astype(np.int64)
    if np.any(as_int != arr) or np.any(as_int < 1) or np.any(as_int > 5):
        raise ValueError(f"{name} scores must be integers from 1 to 5")
    return as_int


def rfm_segments(r: Any, f: Any, m: Any) -> np.ndarray:
    """Return an array of segment keys (see SEGMENTS) for arrays of R, F, M scores."""
    r_ = _check_score("r", np.asarray(r))
    f_ = _check_score("f", np.asarray(f))
    m_ = _check_score("m", np.asarray(m))
    fm = (f_ + m_ + 1) // 2  # mean of F and M, halves rounded up
    return _SEGMENT_GRID_ARRAY[r_ - 1, fm - 1]


def rfm_segment(r: int, f: int, m: int) -> str:
    """Return the segment key (one of SEGMENTS) for one customer's R, F, M scores."""
    return str(rfm_segments(r, f, m))
