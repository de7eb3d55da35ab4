"""The nightly job records each segment's size for the shop's day, run by a real worker."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from crm.extensions import db
from crm.models import JobRun, SegmentSize
from crm.services.people import contacts
from crm.services.segments import jobs as segment_jobs
from crm.services.segments import store as segments


@pytest.fixture
def app_config():
    return {"SHOP_TIMEZONE": "Europe/Brussels"}


def test_the_nightly_minute_is_in_the_shops_time_zone(app):
    # 02:40 in Brussels is 00:40 UTC in summer and 01:40 UTC in winter.
    assert segment_jobs.nightly(datetime(2026, 7, 1, 0, 40))
    assert not segment_jobs.nightly(datetime(2026, 7, 1, 2, 40))
    assert segment_jobs.nightly(datetime(2026, 1, 15, 1, 40, tzinfo=timezone.utc))


def test_the_worker_records_every_segments_size_for_today(app, run_worker):
    contacts.create_contact({"first_name": "Anna", "city": "Gent"})
    contacts.create_contact({"first_name": "Bo", "city": "Paris"})
    gent = segments.create({"name": "Gent", "definition": {
        "match": "all", "conditions": [{"field": "city", "op": "=", "value": "Gent"}]}})
    everyone = segments.create({"name": "Everyone", "definition": {"match": "all", "conditions": []}})
    db.session.commit()
    segment_jobs.record_sizes()  # what the schedule queues at the nightly minute
    run_worker()
    sizes = {row.segment_id: (row.day, row.size) for row in db.session.query(SegmentSize)}
    assert sizes == {gent.id: (segments.today(), 1), everyone.id: (segments.today(), 2)}
    run = db.session.query(JobRun).filter_by(name="segments.record_sizes").one()
    assert run.status == "done"
