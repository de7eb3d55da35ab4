"""Jobs the tests queue and a real worker runs (the worker imports this via JOBS_EXTRA_MODULES)."""
from __future__ import annotations

import time

from crm.extensions import db
from crm.models import Contact, Setting
from crm.services.jobs import StaleJob, job, set_progress


def _note(key, value):
    row = db.session.get(Setting, key)
    if row is None:
        db.session.add(Setting(key=key, value=value))
    else:
        row.value = value


@job(name="samples.remember")
def remember(key: str, value):
    """Store a value under a key in the settings table"""
    _note(key, value)
    db.session.commit()


@job(name="samples.count_up", retries=0)
def count_up(key: str, steps: int, pause: float = 0.0):
    """Count to `steps`, one committed step at a time, resuming where the count stands"""
    row = db.session.get(Setting, key)
    done = row.value if row is not None else 0
    while done < steps:
        done += 1
        _note(key, done)
        db.session.commit()
        set_progress(done, steps, "counting", force=True)
        time.sleep(pause)


@job(name="samples.always_fails", retries=1)
def always_fails(reason: str):
    """Fail every time"""
    raise ValueError(reason)


@job(name="samples.greet_contact", retries=5, retry_delay=1)
def greet_contact(contact_id: int):
    """Mark a contact as greeted"""
    contact = db.session.get(Contact, contact_id)
    if contact is None or contact.erased_at is not None:
        raise StaleJob(f"contact #{contact_id} no longer exists")
    _note(f"greeted:{contact_id}", True)
    db.session.commit()


@job(name="samples.claim")
def claim(n: int):
    """Claim a number: a second run of the same job would break the unique key"""
    db.session.add(Setting(key=f"claimed:{n}", value=n))
    db.session.commit()
    time.sleep(0.01)
