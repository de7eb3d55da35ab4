"""Jobs of the queue itself."""
from __future__ import annotations

from crm.services.jobs.core import job


@job(name="jobs.ping")
def ping(note: str = "") -> str:
    """Check that a worker runs jobs"""
    return note or "pong"
