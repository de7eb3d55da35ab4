"""What the last prediction run stored and, in words, why figures are missing.

Kept apart from crm.services.insight.predict so that the pages that only read the status (the
dashboard, the contact page) do not load numpy and scipy into every web worker.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from crm.extensions import db
from crm.models import Setting
from crm.services.shared.said import N_, revive, said, sentences

LAST_RUN_KEY = "predict.last_run"


@dataclass(frozen=True)
class PredictionStatus:
    """Whether predictions exist, and the plain reason when they do not."""

    ran: bool  # `crm predict` (or `crm refresh`) has run at least once
    as_of: date | None = None
    customers: int = 0
    purchases_predicted: bool = False  # chance still buying, expected orders, next order
    values_predicted: bool = False  # predicted 12-month value
    message: str = ""  # why figures are missing; empty when none are
    caution: str | None = None  # how far to trust the figures that are there

    @property
    def complete(self) -> bool:
        return self.purchases_predicted and self.values_predicted

    @property
    def reason(self) -> str:
        """Return why predictions are missing, in words, whatever the state."""
        if not self.ran:
            return said(N_("Predictions have not been computed yet: run %(command)s (or %(refresh)s)."),
                        command="`crm predict`", refresh="`crm refresh`")
        return self.message


def last_run() -> dict[str, Any] | None:
    """Return what the last run kept (crm.services.insight.predict.PredictionRun.as_setting), or None."""
    row = db.session.get(Setting, LAST_RUN_KEY)
    return row.value if row is not None else None


def prediction_status() -> PredictionStatus:
    """Return the status of the predictions as the last run left them (one query at most)."""
    kept = last_run()
    if not kept:
        return PredictionStatus(ran=False)
    return PredictionStatus(
        ran=True,
        as_of=datetime.fromisoformat(kept["as_of"]).date(),
        customers=kept.get("customers", 0),
        purchases_predicted=bool(kept.get("purchases_predicted")),
        values_predicted=bool(kept.get("values_predicted")),
        message=_message(kept),
        caution=revive(kept.get("caution"), (kept.get("said") or {}).get("caution")),
    )


def _message(kept: dict[str, Any]) -> str:
    """The run's reasons as one text: a Said (shown in the reader's language) when their keys were kept."""
    texts = kept.get("messages") or []
    data = (kept.get("said") or {}).get("messages") or []
    if len(data) != len(texts):
        return " ".join(texts)
    return sentences(*(revive(text, words) for text, words in zip(texts, data, strict=True))) if texts else ""
