"""One refresh, no commands: an import or a rule change queues the refresh; the dashboard says "updating…"."""
from __future__ import annotations

from sqlalchemy import select

from crm.extensions import db
from crm.models import JobRun
from crm.services.orders.importing import run as importing
from crm.services.rules import freshness
from tests.conftest import soup, text_of


def refresh_runs():
    return list(db.session.scalars(select(JobRun).where(JobRun.name == "engine.refresh")))


def test_an_import_queues_one_refresh_and_a_dry_run_none(app, tmp_path):
    path = tmp_path / "orders.csv"
    path.write_text("order_id,email,placed_at,total\n1,a@example.com,2026-11-29,10.00\n")
    importing.run_import("orders", path, "orders.csv", dry_run=True)
    assert refresh_runs() == []
    importing.run_import("orders", path, "orders.csv")
    importing.run_import("orders", tmp_path / "orders.csv", "orders.csv")  # unchanged: nothing to refresh
    assert [r.status for r in refresh_runs()] == ["queued"]


def test_changes_arriving_together_share_one_refresh(app):
    assert freshness.queue_refresh() is not None
    db.session.commit()
    assert freshness.queue_refresh() is None
    assert len(refresh_runs()) == 1


def test_the_dashboard_says_updating_until_the_refresh_is_done(client, auth, run_worker):
    auth.as_role("admin")
    assert soup(client.get("/")).select_one("#updating") is None
    client.post("/settings/rules/scoring", data={})  # a refused save queues nothing
    assert refresh_runs() == []
    freshness.queue_refresh()
    db.session.commit()
    note = soup(client.get("/")).select_one("#updating")
    assert "Updating…" in text_of(note) and note["hx-get"] == "/updating"
    assert "waiting to start" in text_of(soup(client.get("/updating")))
    run_worker()
    response = client.get("/updating")
    assert response.headers["HX-Refresh"] == "true" and response.get_data() == b""
    assert soup(client.get("/")).select_one("#updating") is None
    assert [r.status for r in refresh_runs()] == ["done"]
