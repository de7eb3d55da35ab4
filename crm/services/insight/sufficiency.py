"""Is there enough data? Whether the shop's history supports the models, and in words why not."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from crm.services.insight.bgnbd import _check_rft
from crm.services.shared.said import N_, Np_, said, said_plural, sentences

# --------------------------------------------------------------------------
# Is there enough data?
# --------------------------------------------------------------------------


@dataclass(frozen=True)
class DataSufficiency:
    """Whether predictions may be shown, and if not, why, in plain sentences."""

    purchases_ok: bool  # enough to fit BG/NBD (orders and churn)
    spend_ok: bool  # enough to fit Gamma-Gamma (order values)
    reasons: tuple[str, ...]

    @property
    def ok(self) -> bool:
        return self.purchases_ok and self.spend_ok

    @property
    def message(self) -> str:
        """The reasons as one text (a Said: English, shown in the reader's language on the pages)."""
        if not self.reasons:
            return said(N_("There is enough purchase history for predictions."))
        return sentences(*self.reasons)


def data_sufficiency(
    x: Any,
    t_x: Any,
    T: Any,
    monetary_value: Any = None,
    *,
    unit_days: float = 7.0,
    min_customers: int = 20,
    min_repeat_customers: int = 10,
    min_spend_customers: int = 10,
    min_span_days: float = 28.0,
) -> DataSufficiency:
    """Return whether there is enough data to show BG/NBD and Gamma-Gamma predictions, and why not.

    The defaults are far below the 500 buyers / 180 days some hosted tools
    ask for, and are the least we think gives estimates worth showing:
    at least ``min_customers`` buyers, of whom ``min_repeat_customers``
    bought again (repeat buying and dropping out are what BG/NBD learns
    from), ``min_spend_customers`` repeat buyers with a positive spend for
    Gamma-Gamma, and a history of ``min_span_days`` from the earliest first
    purchase to the as-of date.  A fit that passes here can still fail: also
    check the fit's ``converged``.  ``x``, ``t_x``, ``T`` and
    ``monetary_value`` are as from summarise_purchases (time in units of
    ``unit_days``).

    What "enough" buys you, from simulations of CDNOW-like shops (about 40%
    repeat buyers, 8-39 weeks of history, the old mean-scale penalty 0.01): the predicted
    total of next-26-week orders was off by a median 30% (1 in 10 times
    60%) with 50 customers, 20% (50%) with 100, 10% (30%) with 200.  With
    the true parameters it would still be off by 22%, 16% and 13%: much of
    that is plain chance in few customers.  Say so next to small-shop numbers.
    """
    x, t_x, T = _check_rft(x, t_x, T)
    x, T = x.reshape(-1), T.reshape(-1)
    n = int(x.size)
    repeaters = int(np.count_nonzero(x > 0))
    if monetary_value is None:
        spenders = repeaters
    else:
        m = np.broadcast_to(np.asarray(monetary_value, dtype=float), x.shape)
        spenders = int(np.count_nonzero((x > 0) & (m > 0)))
    span_days = float(T.max()) * unit_days if n else 0.0

    # Each reason is a Said (the same English, with its key and values: the pages show it in the
    # reader's language).
    purchase_reasons: list[str] = []
    if n < min_customers:
        purchase_reasons.append(
            said_plural(Np_(n, "Only %(num)s customer has bought anything so far; predictions need at least %(least)s.",
                            "Only %(num)s customers have bought anything so far; predictions need at least %(least)s."),
                        n, least=min_customers)
            if n else said(N_("Nobody has bought anything yet, so there is nothing to predict from."))
        )
    if n and repeaters == 0:
        purchase_reasons.append(said(
            N_("None of the %(customers)s customers has ordered a second time, so there is no repeat buying to "
               "learn from."), customers=n))
    elif 0 < repeaters < min_repeat_customers:
        purchase_reasons.append(said_plural(
            Np_(repeaters, "Only %(num)s customer has ordered more than once; predictions need at least %(least)s.",
                "Only %(num)s customers have ordered more than once; predictions need at least %(least)s."),
            repeaters, least=min_repeat_customers))
    if n and span_days < min_span_days:
        purchase_reasons.append(said(
            N_("The purchase history covers only %(days)s days; predictions need at least %(least)s."),
            days=f"{span_days:.0f}", least=f"{min_span_days:.0f}"))
    spend_reasons: list[str] = []
    if n and repeaters > 0 and spenders < min_spend_customers:
        spend_reasons.append(said_plural(
            Np_(spenders, "Only %(num)s customer has a repeat order with a recorded amount; spend predictions need "
                          "at least %(least)s.",
                "Only %(num)s customers have a repeat order with a recorded amount; spend predictions need at "
                "least %(least)s."), spenders, least=min_spend_customers))
    purchases_ok = not purchase_reasons
    spend_ok = purchases_ok and not spend_reasons
    return DataSufficiency(purchases_ok, spend_ok, tuple(purchase_reasons + spend_reasons))
