"""Predictions on the database: RFM segments, BG/NBD and Gamma-Gamma figures for every customer.

`run` reads every customer's paid orders in one streaming query, summarises them per
customer (crm.services.insight), fits the purchase model (BG/NBD) and the spend
model (Gamma-Gamma), and writes per customer, in bulk UPDATEs of about a thousand rows:

* RFM: recency, frequency and monetary quintile scores 1..5 and the segment. They need
  no fit, so every customer gets them whenever there is at least one customer;
* from the purchase model: ``p_alive`` (how likely they still buy), ``expected_orders_90d``
  and ``next_order_expected_at`` (when they are more likely than not to have ordered again;
  NULL when that is more than five years away or the model thinks they have more likely gone);
* from both models: ``predicted_value_12m``, the expected revenue of the next 52 weeks.

Honesty rules. A figure is stored only when the model behind it was fitted on enough data
and converged; otherwise its column is NULL for everyone and the reason is kept in words
(the `predict.last_run` setting, which the dashboard and the contact page read). The purchase
figures need only BG/NBD, so a shop with too few repeat orders *with an amount* still gets
them, just not the predicted value. Two model facts shape what is stored:

* BG/NBD lets a customer drop out only right after a repeat purchase, so it puts P(alive)
  at exactly 1 for everyone who bought on one day only. That is an artefact, not a finding:
  their ``p_alive`` stays NULL (health judges them by recency, as it always did). Their
  expected orders and next order date are real model output (the purchase-rate part) and
  are stored.
* Gamma-Gamma's expected spend for a customer without repeat orders is the population
  mean order value, a legitimate estimate (the best guess for someone we know nothing
  specific about), so one-time buyers do get a predicted value. Only when the fit has
  q <= 1 (no finite population mean) is it NULL for them.

Both fits carry a weak prior (``PENALIZER`` = predict_models.PRIOR_WEIGHT, 0.25) on the
*total* log-likelihood: a normal prior on the log-parameters, centred on a neutral shape at
the shop's own scale, whose pull is that of a handful of customers. Unpenalised, a quarter to
half of the simulated small shops (BG/NBD 50-200 customers, Gamma-Gamma 10-30 repeat
customers) ran off to implausible parameters; with the prior all converged. Because it does
not grow with the data, it fades as a shop grows: at 20,000 customers the estimates are
within ~0.4% of the maximum-likelihood ones (the old penalty, added to the *mean*
log-likelihood, kept Gamma-Gamma's population mean order value 6-9% high at every size).

Time is a parameter (`as_of`), so `crm predict --as-of` and tests can predict as at any
date; only orders placed on or before it count. Nothing here commits: the caller does,
once, or per written batch through `progress`.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from itertools import chain
from typing import Any

import numpy as np
from sqlalchemy import Date, Float, Integer, bindparam, cast, exists, func, or_, select, update

from crm.database import plain_rows
from crm.extensions import db
from crm.models import PAID_STATUSES, Contact, Order, Setting, utcnow
from crm.services.insight.bgnbd import (
    BgNbdFit,
    bgnbd_expected_purchases,
    bgnbd_p_alive,
    fit_bgnbd,
    next_purchase_time,
)
from crm.services.insight.fitting import PRIOR_WEIGHT
from crm.services.insight.gamma_gamma import GammaGammaFit, fit_gamma_gamma, predicted_value
from crm.services.insight.predict_status import LAST_RUN_KEY
from crm.services.insight.purchases import PurchaseSummary, summarise_purchases
from crm.services.insight.rfm import rfm_scores, rfm_segments
from crm.services.insight.sufficiency import data_sufficiency
from crm.services.shared.bounds import latest_moment, shifted
from crm.services.shared.said import N_, Number, said, sentences
from crm.services.shared.said import to_json as said_json
from crm.services.shared.wording import require_aware

PENALIZER = PRIOR_WEIGHT  # the prior's weight on the total log-likelihood
WEEK_DAYS = 7.0
HORIZON_90_DAYS = 90 / WEEK_DAYS  # in weeks, the models' unit
HORIZON_12_MONTHS = 52.0  # weeks
BATCH = 1000
READ_CHUNK = 50_000
# Below this many customers the totals are rough (predict_models.data_sufficiency: with 100
# customers the predicted total of next-half-year orders was off by a median 20%).
SMALL_SHOP = 200
# SQLite's julianday() of 1970-01-01 00:00 UTC, to turn its dates into day numbers.
_UNIX_EPOCH_JULIAN_DAY = 2440587.5

PREDICTION_COLUMNS = ("p_alive", "expected_orders_90d", "predicted_value_12m", "next_order_expected_at")
RFM_COLUMNS = ("rfm_recency", "rfm_frequency", "rfm_monetary", "rfm_segment")
COLUMNS = RFM_COLUMNS + PREDICTION_COLUMNS

Progress = Callable[[int], None]


@dataclass
class PredictionRun:
    """What one run found and stored, for the CLI, the settings page and the dashboard."""

    as_of: datetime
    customers: int = 0  # with a paid order on or before as_of (erased ones left out)
    repeat_customers: int = 0  # who bought on at least two different days
    spend_customers: int = 0  # repeat customers whose repeat orders have a positive amount
    orders: int = 0
    bgnbd: BgNbdFit | None = None
    gamma_gamma: GammaGammaFit | None = None
    purchases_predicted: bool = False  # p_alive, expected orders and next order stored
    values_predicted: bool = False  # predicted_value_12m stored
    messages: list[str] = field(default_factory=list)  # why figures are missing, in words
    caution: str | None = None  # how far to trust the figures that are there

    @property
    def message(self) -> str:
        return sentences(*self.messages) if self.messages else ""

    def as_json(self) -> dict[str, Any]:
        """Return the `crm predict --json` answer: parameters, or nulls and the reason."""
        bg = self.bgnbd if self.purchases_predicted else None
        gg = self.gamma_gamma if self.values_predicted else None
        answer: dict[str, Any] = {
            "as_of": self.as_of.isoformat(),
            "customers": self.customers,
            "bgnbd": {
                "r": _number(bg.r) if bg else None, "alpha": _number(bg.alpha) if bg else None,
                "a": _number(bg.a) if bg else None, "b": _number(bg.b) if bg else None,
                "log_likelihood": _number(bg.log_likelihood) if bg else None,
            },
            "gamma_gamma": {
                "p": _number(gg.p) if gg else None, "q": _number(gg.q) if gg else None,
                "v": _number(gg.v) if gg else None, "customers": self.spend_customers,
            },
        }
        if self.messages:
            answer["message"] = self.message
        return answer

    def as_setting(self) -> dict[str, Any]:
        """Return what is kept in the `predict.last_run` setting (JSON: no NaN, no wall-clock time,
        so a second run at the same `as_of` stores the same value)."""
        return {
            "as_of": self.as_of.isoformat(),
            "customers": self.customers,
            "repeat_customers": self.repeat_customers,
            "spend_customers": self.spend_customers,
            "orders": self.orders,
            "purchases_predicted": self.purchases_predicted,
            "values_predicted": self.values_predicted,
            "penalizer": PENALIZER,
            "bgnbd": None if self.bgnbd is None else {
                "r": _number(self.bgnbd.r), "alpha": _number(self.bgnbd.alpha),
                "a": _number(self.bgnbd.a), "b": _number(self.bgnbd.b),
                "log_likelihood": _number(self.bgnbd.log_likelihood),
                "converged": self.bgnbd.converged, "message": self.bgnbd.message,
                "customers": self.bgnbd.n_customers,
            },
            "gamma_gamma": None if self.gamma_gamma is None else {
                "p": _number(self.gamma_gamma.p), "q": _number(self.gamma_gamma.q),
                "v": _number(self.gamma_gamma.v),
                "log_likelihood": _number(self.gamma_gamma.log_likelihood),
                "converged": self.gamma_gamma.converged, "message": self.gamma_gamma.message,
                "customers": self.gamma_gamma.n_customers,
            },
            "messages": [str(message) for message in self.messages],
            "caution": None if self.caution is None else str(self.caution),
            # The same words with their keys and values: the pages show them in the reader's language.
            "said": {"messages": [said_json(message) for message in self.messages],
                     "caution": said_json(self.caution)},
        }

    def headline(self) -> str:
        """Return one line on what was stored: for `crm refresh` and the settings page (a Said: the
        jobs page shows it in the reader's language)."""
        customers = Number(self.customers)
        if self.purchases_predicted:
            line = said(N_("RFM segments and predictions for %(customers)s customers."), customers=customers) \
                if self.values_predicted else said(N_("RFM segments and purchase predictions (no predicted values) "
                                                      "for %(customers)s customers."), customers=customers)
            return sentences(line, *self.messages)
        if self.customers:
            return sentences(said(N_("RFM segments for %(customers)s customers."), customers=customers),
                             *self.messages)
        return self.message

    def __str__(self) -> str:
        lines = [(f"Predictions as of {self.as_of:%Y-%m-%d %H:%M} UTC: {self.customers:,} customers "
                  f"({self.repeat_customers:,} bought again), {self.orders:,} paid orders.")]
        if self.customers:
            lines.append(f"RFM segments stored for all {self.customers:,} customers.")
        if self.purchases_predicted and self.bgnbd is not None:
            bg = self.bgnbd
            lines.append(f"Purchase model (BG/NBD): r={bg.r:.4g} alpha={bg.alpha:.4g} a={bg.a:.4g} b={bg.b:.4g}, "
                         f"log-likelihood {bg.log_likelihood:,.1f}.")
        if self.values_predicted and self.gamma_gamma is not None:
            gg = self.gamma_gamma
            lines.append(f"Spend model (Gamma-Gamma): p={gg.p:.4g} q={gg.q:.4g} v={gg.v:.4g}, "
                         f"from {gg.n_customers:,} repeat customers.")
        if self.messages:
            lines.append("No figures shown where the models could not be trusted: " + self.message)
        if self.caution:
            lines.append(self.caution)
        return "\n".join(lines)


def _number(value: float) -> float | None:
    """Return a float for JSON: None for NaN or infinity (which JSON has no words for)."""
    return float(value) if value is not None and math.isfinite(value) else None


# -- reading -----------------------------------------------------------------------------------


def _day_number(column):
    """Return SQL for the UTC calendar day of a timestamp column, as days since 1970-01-01."""
    if db.engine.dialect.name == "postgresql":
        return cast(cast(func.timezone("UTC", column), Date) - cast("1970-01-01", Date), Integer)
    # SQLite stores UTC text; julianday of its date is a whole day plus one half. (Not the
    # floor of julianday(column): that rounds to the millisecond, so 23:59:59.9995 is the next day.)
    return cast(func.julianday(func.date(column)) - _UNIX_EPOCH_JULIAN_DAY, Integer)


@dataclass
class _Purchases:
    """Paid orders sorted by contact, then day, then id: a contact's orders lie together, by day."""

    contact_ids: np.ndarray  # int64
    days: np.ndarray  # datetime64[D], UTC calendar days
    amounts: np.ndarray  # float: total less refunds


def read_purchases(as_of: datetime) -> _Purchases:
    """Return every paid order on or before `as_of` of contacts not erased, as numpy arrays.

    One query, streamed in chunks and unordered (sorting a million rows cost the database twice
    the rest of the read); numpy then sorts the orders by contact, day and id, so a day's amounts
    are added in the same order on every run and either database. The day and the amount are
    computed by the database (a day number and a float), so no Python datetime or Decimal is made
    per order.
    """
    statement = (
        select(Order.contact_id, Order.id, _day_number(Order.placed_at), cast(Order.total - Order.refunded, Float))
        .where(Order.status.in_(PAID_STATUSES), Order.placed_at <= as_of)
    )
    chunks = [np.fromiter(chain.from_iterable(rows), dtype=float, count=4 * len(rows)).reshape(-1, 4)
              for rows in plain_rows(db.session, statement, READ_CHUNK)]
    table = np.concatenate(chunks) if chunks else np.zeros((0, 4))
    del chunks
    table = table[np.lexsort((table[:, 1], table[:, 2], table[:, 0]))]
    erased = np.fromiter(db.session.scalars(select(Contact.id).where(Contact.erased_at.is_not(None))), dtype=np.int64)
    ids = table[:, 0].astype(np.int64)
    keep = ~np.isin(ids, erased)
    return _Purchases(
        contact_ids=ids[keep],
        days=table[keep, 2].astype(np.int64).astype("datetime64[D]"),
        amounts=np.nan_to_num(table[keep, 3]),
    )


# -- fitting -----------------------------------------------------------------------------------


def _fit(summary: PurchaseSummary, result: PredictionRun) -> None:
    """Fit both models when the data allow it; record in `result` what can be shown and why not."""
    result.customers = len(summary)
    result.repeat_customers = int(np.count_nonzero(summary.x > 0))
    result.spend_customers = int(np.count_nonzero((summary.x > 0) & (summary.monetary_value > 0)))
    if not result.customers:
        result.messages.append(said(N_("Nobody has bought anything yet, so there is nothing to segment or predict.")))
        return
    # Purchases first, on their own: while they fall short, the spend reasons only repeat them.
    enough = data_sufficiency(summary.x, summary.t_x, summary.T, unit_days=WEEK_DAYS, min_spend_customers=0)
    if not enough.purchases_ok:
        result.messages.append(said(N_("No predictions yet (%(repeat)s of %(customers)s customers bought again): "
                                       "%(why)s"), repeat=Number(result.repeat_customers),
                                    customers=Number(result.customers), why=enough.message))
        return
    result.bgnbd = fit_bgnbd(summary.x, summary.t_x, summary.T, penalizer=PENALIZER)
    if not result.bgnbd.converged:
        result.messages.append(said(N_("No predictions: the purchase model could not be fitted to this shop's "
                                       "orders (%(why)s)."), why=str(result.bgnbd.message)))
        return
    result.purchases_predicted = True
    enough = data_sufficiency(summary.x, summary.t_x, summary.T, summary.monetary_value, unit_days=WEEK_DAYS)
    if not enough.spend_ok:
        result.messages.append(said(N_("No predicted values yet: %(why)s"), why=enough.message))
    else:
        result.gamma_gamma = fit_gamma_gamma(summary.x, summary.monetary_value, penalizer=PENALIZER)
        if not result.gamma_gamma.converged:
            result.messages.append(said(N_("No predicted values: the spend model could not be fitted to this "
                                           "shop's order values (%(why)s)."), why=str(result.gamma_gamma.message)))
        else:
            result.values_predicted = True
    if result.customers < SMALL_SHOP:
        result.caution = said(N_("With %(customers)s customers the predictions are rough: in simulated shops of "
                                 "this size the predicted orders of the next half-year were off by 20-30%% "
                                 "(sometimes 60%%)."), customers=Number(result.customers))


# -- writing -----------------------------------------------------------------------------------


def _rows(summary: PurchaseSummary, result: PredictionRun) -> list[dict[str, Any]]:
    """Return one UPDATE parameter set per customer: RFM always, predictions where they are honest."""
    r, f, m = rfm_scores(summary.recency_days, summary.x + 1, summary.total_amount)
    segments = rfm_segments(r, f, m).tolist()
    n = len(summary)
    nothing = [None] * n
    p_alive, expected, value, next_at = nothing, nothing, nothing, nothing
    x, t_x, T = summary.x, summary.t_x, summary.T
    if result.purchases_predicted and result.bgnbd is not None:
        bg = result.bgnbd
        alive = bgnbd_p_alive(bg, x, t_x, T)
        p_alive = [None if one_day else float(p) for one_day, p in zip((x == 0).tolist(), alive.tolist())]
        expected = bgnbd_expected_purchases(bg, HORIZON_90_DAYS, x, t_x, T).tolist()
        weeks = next_purchase_time(bg, x, t_x, T)
        start = result.as_of.replace(microsecond=0)
        # A prediction further out than the dates a record may carry is no prediction: None.
        latest = latest_moment(start)
        next_at = [None if not math.isfinite(w) or w * WEEK_DAYS > (latest - start).days
                   else shifted(start, timedelta(seconds=round(w * WEEK_DAYS * 86400)))
                   for w in weeks.tolist()]
        if result.values_predicted and result.gamma_gamma is not None:
            amounts = predicted_value(bg, result.gamma_gamma, x, t_x, T, summary.monetary_value,
                                             HORIZON_12_MONTHS)
            value = [Decimal(f"{v:.2f}") if math.isfinite(v) else None for v in amounts.tolist()]
    return [
        {"contact_id": cid, "rfm_recency": rs, "rfm_frequency": fs, "rfm_monetary": ms, "rfm_segment": seg,
         "p_alive": pa, "expected_orders_90d": eo, "predicted_value_12m": pv, "next_order_expected_at": na}
        for cid, rs, fs, ms, seg, pa, eo, pv, na in zip(
            summary.customer_id.tolist(), r.tolist(), f.tolist(), m.tolist(), segments,
            p_alive, expected, value, next_at)
    ]


def _clear_the_others(as_of: datetime) -> None:
    """Blank RFM and predictions of every contact that is not a customer at `as_of` (one UPDATE)."""
    bought = exists().where(Order.contact_id == Contact.id, Order.status.in_(PAID_STATUSES),
                            Order.placed_at <= as_of)
    db.session.execute(
        update(Contact)
        .where(or_(Contact.erased_at.is_not(None), ~bought),
               or_(*(getattr(Contact, name).is_not(None) for name in COLUMNS)))
        .values({**{name: None for name in COLUMNS}, "updated_at": Contact.updated_at})
        .execution_options(synchronize_session=False)
    )


def _write(rows: list[dict[str, Any]], progress: Progress | None) -> None:
    """UPDATE the customers by primary key, BATCH rows per executemany."""
    contacts = Contact.__table__
    # A derived figure is not an edit: updated_at is set to itself, so its onupdate stays out.
    # Core, not the ORM's update(Contact) with a list: with that SQL expression among the
    # values the ORM sends one statement per row, ten times slower.
    statement = (
        update(contacts).where(contacts.c.id == bindparam("contact_id"))
        .values(updated_at=contacts.c.updated_at)
    )  # the other columns' SET comes from the keys of the parameter rows
    for start in range(0, len(rows), BATCH):
        batch = rows[start:start + BATCH]
        db.session.execute(statement, batch)
        if progress is not None:
            progress(len(batch))


def _expire_loaded_contacts() -> None:
    """Expire the columns written here on contacts this session has loaded, so they read afresh."""
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Contact):
            db.session.expire(obj, list(COLUMNS))


def _keep(result: PredictionRun) -> None:
    value = result.as_setting()
    row = db.session.get(Setting, LAST_RUN_KEY)
    if row is None:
        db.session.add(Setting(key=LAST_RUN_KEY, value=value))
    elif row.value != value:
        row.value = value


# -- the run -------------------------------------------------------------------------------------


@dataclass
class PreparedPrediction:
    """What was read and fitted, ready to be stored."""

    summary: PurchaseSummary
    result: PredictionRun


def prepare(as_of: datetime | None = None) -> PreparedPrediction:
    """Return every customer's purchase summary and the fitted models at `as_of` (default now).

    Reads only: a caller can run it in a read transaction and store it in a short write one.
    """
    as_of = require_aware(as_of or utcnow(), "as_of")
    purchases = read_purchases(as_of)
    result = PredictionRun(as_of=as_of, orders=int(purchases.contact_ids.size))
    summary = summarise_purchases(purchases.contact_ids, purchases.days, purchases.amounts,
                                         np.datetime64(as_of.date(), "D"), unit_days=WEEK_DAYS)
    _fit(summary, result)
    return PreparedPrediction(summary, result)


def store(prepared: PreparedPrediction, progress: Progress | None = None) -> PredictionRun:
    """Return the run, after writing every customer's figures, blanking everyone else's and keeping
    the run's summary (`predict.last_run`). `progress(n)` is called after each batch of n customers."""
    result = prepared.result
    _clear_the_others(result.as_of)
    _write(_rows(prepared.summary, result), progress)
    _keep(result)
    _expire_loaded_contacts()
    return result


def run(as_of: datetime | None = None, progress: Progress | None = None) -> PredictionRun:
    """Return what a prediction run at `as_of` (default now) found, after storing every customer's
    RFM segment and predictions and the run's summary (`predict.last_run`).

    `progress(n)` is called after each written batch of n customers (the CLI commits there).
    Running it twice at the same `as_of` leaves the same database. The dashboard's stored medians
    (summaries.store_medians) follow the new predictions and the spend as it is now.
    """
    from crm.services.insight import summaries

    found = store(prepare(as_of), progress)
    summaries.store_medians()
    return found
