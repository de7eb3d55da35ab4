"""An over-large request gets a clear 413: a page for people, JSON for the API."""
import io

import pytest

from crm.views.access import access
from crm.views.formatting import human_size
from tests.helpers import soup, text_of


def test_sizes_read_as_people_say_them():
    assert [human_size(n) for n in (900, 12 * 1024, 2048 * 1024 * 1024)] == ["900 bytes", "12 KB", "2,048 MB"]


@pytest.fixture
def app_config():
    return {"MAX_CONTENT_LENGTH": 2000}


def _add_upload_routes(app):
    def receive():
        from flask import request

        return {"files": len(request.files)}

    app.add_url_rule("/upload-probe", "upload_probe", access("public")(receive), methods=["POST"])
    app.add_url_rule("/api/v1/upload-probe", "api_upload_probe", access("public")(receive), methods=["POST"])


def test_an_over_large_request_gets_a_clear_413_page(app, client):
    _add_upload_routes(app)
    ok = client.post("/upload-probe", data={"file": (io.BytesIO(b"Name\nAda\n"), "orders.csv")})
    assert ok.status_code == 200
    response = client.post("/upload-probe", data={"file": (io.BytesIO(b"x" * 5000), "orders.csv")})
    assert response.status_code == 413
    page = soup(response)
    assert text_of(page.select_one("h1")) == "File too large"
    assert "larger than the 2 KB" in text_of(page.select_one("main"))


def test_an_over_large_api_request_gets_a_json_413(app, client):
    _add_upload_routes(app)
    response = client.post("/api/v1/upload-probe", data={"file": (io.BytesIO(b"x" * 5000), "orders.csv")})
    assert response.status_code == 413
    assert response.json["error"]["code"] == "too_large" and "2 KB" in response.json["error"]["message"]
