"""Each customer's purchase history summarised as the models read it: frequency, recency, age and mean spend."""
from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from typing import Any

import numpy as np

# --------------------------------------------------------------------------
# Summary from raw purchases
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class PurchaseSummary:
    """Per-customer summary of purchases, all arrays aligned on ``customer_id``.

    Only customers with at least one purchase on or before ``as_of`` appear.
    Times ``t_x`` and ``T`` are in units of ``unit_days`` days (weeks by
    default); ``recency_days`` is in days.
    """

    customer_id: np.ndarray
    x: np.ndarray  # repeat purchase days (distinct purchase days - 1)
    t_x: np.ndarray  # first to last purchase day, in units
    T: np.ndarray  # first purchase day to as_of, in units
    monetary_value: np.ndarray  # mean amount per repeat purchase day; 0 if x == 0
    first_purchase: np.ndarray  # datetime64[D]
    last_purchase: np.ndarray  # datetime64[D]
    recency_days: np.ndarray  # as_of - last purchase day, in days
    total_amount: np.ndarray  # all purchase days, first one included
    as_of: np.datetime64
    unit_days: float

    def __len__(self) -> int:
        return int(self.customer_id.size)


def _to_day_numbers(values: Any, name: str) -> np.ndarray:
    """Return int64 days since 1970-01-01 for dates, datetimes or datetime64 values.

    Naive datetimes are taken at face value (pass local times to count days
    in the shop's timezone); timezone-aware datetimes are converted to UTC
    first.  ISO date strings work too, via numpy.
    """
    arr = np.asarray(values)
    if arr.dtype.kind != "M":
        if arr.dtype == object:
            # numpy would warn and silently use UTC; do it explicitly instead.
            flat = [
                v.astimezone(_dt.UTC).replace(tzinfo=None)
                if isinstance(v, _dt.datetime) and v.tzinfo is not None
                else v
                for v in arr.reshape(-1)
            ]
            arr = np.array(flat, dtype="datetime64[D]").reshape(arr.shape)
        else:
            try:
                arr = arr.astype("datetime64[D]")
            except (TypeError, ValueError) as exc:
                raise ValueError(f"{name} must be dates, datetimes or datetime64 values") from exc
    days = arr.astype("datetime64[D]")
    if np.any(np.isnat(days)):
        raise ValueError(f"{name} contains missing dates (NaT)")
    return days.astype(np.int64)


def summarise_purchases(
    customer_ids: Any,
    purchase_times: Any,
    amounts: Any,
    as_of: Any,
    unit_days: float = 7.0,
) -> PurchaseSummary:
    """Return the per-customer (x, t_x, T, monetary_value, ...) summary of raw purchases.

    Conventions (those of the BG/NBD and Gamma-Gamma papers):

    * Purchases are counted per distinct calendar DAY: several orders by one
      customer on one day are one purchase whose amount is their sum.
    * Only purchases on or before the as-of day count (``as_of`` is reduced
      to its calendar day, so all of that day's orders are in).
    * ``x`` = distinct purchase days - 1 (the repeat purchases);
      ``t_x`` = last purchase day - first purchase day;
      ``T`` = as-of day - first purchase day; both divided by ``unit_days``.
    * ``monetary_value`` = mean amount of the repeat purchase days, the
      first day left out (it is often atypical); 0 when ``x == 0``.
    * Amounts are used as given (convert Decimals and refunds before, if
      wanted); they must be finite.

    Dates: see ``_to_day_numbers``.  Pass numpy datetime64 arrays for speed;
    lists of python dates/datetimes work but cost a python-level conversion.
    """
    if not unit_days > 0:
        raise ValueError("unit_days must be positive")
    ids = np.asarray(customer_ids)
    if ids.ndim != 1:
        ids = ids.reshape(-1)
    days = _to_day_numbers(purchase_times, "purchase_times").reshape(-1)
    amt = np.asarray(amounts, dtype=float).reshape(-1)
    if not (ids.size == days.size == amt.size):
        raise ValueError("customer_ids, purchase_times and amounts must have the same length")
    if not np.all(np.isfinite(amt)):
        raise ValueError("amounts must be finite numbers")
    as_of_days = _to_day_numbers(np.array([as_of], dtype=object), "as_of").reshape(-1)
    if as_of_days.size != 1:
        raise ValueError("as_of must be a single date")
    as_of_day = int(as_of_days[0])

    keep = days <= as_of_day
    ids, days, amt = ids[keep], days[keep], amt[keep]

    if ids.size == 0:
        empty_f = np.zeros(0)
        empty_d = np.zeros(0, dtype="datetime64[D]")
        return PurchaseSummary(
            customer_id=ids[:0], x=np.zeros(0, dtype=np.int64), t_x=empty_f, T=empty_f,
            monetary_value=empty_f, first_purchase=empty_d, last_purchase=empty_d,
            recency_days=np.zeros(0, dtype=np.int64), total_amount=empty_f,
            as_of=np.datetime64(as_of_day, "D"), unit_days=float(unit_days),
        )

    customers, code = np.unique(ids, return_inverse=True)
    code = code.reshape(-1).astype(np.int64)
    first_day_all = int(days.min())
    span = as_of_day - first_day_all + 1
    # One int64 key per (customer, day); sorting keys sorts by customer, then day.
    key = code * span + (days - first_day_all)
    day_keys, day_index = np.unique(key, return_inverse=True)
    day_amount = np.bincount(day_index.reshape(-1), weights=amt, minlength=day_keys.size)
    day_customer = day_keys // span
    day_number = day_keys % span + first_day_all

    starts = np.flatnonzero(np.r_[True, day_customer[1:] != day_customer[:-1]])
    ends = np.r_[starts[1:], day_keys.size] - 1
    n_days = ends - starts + 1

    first = day_number[starts]
    last = day_number[ends]
    total = np.add.reduceat(day_amount, starts)
    # Sum the repeat days directly rather than total - first, to avoid
    # cancellation when the first order is large.
    repeat_amount = day_amount.copy()
    repeat_amount[starts] = 0.0
    repeat_total = np.add.reduceat(repeat_amount, starts)

    x = n_days - 1
    monetary = np.divide(repeat_total, x, out=np.zeros_like(repeat_total), where=x > 0)
    return PurchaseSummary(
        customer_id=customers,
        x=x.astype(np.int64),
        t_x=(last - first) / unit_days,
        T=(as_of_day - first) / unit_days,
        monetary_value=monetary,
        first_purchase=first.astype("datetime64[D]"),
        last_purchase=last.astype("datetime64[D]"),
        recency_days=(as_of_day - last).astype(np.int64),
        total_amount=total,
        as_of=np.datetime64(as_of_day, "D"),
        unit_days=float(unit_days),
    )
