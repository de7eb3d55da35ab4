"""An erased contact stays erased: every write path (page, htmx, API) refuses it with 410 and
changes nothing, while its page still shows what is left."""
from __future__ import annotations

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import Contact, Interaction, Order, Task
from crm.services.staff import api_tokens
from crm.services.trust import privacy
from tests.contact_helpers import make_contact, make_user, sign_in

HTMX = {"HX-Request": "true"}


@pytest.fixture
def erased(app):
    contact = make_contact(first_name="Ada", last_name="Lovelace", email="ada@example.com")
    privacy.erase_contact(contact, None)
    db.session.commit()
    return contact


def _count(model) -> int:
    return db.session.scalar(select(func.count()).select_from(model))


def _unchanged(contact_id: int) -> None:
    db.session.expire_all()
    contact = db.session.get(Contact, contact_id)
    assert contact.erased_at is not None
    assert contact.email is None or "ada" not in contact.email
    assert "Ada" not in (contact.first_name or "") and not contact.tags
    assert (_count(Interaction), _count(Task), _count(Order)) == (0, 0, 0)
    assert not contact.stage_pinned


PAGE_WRITES = [
    ("edit", "/contacts/{id}/edit", {"first_name": "Ada", "last_name": "Back", "email": "ada@example.com"}),
    ("log an interaction", "/contacts/{id}/interactions",
     {"kind": "call", "subject": "Called", "occurred_at": "2026-03-01T10:00", "direction": "outbound"}),
    ("add a tag", "/contacts/{id}/tags", {"tag": "vip"}),
    ("add a to-do", "/contacts/{id}/tasks", {"title": "Call Ada back", "kind": "follow_up"}),
    ("pin the stage", "/contacts/{id}/stage", {"stage": "advocacy", "reason": "Loves us"}),
    ("type in an order", "/contacts/{id}/orders/new",
     {"number": "A1", "placed_at": "2026-03-01T10:00", "currency": "EUR", "status": "paid",
      "lines-0-name": "Tea", "lines-0-quantity": "1", "lines-0-unit_price": "10.00"}),
]


@pytest.mark.parametrize("headers", [{}, HTMX], ids=["page", "htmx"])
@pytest.mark.parametrize("what,path,data", PAGE_WRITES, ids=[w[0] for w in PAGE_WRITES])
def test_no_page_or_htmx_write_brings_an_erased_contact_back(client, erased, what, path, data, headers):
    sign_in(client, "admin")
    response = client.post(path.format(id=erased.id), data=data, headers=headers)
    assert response.status_code == 410, what
    assert "was erased" in response.get_data(as_text=True)
    _unchanged(erased.id)


def test_the_erased_contact_page_still_shows_and_an_unknown_one_is_404(client, erased):
    sign_in(client, "admin")
    assert client.get(f"/contacts/{erased.id}").status_code == 200
    assert client.post(f"/contacts/{erased.id + 1000}/edit", data={}).status_code == 404
    assert client.post(f"/contacts/{erased.id + 1000}/tasks", data={}).status_code == 404


def test_the_api_refuses_to_change_an_erased_contact_with_410(client, erased):
    _token, secret = api_tokens.create_token(make_user("admin"), "shop")
    db.session.commit()
    headers = {"Authorization": f"Bearer {secret}"}
    patched = client.patch(f"/api/v1/contacts/{erased.id}", json={"first_name": "Ada"}, headers=headers)
    logged = client.post(f"/api/v1/contacts/{erased.id}/interactions", json={"kind": "note", "subject": "Hi"},
                         headers=headers)
    for response in (patched, logged):
        assert response.status_code == 410 and "was erased" in response.get_json()["error"]["message"]
    assert client.get(f"/api/v1/contacts/{erased.id}", headers=headers).status_code == 404
    _unchanged(erased.id)
