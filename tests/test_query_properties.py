"""Property tests: no query string makes any GET page fail with a server error.

Every GET route in app.url_map is tried (as an admin, with real ids in the URL) with
generated search and filter parameters, so pages other areas add are covered too.
"""
from urllib.parse import urlencode

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from crm import create_app
from tests.conftest import PASSWORD
from tests.routes import app_routes, make_role_users, seed_records, url_for_rule

# Names list and filter pages use or might use, plus anything at all.
PARAMETER_NAMES = (
    "q", "search", "page", "per_page", "limit", "offset", "cursor", "sort", "order", "dir", "stage", "health",
    "tag", "tags", "owner", "owner_id", "user", "assignee", "action", "entity", "entity_id", "since", "until",
    "from", "to", "status", "kind", "source", "segment", "min_score", "max_score", "format", "next", "view",
)
VALUES = st.one_of(
    st.text(max_size=40),
    st.integers(min_value=-(2**70), max_value=2**70).map(str),
    st.dates().map(str),
    st.sampled_from(["", " ", "0", "-1", "NaN", "1e309", "null", "'", '"', "%", "_", "\\", "' OR 1=1 --",
                     "2026-02-30", "9999-12-31", "0001-01-01", "true", "[]", "{}", "\x00", "é" * 300]),
)
PARAMETERS = st.lists(st.tuples(st.one_of(st.sampled_from(PARAMETER_NAMES), st.text(max_size=12)), VALUES), max_size=6)
RAW_QUERIES = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=60)


def _get_routes():
    app = create_app({"SQLALCHEMY_DATABASE_URI": "sqlite://", "SECRET_KEY": "collect", "TESTING": True})
    return [rule.rule for rule, _method in app_routes(app, methods=("GET",))]


@pytest.fixture
def app_config():
    return {"API_RATE_LIMIT": "1000000 per minute"}


@pytest.fixture
def signed_in(app, client):
    make_role_users()
    ids = seed_records()
    response = client.post("/login", data={"email": "admin@example.com", "password": PASSWORD})
    assert response.status_code == 302
    return ids


def _url(app, path_rule, ids):
    rule = next(r for r in app.url_map.iter_rules() if r.rule == path_rule)
    return url_for_rule(rule, ids)


FAST = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@pytest.mark.parametrize("path_rule", _get_routes())
@FAST
@given(parameters=PARAMETERS)
def test_no_search_or_filter_parameters_break_a_page(app, client, signed_in, path_rule, parameters):
    url = _url(app, path_rule, signed_in)
    headers = {"Authorization": "Bearer crm_matrix-admin-token-0123456789abcdef"} if url.startswith("/api/") else {}
    response = client.get(url + "?" + urlencode(parameters), headers=headers)
    assert response.status_code < 500, (url, parameters, response.status_code)


@pytest.mark.parametrize("path_rule", _get_routes())
@FAST
@given(raw=RAW_QUERIES)
def test_no_raw_query_string_breaks_a_page(app, client, signed_in, path_rule, raw):
    url = _url(app, path_rule, signed_in)
    response = client.get(url, query_string=raw)
    assert response.status_code < 500, (url, raw, response.status_code)
