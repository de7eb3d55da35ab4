"""The RFM segments' keys and the names people read.

Kept apart from crm.services.insight (which assigns the segments and re-exports
these) so that pages showing segment names do not load numpy and scipy.
"""
from __future__ import annotations

from crm.services.shared.said import N_

SEGMENTS: tuple[str, ...] = (
    "champions",
    "loyal",
    "potential_loyalists",
    "new",
    "at_risk",
    "cant_lose",
    "hibernating",
    "lost",
)

SEGMENT_LABELS: dict[str, str] = {
    "champions": N_("Champions"),
    "loyal": N_("Loyal"),
    "potential_loyalists": N_("Potential loyalists"),
    "new": N_("New customers"),
    "at_risk": N_("At risk"),
    "cant_lose": N_("Can't lose them"),
    "hibernating": N_("Hibernating"),
    "lost": N_("Lost"),
}


def segment_label(key: str | None) -> str | None:
    """Return the name of a stored segment key (an unknown value is shown as it is)."""
    if key is None:
        return None
    return SEGMENT_LABELS.get(key, key)
