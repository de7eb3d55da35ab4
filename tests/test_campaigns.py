"""Newsletters: write one to a segment, see who gets it and who is excluded and why, preview it for
a member, send it through the real worker to aiosmtpd; a crash mid-way resumes without sending
anyone twice."""
from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from crm.extensions import db
from crm.models import Campaign, CampaignRecipient, EmailMessage
from crm.services.campaigns import sending, store
from crm.services.email import outbox
from crm.services.flows import config as flow_config
from crm.services.segments import store as segments
from tests.conftest import soup, text_of
from tests.contact_helpers import make_contact

pytestmark = pytest.mark.slow
NOON = datetime.combine(datetime.now(UTC).date() - timedelta(days=1), datetime.min.time(), tzinfo=UTC) + timedelta(hours=12)


def _audience():
    ada = make_contact(email="ada@example.com", first_name="Ada", consent=True)
    make_contact(email="bo@example.com", first_name="Bo", consent=False)
    busy = make_contact(email="cy@example.com", first_name="Cy", consent=True)
    for days in (3, 1):
        outbox.queue_message(busy, "stay_in_touch", now=datetime.now(UTC) - timedelta(days=days))
    segment = segments.create({"name": "Everyone", "definition": {"match": "all", "conditions": []}}, actor_id=None)
    db.session.commit()
    return ada, segment


def test_write_see_the_audience_preview_and_send_through_the_worker(app, client, auth, smtp, run_worker):
    smtp.save_settings()
    # The worker sends at the real time: open the window all day so the test passes at any hour.
    flow_config.save_pacing({"cap": "2", "period_days": "7", "window_start": "00:00", "window_end": "23:59"}, None)
    ada, segment = _audience()
    auth.as_role("admin")
    refused = client.post("/campaigns/new", data={"name": "", "segment_id": "", "template_key": "stay_in_touch"})
    assert refused.status_code == 422
    page = text_of(soup(refused))
    assert "Give the newsletter a name." in page and "Choose the segment it goes to." in page
    response = client.post("/campaigns/new", data={"name": "Winter news", "segment_id": str(segment.id),
                                                   "template_key": "stay_in_touch", "subject": "Winter at {{ shop.name }}",
                                                   "body": "Hello {{ contact.first_name }}, new teas are in."})
    assert response.status_code == 302
    campaign = db.session.scalar(select(Campaign))
    page = soup(client.get(f"/campaigns/{campaign.id}"))
    assert "1 of 3 members will receive it" in text_of(page.select_one(".receive"))
    excluded = text_of(page.select_one(".excluded"))
    assert "1 excluded: no marketing consent" in excluded and "1 excluded: over the cap on marketing email" in excluded
    preview = client.get(f"/campaigns/{campaign.id}/preview?contact={ada.id}").get_data(as_text=True)
    assert "Hello Ada, new teas are in." in preview
    # A test to yourself, as Ada would get it, straight from the server (no outbox row, no recipient).
    client.post(f"/campaigns/{campaign.id}/test", data={"contact": str(ada.id)})
    [test] = smtp.messages
    assert test.message["Subject"] == "[Test] Winter at My shop" and test.message["To"] == "admin@example.com"
    assert "Hello Ada, new teas are in." in test.message.get_body(("plain",)).get_content()
    assert "Test sent to admin@example.com" in text_of(soup(client.get(f"/campaigns/{campaign.id}")))
    smtp.messages.clear()
    assert client.post(f"/campaigns/{campaign.id}/send", data={"when": "now"}).status_code == 302
    run_worker()
    [received] = [r for r in smtp.messages if r.message["Subject"].startswith("Winter")]  # (the two earlier ones went too)
    assert received.message["To"].endswith("<ada@example.com>") and received.message["Subject"] == "Winter at My shop"
    assert received.message["List-Unsubscribe"]
    db.session.refresh(campaign)
    assert campaign.status == "sent"
    page = text_of(soup(client.get(f"/campaigns/{campaign.id}")))
    assert "1 sent, 0 waiting in the outbox" in page and "2 excluded" in page
    assert "Winter news" in text_of(soup(client.get("/campaigns/")))


def test_a_crash_mid_way_resumes_without_queueing_anyone_twice(app, smtp, run_worker, monkeypatch):
    smtp.save_settings()
    people = [make_contact(email=f"p{i}@example.com", first_name=f"P{i}", consent=True) for i in range(5)]
    segment = segments.create({"name": "All", "definition": {"match": "all", "conditions": []}}, actor_id=None)
    campaign = store.create({"name": "News", "segment_id": str(segment.id), "template_key": "stay_in_touch"}, None)
    campaign.status = "scheduled"
    db.session.commit()
    monkeypatch.setattr(sending, "CHUNK", 2)

    def crash(done, total):
        if done >= 2:
            raise RuntimeError("worker killed")

    with pytest.raises(RuntimeError):
        sending.send(campaign.id, now=NOON, progress=crash)
    db.session.rollback()
    assert db.session.query(CampaignRecipient).count() == 2  # the first chunk was committed with its messages
    assert sending.send(campaign.id, now=NOON) == "sent"
    assert sending.send(campaign.id, now=NOON) == "sent"  # nothing more to do
    run_worker()
    received = Counter(r.message["To"] for r in smtp.messages)
    assert len(received) == 5 and set(received.values()) == {1}
    assert db.session.query(EmailMessage).count() == 5 and len(people) == 5


def test_outside_the_sending_window_it_waits_for_the_window(app):
    _audience()
    campaign = store.create({"name": "Late", "segment_id": str(segments.all_segments()[0].id),
                             "template_key": "stay_in_touch"}, None)
    campaign.status = "scheduled"
    late = NOON.replace(hour=22)
    assert sending.send(campaign.id, now=late) == (NOON + timedelta(days=1)).replace(hour=9)
    assert db.session.query(CampaignRecipient).count() == 0


@pytest.mark.slow
def test_what_it_earned_counts_each_order_once_for_the_latest_email(app, smtp, run_worker):
    from crm.services.campaigns import figures
    from tests.contact_helpers import make_order

    smtp.save_settings()
    flow_config.save_pacing({"cap": "5", "period_days": "7", "window_start": "00:00", "window_end": "23:59"}, None)
    ada, segment = _audience()
    first = store.create({"name": "One", "segment_id": str(segment.id), "template_key": "stay_in_touch"}, None)
    store.schedule(first, None, None)
    run_worker()
    second = store.create({"name": "Two", "segment_id": str(segment.id), "template_key": "winback"}, None)
    store.schedule(second, None, None)
    run_worker()
    make_order(ada, datetime.now(UTC) + timedelta(hours=2), total="40.00")  # within a day of both
    make_order(ada, datetime.now(UTC) + timedelta(days=3), total="99.00")  # too late for either
    db.session.commit()
    one, two = figures.campaign(first.id), figures.campaign(second.id)
    assert (one.sent, one.orders, one.revenue) == (2, 0, 0)  # Ada and Cy (the cap is 5 here)
    assert (two.sent, two.orders, f"{two.revenue:.2f}") == (2, 1, "40.00")
    assert figures.template("winback").orders == 1


def test_a_click_goes_through_the_signed_redirect_and_earns_the_order(app, client, smtp, run_worker):
    import re

    from crm.services.campaigns import figures
    from tests.contact_helpers import make_order

    smtp.save_settings()
    flow_config.save_pacing({"cap": "5", "period_days": "7", "window_start": "00:00", "window_end": "23:59"}, None)
    ada, segment = _audience()
    campaign = store.create({"name": "Sale", "segment_id": str(segment.id), "template_key": "stay_in_touch",
                             "subject": "Sale", "body": "See [the new teas](https://shop.example/new?x=1&y=2)."}, None)
    store.schedule(campaign, None, None)
    run_worker()
    [received] = [r for r in smtp.messages if r.message["Subject"] == "Sale" and "ada@" in r.message["To"]]
    html = received.message.get_body(("html",)).get_content()
    assert "https://shop.example/new" not in html  # rewritten; the unsubscribe link is not
    [link] = re.findall(r'href="http://localhost/r/([^"]+)"', html)
    assert client.get("/r/forged").status_code == 404
    response = client.get(f"/r/{link}")
    assert response.status_code == 302 and response.headers["Location"] == "https://shop.example/new?x=1&y=2"
    make_order(ada, datetime.now(UTC) + timedelta(days=3), total="30.00")  # past the send window, inside the click one
    db.session.commit()
    result = figures.campaign(campaign.id)
    assert (result.clicked, result.orders, f"{result.revenue:.2f}") == (1, 1, "30.00")
    api = client.get(f"/api/v1/campaigns/{campaign.id}")  # (signed out: the API wants a token)
    assert api.status_code == 401
