"""The RFM segments' keys and the names people read.

Kept apart from crm.services.insight (which assigns the segments and re-exports
these) so that pages showing segment names do not load numpy and scipy.
"""
from __future__ import annotations

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
    "champions": "Champions",
    "loyal": "Loyal",
    "potential_loyalists": "Potential loyalists",
    "new": "New customers",
    "at_risk": "At risk",
    "cant_lose": "Can't lose them",
    "hibernating": "Hibernating",
    "lost": "Lost",
}


def segment_label(key: str | None) -> str | None:
    """Return the name of a stored segment key (an unknown value is shown as it is)."""
    if key is None:
        return None
    return SEGMENT_LABELS.get(key, key)
