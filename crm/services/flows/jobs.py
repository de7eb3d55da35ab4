"""The worker's side of flows: a pass every 15 minutes (and on demand, at a given moment)."""
from __future__ import annotations

from datetime import datetime

from crm.extensions import db
from crm.services.flows import runner
from crm.services.jobs import job, periodic_job


def every_quarter_hour(moment: datetime) -> bool:
    return moment.minute % 15 == 0


def _run(now: datetime | None) -> str:
    summary = runner.run(now)
    db.session.commit()  # the send jobs go to the worker with the commit
    return summary.said()


@periodic_job(every_quarter_hour, name="flows.scheduled", lock="flows", label="Retention emails (flows)")
def scheduled_flows() -> str:
    """Send the retention emails that are due (every 15 minutes)"""
    return _run(None)


@job(name="flows.run", lock="flows", retries=2, retry_delay=60)
def run_flows(as_of: str | None = None) -> str:
    """Send the retention emails that are due (at a given moment when one is named)"""
    return _run(datetime.fromisoformat(as_of) if as_of else None)
