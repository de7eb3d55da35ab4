"""Imports from the Imports page run in the worker: queued, followed live, resumable after a kill."""
from __future__ import annotations

import io
import signal
import subprocess
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select

from tests.conftest import CRM_COMMAND, ROOT, soup, text_of, worker_environment
from crm.extensions import db
from crm.models import Contact, ImportRun, JobRun, Order
from tests.job_files import shopify_orders


@pytest.fixture(autouse=True)
def _instance_in_tmp(app, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "instance_path", str(tmp_path / "instance"))


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def queue_upload(client, path: Path, kind="shopify-orders"):
    data = {"kind": kind, "fmt": "", "file": (io.BytesIO(path.read_bytes()), path.name)}
    location = client.post("/imports/", data=data, content_type="multipart/form-data").headers["Location"]
    response = client.post(location + "/run", data={})
    assert response.status_code == 302, response.get_data(as_text=True)
    return int(response.headers["Location"].rstrip("/").split("/")[-1])


@pytest.mark.slow
def test_an_import_is_queued_followed_and_finished_by_the_worker(client, auth, run_worker, tmp_path):
    auth.as_role("admin")
    run_id = queue_upload(client, shopify_orders(tmp_path / "orders.csv", 30, bad_every=10))
    assert count(Order) == 0  # the request only queued it
    page = soup(client.get(f"/imports/{run_id}"))
    box = page.select_one("#import-progress")
    assert box["hx-trigger"] == "every 1s" and "Queued" in text_of(box)
    assert not page.select("ul.import-summary")

    run_worker()
    run = db.session.get(ImportRun, run_id)
    assert run.status == "finished" and run.total == 30 and run.upload_path is None
    assert run.counts["orders_created"] == 27 and run.counts["rejected"] == 3
    assert count(Order) == 27
    job = db.session.get(JobRun, run.job_run_id)
    assert (job.status, job.progress_done, job.progress_total) == ("done", 30, 30)

    # The polled box tells the page to reload; the page then shows the summary.
    response = client.get(f"/imports/{run_id}/progress", headers={"HX-Request": "true"})
    assert response.headers["HX-Refresh"] == "true"
    page = soup(client.get(f"/imports/{run_id}"))
    assert not page.select("#import-progress")
    lines = [text_of(li) for li in page.select("ul.import-summary li")]
    assert "orders: 27 created, 0 updated, 0 unchanged" in lines and "3 rows rejected" in lines
    assert not list((Path(client.application.instance_path) / "uploads").iterdir())


def test_the_progress_box_shows_records_done_rejected_and_phase(client, auth, app):
    auth.as_role("admin")
    run = ImportRun(kind="shopify-orders", filename="big.csv", status="running", phase="recording", total=400,
                    counts={"read": 100, "rejected": 7})
    db.session.add(run)
    db.session.commit()
    box = soup(client.get(f"/imports/{run.id}/progress", headers={"HX-Request": "true"})).select_one("#import-progress")
    assert box["hx-trigger"] == "every 1s"
    assert box.select_one("progress")["value"] == "100" and box.select_one("progress")["max"] == "400"
    assert text_of(box.select_one(".import-counts")) == "100 of 400 records · 7 rejected so far · phase: recording"


@pytest.mark.slow
def test_a_second_import_of_the_same_file_waits_its_turn(client, auth, app, run_worker, tmp_path):
    from crm.services.jobs import huey

    auth.as_role("admin")
    path = shopify_orders(tmp_path / "orders.csv", 12)
    first = queue_upload(client, path)
    second = queue_upload(client, path)
    # The first import holds the file's lock (as a worker busy with it would).
    digest = db.session.get(ImportRun, first).options["sha256"]
    lock = huey.lock_task(f"import:{digest}")
    lock.acquire()
    try:
        db.session.execute(ImportRun.__table__.update().where(ImportRun.id == first).values(status="finished"))
        run_worker()
        waiting = db.session.get(ImportRun, second)
        assert (waiting.status, waiting.phase) == ("queued", "waiting")
        assert db.session.get(JobRun, waiting.job_run_id).status == "queued"
        page = soup(client.get(f"/imports/{second}"))
        assert "the same file is being imported" in text_of(page.select_one("#import-progress"))
    finally:
        lock.release()
    time.sleep(2.5)  # the retry's delay
    run_worker()
    run = db.session.get(ImportRun, second)
    assert run.status == "finished" and run.counts["orders_created"] == 12


def test_an_import_whose_file_is_gone_fails_with_a_plain_reason(client, auth, run_worker, tmp_path):
    auth.as_role("admin")
    run_id = queue_upload(client, shopify_orders(tmp_path / "orders.csv", 3))
    Path(db.session.get(ImportRun, run_id).upload_path).unlink()
    run_worker()
    run = db.session.get(ImportRun, run_id)
    assert run.status == "failed" and "no longer on the server" in run.error
    job = db.session.get(JobRun, run.job_run_id)
    assert job.status == "failed" and job.attempts == 1 and "no longer on the server" in job.error


@pytest.mark.slow
class TestKilledWorker:
    @pytest.fixture
    def app_config(self):
        return {"IMPORT_BATCH_SIZE": 5}

    def test_a_worker_killed_mid_import_leaves_it_resumable_and_the_next_finishes_it_exactly(
            self, client, auth, app, run_worker, tmp_path):
        auth.as_role("admin")
        orders = 1500
        run_id = queue_upload(client, shopify_orders(tmp_path / "orders.csv", orders, bad_every=50, customers=400))
        db.session.commit()
        worker = subprocess.Popen([CRM_COMMAND, "worker"], env=worker_environment(app), cwd=ROOT,
                                  stdout=open(tmp_path / "worker.log", "w"), stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 180
            read = 0
            while time.monotonic() < deadline:
                db.session.rollback()
                run = db.session.get(ImportRun, run_id)
                db.session.refresh(run)
                read, phase, status = (run.counts or {}).get("read", 0), run.phase, run.status
                db.session.rollback()  # never sleep holding SQLite's write lock: the worker needs it
                if phase == "recording" and read >= 100:
                    break
                time.sleep(0.05)
            assert 100 <= read < orders, f"the import was not caught mid-way ({read} read, phase {phase}, {status})" + (tmp_path / "worker.log").read_text()[-3000:]
        finally:
            worker.send_signal(signal.SIGKILL)
            worker.wait(timeout=10)
        db.session.rollback()

        run = db.session.get(ImportRun, run_id)
        assert run.status == "running"
        # The page shows it as interrupted, not running forever.
        page = soup(client.get(f"/imports/{run_id}"))
        assert "Interrupted" in text_of(page.select_one("#import-progress"))

        result = run_worker()
        run = db.session.get(ImportRun, run_id)
        db.session.refresh(run)
        assert run.status == "finished", result.stderr[-3000:]
        assert run.counts["read"] == orders
        assert run.counts["rejected"] == orders // 50
        assert run.counts["orders_created"] == orders - orders // 50
        buyers = {(n - 1) % 400 for n in range(1, orders + 1) if n % 50}
        assert run.counts["contacts_created"] == len(buyers) == count(Contact)
        assert count(Order) == orders - orders // 50
        assert db.session.scalar(select(func.count()).select_from(ImportRun.__table__)) == 1
        from crm.models import ImportRejection
        assert count(ImportRejection) == orders // 50
        job = db.session.get(JobRun, run.job_run_id)
        assert job.status == "done" and job.attempts == 2


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGKILL, signal.SIGTERM], ids=["SIGKILL", "SIGTERM"])
def test_crm_import_stopped_mid_file_is_never_left_running(client, auth, app, tmp_path, signum):
    path = shopify_orders(tmp_path / "orders.csv", 12000)  # long enough to be caught mid-file on a busy machine
    db.session.commit()
    env = worker_environment(app)
    command = subprocess.Popen([CRM_COMMAND, "import", "shopify-orders", str(path)], env=env, cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        read = 0
        while time.monotonic() < deadline:
            run = db.session.scalar(select(ImportRun))
            read = (run.counts or {}).get("read", 0) if run else 0
            db.session.rollback()
            if read >= 1000:
                break
            time.sleep(0.02)
        assert 1000 <= read < 12000
    finally:
        command.send_signal(signum)
        command.wait(timeout=30)
    run = db.session.scalar(select(ImportRun))
    db.session.refresh(run)
    auth.as_role("admin")
    page = soup(client.get(f"/imports/{run.id}"))
    if signum == signal.SIGTERM:
        assert run.status == "failed" and "running the same file again finishes the job" in run.error
    else:
        assert run.status == "running"  # the process had no chance to say anything
        assert "Interrupted: the import stopped before it finished" in text_of(page.select_one(".import-interrupted"))
        assert not page.select("#import-progress")  # nothing to wait for
        history = soup(client.get("/imports/")).select_one(f"#run-{run.id}")
        assert "interrupted" in text_of(history)
