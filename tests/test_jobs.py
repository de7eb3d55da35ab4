"""The job queue: jobs queued by the app run in a real `crm worker` process and are recorded."""
from __future__ import annotations

import re

import pytest

from crm.extensions import db
from crm.models import Contact, JobRun, Setting
from crm.services import jobs
from tests import job_samples


@pytest.fixture
def app_config():
    return {"JOBS_EXTRA_MODULES": ["tests.job_samples"]}


def _ran(result) -> int:
    """How many runs of queued (not scheduled) jobs a burst made: a first burst also catches up
    every scheduled job (the nightly ones of other areas), which these tests do not count."""
    ran = int(re.search(r"Ran (\d+) jobs?", result.stdout).group(1))
    return ran - db.session.query(JobRun).filter(JobRun.periodic.is_(True)).count()


def _setting(key):
    row = db.session.get(Setting, key)
    return None if row is None else row.value


def test_a_queued_job_runs_in_the_worker_and_is_recorded(app, run_worker):
    run = job_samples.remember("answer", 42)
    assert run.status == "queued" and run.name == "samples.remember"
    assert _setting("answer") is None  # nothing ran in this process
    db.session.commit()
    result = run_worker()
    assert _ran(result) == 1
    assert _setting("answer") == 42
    run = db.session.get(JobRun, run.id)
    assert run.status == "done" and run.attempts == 1
    assert run.started_at and run.finished_at and run.args_summary == "'answer', 42"


def test_nothing_is_queued_when_the_caller_rolls_back(app, run_worker):
    db.session.add(Contact(email="a@example.com", first_name="A"))
    db.session.flush()
    job_samples.remember("rolled", 1)
    db.session.rollback()
    assert _ran(run_worker()) == 0
    assert _setting("rolled") is None
    assert db.session.query(JobRun).filter(JobRun.periodic.is_(False)).count() == 0


def test_progress_is_recorded(app, run_worker):
    run = job_samples.count_up("counter", 5)
    db.session.commit()
    run_worker()
    run = db.session.get(JobRun, run.id)
    assert (run.status, run.progress_done, run.progress_total, run.phase) == ("done", 5, 5, "counting")
    assert _setting("counter") == 5


def test_a_failing_job_is_retried_then_marked_failed_without_stopping_the_worker(app, run_worker):
    failing = job_samples.always_fails("the shop is closed")
    fine = job_samples.remember("after", "yes")
    db.session.commit()
    result = run_worker()
    assert _ran(result) == 3  # one try, one retry, the other job
    failing = db.session.get(JobRun, failing.id)
    assert failing.status == "failed" and failing.attempts == 2
    assert "ValueError: the shop is closed" in failing.error
    assert db.session.get(JobRun, fine.id).status == "done"


def test_a_job_about_an_erased_contact_fails_once_with_a_plain_reason(app, run_worker):
    contact = Contact(email="gone@example.com", first_name="Gone")
    db.session.add(contact)
    db.session.flush()
    run = job_samples.greet_contact(contact.id + 1000)
    db.session.commit()
    result = run_worker()
    assert _ran(result) == 1
    run = db.session.get(JobRun, run.id)
    assert run.status == "failed" and run.attempts == 1
    assert run.error == f"Not done: contact #{contact.id + 1000} no longer exists"


@pytest.mark.slow
def test_a_failed_job_can_be_retried(app, run_worker):
    run = job_samples.always_fails("nope")
    db.session.commit()
    run_worker()
    again = jobs.retry(run.id)
    db.session.commit()
    assert again.id != run.id and again.status == "queued" and again.args_summary == "'nope'"
    run_worker()
    assert db.session.get(JobRun, again.id).status == "failed"


class TestRedis:
    """The same queue on Redis (CRM_REDIS_URL): a key prefix of its own per test."""

    @pytest.fixture
    def app_config(self, tmp_path):
        import uuid

        return {"JOBS_EXTRA_MODULES": ["tests.job_samples"], "REDIS_URL": "redis://127.0.0.1:6379/0",
                "JOBS_QUEUE_NAME": "crmtest" + uuid.uuid4().hex}

    @pytest.fixture(autouse=True)
    def _clean_redis(self, app):
        yield
        jobs.huey.storage.flush_all()

    def test_a_job_queued_on_redis_runs_in_the_worker(self, app, run_worker):
        from huey.storage import RedisStorage

        assert isinstance(jobs.huey.storage, RedisStorage)
        run = job_samples.count_up("redis-counter", 3)
        db.session.commit()
        assert jobs.huey.pending_count() == 1
        result = run_worker()
        assert "Redis at 127.0.0.1:6379/0" in result.stdout
        assert _setting("redis-counter") == 3
        assert db.session.get(JobRun, run.id).status == "done"
        assert jobs.huey.pending_count() == 0


def test_the_worker_stops_cleanly_on_sigterm(app, tmp_path):
    import signal
    import subprocess
    import time

    from tests.conftest import CRM_COMMAND, ROOT, worker_environment

    run = job_samples.remember("served", "by the consumer")
    db.session.commit()
    worker = subprocess.Popen([CRM_COMMAND, "worker"], env=worker_environment(app), cwd=ROOT,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            db.session.expire_all()
            if db.session.get(JobRun, run.id).status == "done":
                break
            db.session.rollback()
            time.sleep(0.2)
        assert _setting("served") == "by the consumer"
        db.session.rollback()
    finally:
        worker.send_signal(signal.SIGTERM)
        output, _ = worker.communicate(timeout=30)
    assert worker.returncode == 0, output
    assert "Shutting down gracefully" in output


def test_two_workers_never_run_the_same_job_twice(app, tmp_path):
    import subprocess

    from tests.conftest import CRM_COMMAND, ROOT, worker_environment

    queued = [job_samples.claim.schedule((n,)) for n in range(40)]
    db.session.commit()
    workers = [subprocess.Popen([CRM_COMMAND, "worker", "--burst"], env=worker_environment(app), cwd=ROOT,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outputs = [worker.communicate(timeout=120) for worker in workers]
    assert [w.returncode for w in workers] == [0, 0], outputs
    ran = [int(out.split("Ran ")[1].split(" ")[0]) for out, _err in outputs]
    assert sum(ran) == 40
    db.session.expire_all()
    runs = [db.session.get(JobRun, run.id) for run in queued]
    assert {(run.status, run.attempts) for run in runs} == {("done", 1)}
    assert db.session.query(Setting).filter(Setting.key.like("claimed:%")).count() == 40


def test_the_jobs_page_lists_runs_and_retries_a_failed_one(client, auth, run_worker):
    job_samples.always_fails("no stock")
    job_samples.remember("fine", 1)
    db.session.commit()
    run_worker()
    auth.as_role("admin")
    from tests.conftest import soup, text_of

    page = soup(client.get("/settings/jobs/"))
    rows = page.select("table.jobs tbody tr")
    assert len(rows) == 2
    failed = page.select_one("tr.job-failed")
    assert "Fail every time" in text_of(failed) and "ValueError: no stock" in text_of(failed)
    assert "2 attempts" in text_of(failed)
    assert page.select_one("tr.job-done form") is None
    response = client.post(failed.select_one("form")["action"], follow_redirects=True)
    assert "is queued again" in text_of(soup(response).select_one(".flash-success"))
    queued = soup(client.get("/settings/jobs/?status=queued")).select("table.jobs tbody tr")
    assert len(queued) == 1 and "'no stock'" in text_of(queued[0])
    auth.logout()
    auth.as_role("sales")
    assert client.get("/settings/jobs/").status_code == 403


def test_an_order_from_the_api_updates_the_contact_now_and_queues_the_shop_figures(client, app, run_worker):
    from sqlalchemy import select

    from crm.services.staff import api_tokens
    from tests.conftest import make_user

    user = make_user("sales")
    _token, plain = api_tokens.create_token(user, "shop")
    db.session.commit()
    body = {"order_id": "A-1", "email": "new@example.com", "placed_at": "2026-12-01T10:00:00Z",
            "total": "40.00", "currency": "EUR", "status": "paid"}
    for n in range(2):
        response = client.post("/api/v1/orders", json={**body, "order_id": f"A-{n}"},
                               headers={"Authorization": f"Bearer {plain}"})
        assert response.status_code == 201, response.get_json()
    contact = db.session.scalar(select(Contact).where(Contact.email == "new@example.com"))
    assert contact.stage == "retention"  # two paid orders: decided before the answer
    figures = db.session.scalars(select(JobRun).where(JobRun.name == "engine.shop_figures")).all()
    assert len(figures) == 1 and figures[0].status == "queued"  # two orders, one run, not in the request
    assert jobs.huey.pending_count() == 1
    task = jobs.huey.pending()[0]
    assert task.eta is not None  # after JOBS_FIGURES_DELAY, so orders arriving together share it


def _wait_for(predicate, timeout=60):
    import time

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        db.session.expire_all()
        done = predicate()
        db.session.rollback()  # never sleep holding SQLite's write lock: the worker needs it
        if done:
            return True
        time.sleep(0.1)
    return False


def _start_worker(app, tmp_path):
    import subprocess

    from tests.conftest import CRM_COMMAND, ROOT, worker_environment

    return subprocess.Popen([CRM_COMMAND, "worker"], env=worker_environment(app), cwd=ROOT,
                            stdout=open(tmp_path / "worker.log", "w"), stderr=subprocess.STDOUT)


def test_sigterm_lets_the_running_job_finish(app, tmp_path):
    import signal

    run = job_samples.count_up("graceful", 10, 0.3)
    db.session.commit()
    worker = _start_worker(app, tmp_path)
    try:
        assert _wait_for(lambda: (_setting("graceful") or 0) >= 2)
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=60) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    db.session.expire_all()
    assert _setting("graceful") == 10
    assert db.session.get(JobRun, run.id).status == "done"
    assert "Shutting down gracefully" in (tmp_path / "worker.log").read_text()


@pytest.mark.slow
def test_ctrl_c_stops_the_running_job_which_the_next_worker_resumes(app, tmp_path, run_worker):
    import signal

    run = job_samples.count_up("resumed", 30, 0.2)
    db.session.commit()
    worker = _start_worker(app, tmp_path)
    try:
        assert _wait_for(lambda: (_setting("resumed") or 0) >= 2)
        worker.send_signal(signal.SIGINT)
        assert worker.wait(timeout=30) == 0
    finally:
        if worker.poll() is None:
            worker.kill()
    db.session.expire_all()
    stopped_at = _setting("resumed")
    assert 2 <= stopped_at < 30
    assert db.session.get(JobRun, run.id).status == "queued"  # queued again, not "running" forever
    run_worker()
    assert _setting("resumed") == 30
    run = db.session.get(JobRun, run.id)
    assert run.status == "done" and run.attempts == 2


def test_a_message_no_job_reads_does_not_stop_the_worker(app, run_worker):
    jobs.huey.storage.enqueue(b"not a message", 0)
    job_samples.remember("still", "runs")
    db.session.commit()
    result = run_worker()
    assert _setting("still") == "runs"
    assert "could not be read" in result.stderr
