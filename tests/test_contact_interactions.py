"""Logging, editing and deleting interactions from the contact page, with htmx."""
from datetime import datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import AuditEntry, Contact, Interaction, utcnow
from tests.conftest import soup, text_of
from tests.contact_helpers import NOW, hx, make_contact, make_interaction, make_user, sign_in


@pytest.fixture
def app_config():
    return {"SHOP_TIMEZONE": "Europe/Berlin"}


def interactions_of(contact_id: int) -> list[Interaction]:
    db.session.expire_all()
    return list(db.session.scalars(select(Interaction).where(Interaction.contact_id == contact_id)))


def log(client, contact_id: int, htmx: bool = True, **fields):
    data = {"kind": "call", "direction": "inbound", "subject": "Asked about delivery", "occurred_at": "", **fields}
    return client.post(f"/contacts/{contact_id}/interactions", data=data, headers=hx() if htmx else {})


def test_the_log_form_is_quick_to_use_from_the_keyboard(client):
    sign_in(client, "support")
    contact = make_contact()
    db.session.commit()
    form = soup(client.get(f"/contacts/{contact.id}")).select_one("form#log-form")
    assert form["hx-post"] == f"/contacts/{contact.id}/interactions" == form["action"]
    assert form["hx-target"] == "#timeline" and form["hx-swap"] == "afterbegin"
    fields = form.select("input:not([type=hidden]), select, textarea")
    assert [f["name"] for f in fields] == ["kind", "direction", "channel", "subject", "body", "outcome", "sentiment",
                                           "occurred_at"]
    # Kind and direction come filled in (a call, inbound): the cursor starts in Subject, the first empty field.
    assert [f["name"] for f in fields if f.has_attr("autofocus")] == ["subject"]
    assert not any(f.has_attr("tabindex") for f in fields)
    assert [o["value"] for o in form.select("select[name=kind] option")] == [
        "call", "email", "chat", "meeting", "note", "complaint", "testimonial", "review", "survey", "sms", "social"]
    assert [o["value"] for o in form.select("select[name=sentiment] option")] == ["", "negative", "neutral", "positive"]
    assert form.select_one("input[name=occurred_at]")["type"] == "datetime-local"
    assert form.select_one("button[type=submit]") is not None  # Enter in a one-line field submits


def test_the_when_field_starts_at_now_in_the_shop_time_zone(client):
    sign_in(client, "support")
    contact = make_contact()
    db.session.commit()
    value = soup(client.get(f"/contacts/{contact.id}")).select_one("input[name=occurred_at]")["value"]
    shown = datetime.strptime(value, "%Y-%m-%dT%H:%M")
    berlin_now = utcnow().astimezone(ZoneInfo("Europe/Berlin")).replace(tzinfo=None)
    assert abs(shown - berlin_now) < timedelta(minutes=2)


def test_logging_puts_the_new_item_on_top_and_resets_the_form(client):
    user = sign_in(client, "support")
    contact = make_contact()
    db.session.commit()
    response = log(client, contact.id, subject="Wants a new lid", body="Lid broke.", outcome="Sent one",
                   sentiment="negative", kind="complaint", channel="phone")
    assert response.status_code == 200
    fragment = soup(response)
    assert fragment.find("html") is None
    item = fragment.select_one("li.tl-interaction")
    assert text_of(item.select_one(".tl-title")) == "Wants a new lid"
    assert item.select_one(".badge.sentiment-negative") is not None and "by Support" in text_of(item)
    fresh = fragment.select_one("form#log-form")
    assert fresh["hx-swap-oob"] == "true"
    assert fresh.select_one("input[name=subject]").get("value", "") == ""
    assert fresh.select_one("textarea[name=body]").get_text().strip() == ""
    assert fresh.select_one("select[name=kind] option[selected]") is None
    (saved,) = interactions_of(contact.id)
    assert (saved.kind, saved.subject, saved.body, saved.author_id) == ("complaint", "Wants a new lid", "Lid broke.", user.id)
    assert (saved.outcome, saved.sentiment, saved.channel, saved.direction) == ("Sent one", "negative", "phone", "inbound")
    assert abs(saved.occurred_at - utcnow()) < timedelta(minutes=1)
    assert db.session.get(Contact, contact.id).last_interaction_at == saved.occurred_at
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.entity == "interaction"))
    assert (entry.action, entry.entity_id, entry.user_id) == ("create", saved.id, user.id)


def test_when_is_read_in_the_shop_time_zone_and_stored_in_utc(client):
    sign_in(client, "support")
    contact = make_contact()
    db.session.commit()
    log(client, contact.id, occurred_at="2025-07-01T14:30")  # Berlin summer time, UTC+2
    (saved,) = interactions_of(contact.id)
    assert saved.occurred_at == datetime(2025, 7, 1, 12, 30, tzinfo=timezone.utc)
    page = soup(client.get(f"/contacts/{contact.id}"))
    assert text_of(page.select_one("#timeline li.tl-interaction time")).startswith("1 Jul 2025 14:30")


def test_without_htmx_logging_goes_back_to_the_contact_page(client):
    sign_in(client, "support")
    contact = make_contact()
    db.session.commit()
    response = log(client, contact.id, htmx=False)
    assert response.status_code == 302 and response.headers["Location"] == f"/contacts/{contact.id}"
    assert len(interactions_of(contact.id)) == 1


@pytest.mark.parametrize("fields, field, reason", [
    ({"occurred_at": "2999-01-01T10:00"}, "occurred_at", "That is in the future; log what already happened."),
    ({"occurred_at": "yesterday"}, "occurred_at", "Not a valid datetime value."),
    ({"kind": "telepathy"}, "kind", "Not a valid choice."),
    ({"kind": "cart"}, "kind", "Not a valid choice."),
    ({"subject": "x" * 301}, "subject", "Field cannot be longer than 300 characters."),
    ({"sentiment": "furious"}, "sentiment", "Not a valid choice."),
])
def test_field_errors_come_back_in_the_form_and_nothing_is_saved(client, fields, field, reason):
    sign_in(client, "support")
    contact = make_contact()
    db.session.commit()
    response = log(client, contact.id, **fields)
    assert response.headers["HX-Retarget"] == "#log-form" and response.headers["HX-Reswap"] == "outerHTML"
    fragment = soup(response)
    form = fragment.select_one("form#log-form")
    assert [node.get("id") for node in fragment.find_all(recursive=False)] == ["log-form"]
    assert form.select_one(f"#{field}")["aria-invalid"] == "true"
    assert text_of(form.select_one(f"#{field}-error")) == reason
    assert interactions_of(contact.id) == []


def test_a_refused_form_keeps_what_was_typed(client):
    sign_in(client, "support")
    contact = make_contact()
    db.session.commit()
    form = soup(log(client, contact.id, occurred_at="2999-01-01T10:00", subject="Keep me", body="And me"))
    assert form.select_one("input[name=subject]")["value"] == "Keep me"
    assert form.select_one("textarea[name=body]").get_text().strip() == "And me"


def test_a_refused_form_without_htmx_renders_the_page_with_422(client):
    sign_in(client, "support")
    contact = make_contact()
    db.session.commit()
    response = log(client, contact.id, htmx=False, occurred_at="2999-01-01T10:00")
    assert response.status_code == 422
    assert soup(response).select_one("#occurred_at-error") is not None


# ---------------------------------------------------------------------------
# Editing and deleting

@pytest.fixture
def authored(app):
    author = make_user("support", email="sue@example.com", name="Sue")
    contact = make_contact()
    call = make_interaction(contact, NOW - timedelta(days=1), author=author, subject="Original", direction="inbound")
    db.session.commit()
    return contact, call


def test_the_author_edits_an_interaction_in_place(client, authored):
    contact, call = authored
    sign_in(client, "support", email="sue@example.com")
    item = soup(client.get(f"/contacts/{contact.id}")).select_one(f"#interaction-{call.id}")
    edit = item.select_one(".tl-actions a.edit")
    assert edit["hx-target"] == "closest li" and edit["hx-swap"] == "outerHTML"
    form = soup(client.get(edit["hx-get"], headers=hx()))
    assert form.find("html") is None
    assert form.select_one("li form input[name=subject]")["value"] == "Original"
    assert form.select_one("select[name=kind]")["id"] == f"edit-{call.id}-kind"  # ids unique beside the log form
    response = client.post(f"/contacts/{contact.id}/interactions/{call.id}/edit", headers=hx(), data={
        "kind": "call", "direction": "outbound", "subject": "Changed", "body": "More detail",
        "occurred_at": "2026-03-01T09:15", "sentiment": "positive",
    })
    updated = soup(response).select_one(f"li#interaction-{call.id}")
    assert text_of(updated.select_one(".tl-title")) == "Changed"
    (saved,) = interactions_of(contact.id)
    assert (saved.subject, saved.direction, saved.sentiment) == ("Changed", "outbound", "positive")
    assert saved.occurred_at == datetime(2026, 3, 1, 8, 15, tzinfo=timezone.utc)
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "update", AuditEntry.entity == "interaction"))
    assert entry.before["subject"] == "Original" and entry.after["subject"] == "Changed"


def test_cancel_puts_the_item_back(client, authored):
    contact, call = authored
    sign_in(client, "support", email="sue@example.com")
    form = soup(client.get(f"/contacts/{contact.id}/interactions/{call.id}/edit", headers=hx()))
    cancel = form.select_one("a[hx-get]")
    item = soup(client.get(cancel["hx-get"], headers=hx()))
    assert text_of(item.select_one(f"li#interaction-{call.id} .tl-title")) == "Original"


def test_edit_errors_come_back_in_the_inline_form(client, authored):
    contact, call = authored
    sign_in(client, "support", email="sue@example.com")
    response = client.post(f"/contacts/{contact.id}/interactions/{call.id}/edit", headers=hx(),
                           data={"kind": "call", "direction": "inbound", "occurred_at": "2999-01-01T00:00"})
    fragment = soup(response)
    assert response.status_code == 200
    assert text_of(fragment.select_one(f"#edit-{call.id}-occurred_at-error")).startswith("That is in the future")
    assert interactions_of(contact.id)[0].subject == "Original"


def test_an_admin_edits_anyones_interaction(client, authored):
    contact, call = authored
    sign_in(client, "admin")
    page = soup(client.get(f"/contacts/{contact.id}"))
    assert page.select_one(f"#interaction-{call.id} .tl-actions") is not None
    client.post(f"/contacts/{contact.id}/interactions/{call.id}/edit", headers=hx(),
                data={"kind": "note", "direction": "internal", "subject": "By the admin"})
    assert interactions_of(contact.id)[0].subject == "By the admin"


def test_another_support_person_cannot_edit_or_delete_it(client, authored):
    contact, call = authored
    sign_in(client, "support", email="other@example.com")
    page = soup(client.get(f"/contacts/{contact.id}"))
    assert page.select_one(f"#interaction-{call.id} .tl-actions") is None
    assert client.get(f"/contacts/{contact.id}/interactions/{call.id}/edit", headers=hx()).status_code == 403
    response = client.post(f"/contacts/{contact.id}/interactions/{call.id}/edit", headers=hx(),
                           data={"kind": "note", "direction": "internal", "subject": "Hijacked"})
    assert response.status_code == 403
    assert client.post(f"/contacts/{contact.id}/interactions/{call.id}/delete", headers=hx()).status_code == 403
    (saved,) = interactions_of(contact.id)
    assert saved.subject == "Original"
    assert db.session.scalar(select(func.count()).select_from(AuditEntry)) == 0


def test_the_author_deletes_an_interaction_and_the_audit_log_keeps_it(client, authored):
    contact, call = authored
    user = sign_in(client, "support", email="sue@example.com")
    form = soup(client.get(f"/contacts/{contact.id}")).select_one(f"#interaction-{call.id} form")
    assert form["hx-swap"] == "delete" and form["hx-target"] == "closest li" and "hx-confirm" in form.attrs
    response = client.post(form["hx-post"], headers=hx())
    assert response.status_code == 200 and response.get_data(as_text=True) == ""
    assert interactions_of(contact.id) == []
    entry = db.session.scalar(select(AuditEntry).where(AuditEntry.action == "delete"))
    assert entry.user_id == user.id and entry.before["subject"] == "Original"
    assert db.session.get(Contact, contact.id).last_interaction_at is None


def test_an_interaction_of_another_contact_is_404(client, authored):
    _contact, call = authored
    other = make_contact()
    db.session.commit()
    sign_in(client, "admin")
    assert client.get(f"/contacts/{other.id}/interactions/{call.id}/edit").status_code == 404
    assert client.post(f"/contacts/{other.id}/interactions/{call.id}/delete").status_code == 404
