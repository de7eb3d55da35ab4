"""Schedules inside the app: the nightly refresh, the daily backup and the upload cleanup run in the
worker at their time; the settings page shows their last run; a failure reaches the admins' dashboard."""
from __future__ import annotations

import os
import time
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import JobRun, utcnow
from crm.services.jobs import huey, maintenance
from tests.conftest import soup, text_of


@pytest.fixture
def app_config(tmp_path):
    return {"JOBS_BURST_SCHEDULES": True, "SHOP_TIMEZONE": "Europe/Amsterdam"}


@pytest.fixture(autouse=True)
def _instance_in_tmp(app, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "instance_path", str(tmp_path / "instance"))


def shop_minutes_ago(minutes: int) -> str:
    return (datetime.now(ZoneInfo("Europe/Amsterdam")) - timedelta(minutes=minutes)).strftime("%H:%M")


def last(name):
    return db.session.scalar(select(JobRun).where(JobRun.name == name).order_by(JobRun.id.desc()))


def last_done(name):
    """The job's latest run that did the work. When the test runs within a quarter of an hour after
    the job's real daily slot, the burst also runs that slot, and one of the two is recorded as
    skipped ("another worker ran this slot")."""
    return db.session.scalar(
        select(JobRun).where(JobRun.name == name, JobRun.status == "done").order_by(JobRun.id.desc()))


def test_the_refresh_time_is_a_setting_in_the_shop_time_zone(app):
    assert maintenance.load() == {"refresh_time": "03:15", "backups_keep": 7}
    rule = maintenance.nightly_refresh.schedule_rule
    # 03:15 in Amsterdam is 02:15 UTC in winter.
    assert rule(datetime(2026, 12, 5, 2, 15)) and not rule(datetime(2026, 12, 5, 3, 15))
    maintenance.save({"refresh_time": "22:05", "backups_keep": "3"}, None)
    rule._cached = None
    assert rule(datetime(2026, 7, 1, 20, 5))  # summer: UTC+2


def test_the_schedules_form_saves_and_names_a_bad_field(client, auth):
    auth.as_role("admin")
    page = soup(client.get("/settings/rules/"))
    form = page.select_one("#schedules form.schedule-form")
    assert form.select_one("input[name=refresh_time]")["value"] == "03:15"
    rows = [text_of(tr.select_one("td")) for tr in page.select("#schedules table tbody tr")]
    assert rows == ["Nightly refresh", "Daily backup", "Leftover-upload cleanup"]
    response = client.post("/settings/jobs/schedules", data={"refresh_time": "25:00", "backups_keep": "0"},
                           follow_redirects=True)
    errors = text_of(soup(response).select_one("#flashes"))
    assert "Nightly refresh at: Give a time of day as HH:MM" in errors
    client.post("/settings/jobs/schedules", data={"refresh_time": "04:40", "backups_keep": "2"})
    assert maintenance.load() == {"refresh_time": "04:40", "backups_keep": 2}
    assert client.post("/settings/jobs/schedules", data={}).status_code == 302
    auth.logout()
    auth.as_role("sales")
    assert client.post("/settings/jobs/schedules", data={"refresh_time": "01:00", "backups_keep": "2"}).status_code == 403


def test_due_scheduled_jobs_run_in_a_burst_and_the_settings_page_shows_their_last_run(
        app, client, auth, run_worker, tmp_path):
    from crm.services.shop.backups import sqlite_file

    maintenance.save({"refresh_time": shop_minutes_ago(2), "backups_keep": 2}, None)
    db.session.commit()
    uploads = Path(app.instance_path) / "uploads"
    uploads.mkdir(parents=True)
    old = uploads / ("a" * 32)
    old.write_text("left over")
    os.utime(old, (time.time() - 2 * 86400,) * 2)
    fresh = uploads / ("b" * 32)
    fresh.write_text("being previewed")
    backups = Path(app.instance_path) / "backups"
    backups.mkdir()
    for day in (1, 2, 3):
        (backups / f"crm-2026010{day}-024500.sqlite3").write_text("old backup")
    # Backup and cleanup run at fixed times; make "now" one of their slots by moving their clocks.
    maintenance.daily_backup.schedule_rule.when = lambda: shop_minutes_ago(3)
    maintenance.daily_backup.schedule_rule._cached = None
    maintenance.cleanup.schedule_rule.when = lambda: shop_minutes_ago(4)
    maintenance.cleanup.schedule_rule._cached = None
    try:
        # The worker reads the times from its own copy of the code: only the refresh time is a setting,
        # so the backup and cleanup are queued here as the scheduler would queue them.
        huey.enqueue(maintenance.daily_backup.task.task_class())
        huey.enqueue(maintenance.cleanup.task.task_class())
        result = run_worker()
    finally:
        maintenance.daily_backup.schedule_rule.when = lambda: maintenance.BACKUP_TIME
        maintenance.cleanup.schedule_rule.when = lambda: maintenance.CLEANUP_TIME
    # The three maintenance jobs ran (other schedules, e.g. the flows' quarter-hourly pass, may run too).
    for name in ("schedule.backup", "schedule.cleanup", "schedule.nightly_refresh"):
        assert f"Executing crm.services.jobs.maintenance.{name}:" in result.stderr, result.stdout + result.stderr
    refresh = last_done("schedule.nightly_refresh")
    assert refresh.result.startswith("Refreshed 0 contacts")
    backup = last_done("schedule.backup") or last("schedule.backup")
    live = sqlite_file(db.engine.url)
    if live is not None:
        assert backup.status == "done" and backup.result.startswith("Saved crm-")
        kept = sorted(p.name for p in backups.iterdir())
        assert len(kept) == 2 and "crm-20260103-024500.sqlite3" in kept
    else:
        assert "PostgreSQL" in backup.result
    assert last_done("schedule.cleanup").result.startswith("Removed 1 leftover upload")
    assert not old.exists() and fresh.exists()

    # A second burst in the same minute runs nothing again.
    assert "Ran 0 jobs" in run_worker().stdout

    auth.as_role("admin")
    page = soup(client.get("/settings/rules/"))
    row = page.select_one("#schedule-schedule-nightly_refresh")
    assert "done" in text_of(row) and "Refreshed 0 contacts" in text_of(row) and " s" in text_of(row)


def test_a_failed_scheduled_job_shows_on_the_settings_page_and_the_admins_dashboard(client, auth, app):
    db.session.add(JobRun(task_id="t1", name="schedule.backup", periodic=True, status="failed",
                          enqueued_at=utcnow(), started_at=utcnow(), finished_at=utcnow(),
                          error="BackupError: the disk is full", attempts=1))
    db.session.commit()
    auth.as_role("admin")
    alert = soup(client.get("/")).select_one(".schedule-failures")
    assert alert is not None and "Daily backup" in text_of(alert) and "the disk is full" in text_of(alert)
    row = soup(client.get("/settings/rules/")).select_one("#schedule-schedule-backup")
    assert "failed" in text_of(row) and "the disk is full" in text_of(row)
    auth.logout()
    auth.as_role("sales")
    assert soup(client.get("/")).select_one(".schedule-failures") is None


def test_the_nightly_refresh_never_runs_twice_at_once(app, run_worker):
    maintenance.save({"refresh_time": shop_minutes_ago(1), "backups_keep": 7}, None)
    db.session.commit()
    lock = huey.lock_task("refresh")
    lock.acquire()  # a refresh is running (in another worker)
    try:
        run_worker()
    finally:
        lock.release()
    run = last("schedule.nightly_refresh")
    assert run.status == "skipped" and "still going" in run.error


def test_with_two_workers_a_scheduled_slot_runs_once(app, run_worker):
    maintenance.save({"refresh_time": shop_minutes_ago(1), "backups_keep": 7}, None)
    db.session.commit()
    # Two consumers' schedulers both queue the slot.
    huey.enqueue(maintenance.nightly_refresh.task.task_class())
    huey.enqueue(maintenance.nightly_refresh.task.task_class())
    run_worker()
    statuses = sorted(run.status for run in db.session.scalars(
        select(JobRun).where(JobRun.name == "schedule.nightly_refresh")))
    assert statuses.count("done") == 1 and set(statuses) == {"done", "skipped"}  # the burst queued it too
