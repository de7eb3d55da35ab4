"""How well the purchase model predicts this shop: a holdout check, as in the BG/NBD paper.

The history up to a cut-off (by default the last quarter of it is held out) is the
calibration period: the models are fitted on it exactly as `crm predict` fits them on the
whole history. The held-out weeks then show what the model could not have seen:

* by the number of repeat purchases in the calibration period (0, 1, …, 7+), the mean
  predicted and the mean actual repeat purchases per customer in the holdout (the paper's
  "conditional expectations" figure);
* week by week, the predicted and actual cumulative repeat purchases of the calibration
  customers over the whole history (the paper's "tracking" figure): predicted from each
  customer's first purchase on with the unconditional expectation E[X(t)];
* the mean absolute error per customer of the holdout predictions.

Purchases are counted as `crm predict` counts them (paid orders, one per customer and UTC
day, erased customers left out); nothing after the as-of counts. One streaming read, then
numpy; nothing is written.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

import numpy as np

from crm.models import utcnow
from crm.services.insight import predict
from crm.services.insight.bgnbd import BgNbdFit, bgnbd_expected_purchases, bgnbd_unconditional_expected, fit_bgnbd
from crm.services.insight.gamma_gamma import GammaGammaFit, fit_gamma_gamma
from crm.services.insight.purchases import PurchaseSummary, summarise_purchases
from crm.services.insight.sufficiency import data_sufficiency
from crm.services.shared.wording import require_aware

WEEK_DAYS = 7
FREQUENCY_GROUPS = 8  # 0, 1, …, 6 and 7+
MIN_HOLDOUT_WEEKS = 1


@dataclass
class FrequencyRow:
    repeat_purchases: str  # "0" … "6", "7+"
    customers: int
    predicted: float  # mean predicted repeat purchases per customer in the holdout
    actual: float  # mean actual


@dataclass
class WeekRow:
    week: int  # weeks since the first purchase in the data (1 = the end of the first week)
    ends: date
    predicted: float  # cumulative repeat purchases by the end of the week
    actual: int
    holdout: bool  # the week lies after the cut-off


@dataclass
class ModelCheck:
    as_of: datetime
    cutoff: date | None = None
    holdout_weeks: int = 0
    history_weeks: float = 0.0
    customers: int = 0  # calibration customers (first purchase by the cut-off)
    repeat_customers: int = 0  # of them, who bought again by the cut-off
    all_customers: int = 0  # customers by the as-of
    all_repeat_customers: int = 0
    bgnbd: BgNbdFit | None = None
    gamma_gamma: GammaGammaFit | None = None
    by_frequency: list[FrequencyRow] = field(default_factory=list)
    weeks: list[WeekRow] = field(default_factory=list)
    predicted_holdout: float = 0.0  # total repeat purchases in the holdout, predicted
    actual_holdout: int = 0
    mean_absolute_error: float | None = None  # per customer, in the holdout
    message: str | None = None  # why there is no check, in words

    @property
    def ok(self) -> bool:
        return self.message is None

    @property
    def highest_frequency_value(self) -> float:
        return max((max(r.predicted, r.actual) for r in self.by_frequency), default=0.0)

    @property
    def highest_week_value(self) -> float:
        return max((max(w.predicted, w.actual) for w in self.weeks), default=0.0)

    def as_json(self) -> dict[str, Any]:
        """Return the figures for `crm predict --holdout-weeks N --json` (no NaN: JSON has none)."""
        def number(value):
            return None if value is None or not math.isfinite(value) else round(float(value), 6)

        bg, gg = self.bgnbd, self.gamma_gamma
        return {
            "as_of": self.as_of.isoformat(),
            "cutoff": self.cutoff.isoformat() if self.cutoff else None,
            "holdout_weeks": self.holdout_weeks,
            "customers": self.customers,
            "repeat_customers": self.repeat_customers,
            "bgnbd": None if bg is None else {
                "r": number(bg.r), "alpha": number(bg.alpha), "a": number(bg.a), "b": number(bg.b),
                "log_likelihood": number(bg.log_likelihood), "converged": bg.converged},
            "gamma_gamma": None if gg is None else {
                "p": number(gg.p), "q": number(gg.q), "v": number(gg.v),
                "log_likelihood": number(gg.log_likelihood), "converged": gg.converged,
                "customers": gg.n_customers},
            "by_frequency": [
                {"repeat_purchases": r.repeat_purchases, "customers": r.customers,
                 "predicted": number(r.predicted), "actual": number(r.actual)} for r in self.by_frequency],
            "weekly_cumulative": [
                {"week": w.week, "ends": w.ends.isoformat(), "predicted": number(w.predicted), "actual": w.actual,
                 "holdout": w.holdout} for w in self.weeks],
            "holdout_repeat_purchases": {"predicted": number(self.predicted_holdout), "actual": self.actual_holdout},
            "mean_absolute_error": number(self.mean_absolute_error),
            "message": self.message,
        }


def default_holdout_weeks(history_days: int) -> int:
    """Return the last quarter of a history of `history_days`, in whole weeks (at least one)."""
    return max(MIN_HOLDOUT_WEEKS, round(history_days / 4 / WEEK_DAYS))


def check(as_of: datetime | None = None, holdout_weeks: int | None = None) -> ModelCheck:
    """Return the holdout check at `as_of` (default now), holding out `holdout_weeks` (default: the
    last quarter of the history). Never raises for thin data: `message` says why there is no check.
    """
    as_of = require_aware(as_of or utcnow(), "as_of")
    if holdout_weeks is not None and holdout_weeks < MIN_HOLDOUT_WEEKS:
        raise ValueError("holdout weeks must be at least 1")
    result = ModelCheck(as_of=as_of)
    purchases = predict.read_purchases(as_of)
    end_day = np.datetime64(as_of.date(), "D")
    if purchases.contact_ids.size == 0:
        result.message = "Nobody has bought anything yet, so there is nothing to check."
        return result
    everyone = summarise_purchases(purchases.contact_ids, purchases.days, purchases.amounts, end_day,
                                          unit_days=WEEK_DAYS)
    result.all_customers = len(everyone)
    result.all_repeat_customers = int(np.count_nonzero(everyone.x > 0))
    start_day = purchases.days.min()
    history_days = int((end_day - start_day).astype(int))
    result.history_weeks = history_days / WEEK_DAYS
    weeks = holdout_weeks if holdout_weeks is not None else default_holdout_weeks(history_days)
    result.holdout_weeks = weeks
    cutoff = end_day - np.timedelta64(weeks * WEEK_DAYS, "D")
    result.cutoff = cutoff.astype(object)
    if cutoff <= start_day:
        result.message = (f"The history covers only {history_days} days, so holding out {weeks} weeks leaves "
                          "nothing to fit on. Choose fewer weeks.")
        return result

    calibration = purchases.days <= cutoff
    summary = summarise_purchases(purchases.contact_ids[calibration], purchases.days[calibration],
                                         purchases.amounts[calibration], cutoff, unit_days=WEEK_DAYS)
    result.customers = len(summary)
    result.repeat_customers = int(np.count_nonzero(summary.x > 0))
    enough = data_sufficiency(summary.x, summary.t_x, summary.T, unit_days=WEEK_DAYS, min_spend_customers=0)
    if not enough.purchases_ok:
        result.message = f"Not enough history before the cut-off ({result.cutoff:%d %b %Y}) to fit: {enough.message}"
        return result
    fit = fit_bgnbd(summary.x, summary.t_x, summary.T, penalizer=predict.PENALIZER)
    result.bgnbd = fit
    if not fit.converged:
        result.message = f"The purchase model could not be fitted to the orders before the cut-off ({fit.message})."
        return result
    if data_sufficiency(summary.x, summary.t_x, summary.T, summary.monetary_value, unit_days=WEEK_DAYS).spend_ok:
        result.gamma_gamma = fit_gamma_gamma(summary.x, summary.monetary_value, penalizer=predict.PENALIZER)

    # Actual repeat purchases in the holdout: distinct purchase days after the cut-off, per
    # calibration customer (everyone's first purchase lies before it). The orders come sorted by
    # contact and time, so a customer's purchase day starts where the contact or the day changes.
    ids, days = purchases.contact_ids, purchases.days
    new_day = np.r_[True, (ids[1:] != ids[:-1]) | (days[1:] != days[:-1])]
    held = new_day & ~calibration
    index = np.searchsorted(summary.customer_id, ids[held])
    index = np.minimum(index, max(len(summary) - 1, 0))
    known = summary.customer_id[index] == ids[held]
    actual = np.bincount(index[known], minlength=len(summary))
    horizon = weeks * 1.0
    predicted = bgnbd_expected_purchases(fit, horizon, summary.x, summary.t_x, summary.T)
    result.predicted_holdout = float(predicted.sum())
    result.actual_holdout = int(actual.sum())
    result.mean_absolute_error = float(np.mean(np.abs(predicted - actual)))

    group = np.minimum(summary.x, FREQUENCY_GROUPS - 1).astype(np.int64)
    counts = np.bincount(group, minlength=FREQUENCY_GROUPS)
    predicted_sum = np.bincount(group, weights=predicted, minlength=FREQUENCY_GROUPS)
    actual_sum = np.bincount(group, weights=actual, minlength=FREQUENCY_GROUPS)
    for k in range(FREQUENCY_GROUPS):
        if counts[k]:
            label = f"{k}+" if k == FREQUENCY_GROUPS - 1 else str(k)
            result.by_frequency.append(FrequencyRow(label, int(counts[k]), float(predicted_sum[k] / counts[k]),
                                                    float(actual_sum[k] / counts[k])))

    result.weeks = _tracking(purchases, summary, fit, start_day, cutoff, end_day)
    return result


def _tracking(purchases, summary: PurchaseSummary, fit: BgNbdFit, start_day, cutoff, end_day) -> list[WeekRow]:
    """Return week by week the predicted and actual cumulative repeat purchases of the calibration customers.

    Predicted: the sum over customers of E[X(t)] from their first purchase day, computed once on
    a grid of days and convolved with the number of customers who started on each day.
    """
    days = int((end_day - start_day).astype(int))
    cutoff_day = int((cutoff - start_day).astype(int))
    first = (summary.first_purchase - start_day).astype(np.int64)
    starters = np.bincount(first, minlength=days + 1).astype(float)
    curve = bgnbd_unconditional_expected(fit, np.arange(days + 1) / WEEK_DAYS)
    expected = np.convolve(starters, curve)[: days + 1]  # expected cumulative repeat purchases by each day

    # Actual: every purchase day of a calibration customer (one whose first purchase lies
    # before the cut-off) after their first one; the orders come sorted by contact and time.
    ids, purchase_days = purchases.contact_ids, (purchases.days - start_day).astype(np.int64)
    new_customer = np.r_[True, ids[1:] != ids[:-1]]
    new_day = new_customer | np.r_[True, purchase_days[1:] != purchase_days[:-1]]
    calibration_customer = np.repeat(purchase_days[new_customer] <= cutoff_day,
                                     np.diff(np.r_[np.flatnonzero(new_customer), ids.size]))
    repeat_days = purchase_days[new_day & ~new_customer & calibration_customer]
    per_day = np.bincount(repeat_days, minlength=days + 1)
    actual = np.cumsum(per_day)

    rows = []
    week_ends = list(range(WEEK_DAYS - 1, days + 1, WEEK_DAYS))
    if not week_ends or week_ends[-1] != days:
        week_ends.append(days)
    start = start_day.astype(object)
    for n, day in enumerate(week_ends, start=1):
        rows.append(WeekRow(week=n, ends=start + timedelta(days=day), predicted=float(expected[day]),
                            actual=int(actual[day]), holdout=day > cutoff_day))
    return rows


def describe(result: ModelCheck) -> str:
    """Return the check in words, for `crm predict --holdout-weeks N`."""
    if not result.ok:
        return f"Model check as of {result.as_of:%Y-%m-%d %H:%M} UTC: {result.message}"
    bg = result.bgnbd
    lines = [
        f"Model check as of {result.as_of:%Y-%m-%d %H:%M} UTC: fitted on the orders up to {result.cutoff:%Y-%m-%d}, "
        f"{result.holdout_weeks} weeks held out.",
        f"Calibration: {result.customers:,} customers, {result.repeat_customers:,} bought again. "
        f"BG/NBD r={bg.r:.4g} alpha={bg.alpha:.4g} a={bg.a:.4g} b={bg.b:.4g}, log-likelihood {bg.log_likelihood:,.1f}.",
        f"Repeat purchases in the holdout: predicted {result.predicted_holdout:,.1f}, actual {result.actual_holdout:,}; "
        f"mean absolute error per customer {result.mean_absolute_error:.3f}.",
        "Repeat purchases before the cut-off | customers | predicted per customer | actual per customer",
    ]
    lines += [f"{row.repeat_purchases:>3} | {row.customers:,} | {row.predicted:.3f} | {row.actual:.3f}"
              for row in result.by_frequency]
    return "\n".join(lines)
