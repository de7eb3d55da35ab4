"""One answer to "does this request want a fragment?" (htmx.fragment), asked by every view."""
from __future__ import annotations

import pytest

from crm.extensions import htmx
from tests.helpers import sign_in


@pytest.mark.parametrize("headers,fragment", [
    ({}, False),
    ({"HX-Request": "true"}, True),
    ({"HX-Request": "true", "HX-Boosted": "true"}, False),
    ({"HX-Request": "true", "HX-History-Restore-Request": "true"}, False),
])
def test_only_a_plain_htmx_request_wants_a_fragment(app, headers, fragment):
    with app.test_request_context("/contacts", headers=headers):
        assert htmx.fragment is fragment


def test_the_contact_list_answers_a_fragment_only_to_a_plain_htmx_request(client):
    sign_in(client, "sales")
    assert "<html" in client.get("/contacts").get_data(as_text=True)
    assert "<html" not in client.get("/contacts", headers={"HX-Request": "true"}).get_data(as_text=True)
    boosted = client.get("/contacts", headers={"HX-Request": "true", "HX-Boosted": "true"})
    assert "<html" in boosted.get_data(as_text=True)
