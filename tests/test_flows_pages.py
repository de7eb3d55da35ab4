"""Settings → Rules → Emails the rules send: choose what each rule does, set the pacing; bad input
is refused naming the field; admins only."""
from __future__ import annotations

from crm.extensions import db
from crm.services.flows import config
from crm.services.segments import store as segments
from tests.conftest import soup, text_of


def test_an_admin_switches_the_testimonial_flow_on_for_a_segment(app, client, auth):
    auth.as_role("admin")
    segment = segments.create({"name": "Regulars", "definition": {"match": "all", "conditions": []}}, actor_id=None)
    db.session.commit()
    page = soup(client.get("/settings/rules/"))
    section = page.select_one("#flows")
    assert "Emails the rules send" in text_of(section)
    assert section.select_one("#flow-testimonial_request-action option[selected]")["value"] == "todo"
    response = client.post("/settings/flows/testimonial_request",
                           data={"action": "both", "followup_days": "4", "segment_id": str(segment.id)})
    assert response.status_code == 302
    flow = config.flows()["testimonial_request"]
    assert (flow.action, flow.followup_days, flow.segment_id) == ("both", 4, segment.id) and flow.since is not None
    page = soup(client.get("/settings/rules/"))
    assert page.select_one("#flow-testimonial_request-action option[selected]")["value"] == "both"
    assert page.select_one("#flow-testimonial_request-segment option[selected]").text == "Regulars"


def test_bad_flow_and_pacing_input_is_refused_naming_the_field(app, client, auth):
    auth.as_role("admin")
    client.post("/settings/flows/winback", data={"action": "spam", "followup_days": "0"})
    page = text_of(soup(client.get("/settings/rules/")))
    assert "Action: Choose a to-do, the email, or both." in page and "Follow-up days: Give a number of days" in page
    assert config.flows()["winback"].action == "todo"
    client.post("/settings/flows/pacing", data={"cap": "3", "period_days": "7", "window_start": "20:00", "window_end": "09:00"})
    assert "Send until: The window must end after it starts." in text_of(soup(client.get("/settings/rules/")))
    client.post("/settings/flows/pacing", data={"cap": "3", "period_days": "10", "window_start": "08:30", "window_end": "19:00"})
    pacing = config.pacing()
    assert (pacing.cap, pacing.period_days, pacing.window_start.isoformat(timespec="minutes")) == (3, 10, "08:30")


def test_only_admins_change_flows(app, client, auth):
    auth.as_role("sales")
    assert client.post("/settings/flows/winback", data={"action": "email"}).status_code == 403
    assert config.flows()["winback"].action == "todo"
