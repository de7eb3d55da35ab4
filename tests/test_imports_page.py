"""The Imports page: upload, preview as it will be read, run, summary, rejected rows as CSV, history."""
from __future__ import annotations

import csv
import io
from pathlib import Path

import pytest
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import ImportRun, Order
from tests.conftest import make_user, soup, text_of
from tests.helpers import FIXTURES

SHOPIFY_ORDERS = FIXTURES / "shopify" / "orders_export.csv"


@pytest.fixture(autouse=True)
def _instance_in_tmp(app, tmp_path, monkeypatch):
    monkeypatch.setattr(app, "instance_path", str(tmp_path / "instance"))


def count(model):
    return db.session.scalar(select(func.count()).select_from(model))


def upload(client, path: Path, kind="shopify-orders", **fields):
    data = {"kind": kind, "fmt": "", "file": (io.BytesIO(path.read_bytes()), path.name), **fields}
    return client.post("/imports/", data=data, content_type="multipart/form-data")


def test_upload_preview_run_summary_and_rejected_rows(client, auth, app, run_worker):
    auth.as_role("support")
    response = upload(client, SHOPIFY_ORDERS)
    assert response.status_code == 302 and "/imports/upload/" in response.headers["Location"]
    token = response.headers["Location"].rstrip("/").split("/")[-1]
    assert (Path(app.instance_path) / "uploads" / token).exists()
    assert count(Order) == 0  # nothing stored before the run

    preview = soup(client.get(response.headers["Location"]))
    rows = preview.select("table.preview-records tbody tr")
    assert [text_of(r.select("td")[1]) for r in rows] == ["#1001", "#1002", "#1003"]
    assert "2 × Assam Golden Tips 100g" in text_of(rows[0].select("td")[6])
    rejected = preview.select("table.preview-rejected tbody tr")
    assert text_of(rejected[0].select("td")[0]) == "8" and "'ten euros' is not an amount" in text_of(rejected[0])

    run_form = preview.select_one("form.run-form")
    response = client.post(run_form["action"], data={})
    assert response.status_code == 302
    assert count(Order) == 0  # queued for the worker
    run_worker()
    summary = soup(client.get(response.headers["Location"]))
    lines = [text_of(li) for li in summary.select("ul.import-summary li")]
    assert "orders: 3 created, 0 updated, 0 unchanged" in lines and "1 row rejected" in lines
    assert text_of(summary.select_one("table.rejections tbody tr td")) == "8"
    assert count(Order) == 3 and not (Path(app.instance_path) / "uploads" / token).exists()

    download = client.get(summary.select_one("a[download]")["href"])
    assert download.mimetype == "text/csv" and "attachment" in download.headers["Content-Disposition"]
    rows = list(csv.reader(io.StringIO(download.get_data(as_text=True).lstrip("\ufeff"))))
    assert rows[0] == ["line", "reason", "row"] and rows[1][0] == "8" and '"#1004"' in rows[1][2]

    history = soup(client.get("/imports/")).select("table.import-runs tbody tr")
    assert len(history) == 1 and "3 created" in text_of(history[0]) and "Support" in text_of(history[0])


def test_a_dry_run_from_the_page_stores_nothing_and_offers_the_real_run(client, auth, run_worker):
    auth.as_role("sales")
    location = upload(client, SHOPIFY_ORDERS).headers["Location"]
    token = location.rstrip("/").split("/")[-1]
    response = client.post(f"/imports/upload/{token}/run", data={"dry_run": "y"}, follow_redirects=True)
    page = soup(response)
    assert "dry run" in text_of(page.select_one("h1")) and count(Order) == 0
    assert "orders: 3 created, 0 updated, 0 unchanged" in [text_of(li) for li in page.select("ul.import-summary li")]
    real = page.select_one(f"form[action='/imports/upload/{token}/run']")
    client.post(real["action"], data={})
    run_worker()
    assert count(Order) == 3
    runs = list(db.session.scalars(select(ImportRun.dry_run).order_by(ImportRun.id)))
    assert runs == [True, False]


def test_the_generic_kind_with_a_mapping_and_source(client, auth, tmp_path, run_worker):
    auth.as_role("admin")
    path = tmp_path / "etsy.tsv"
    path.write_text("Ref\tBuyer\tWhen\tAmount\nE-1\tines@example.pt\t2026-02-01\t19.90\n")
    response = upload(client, path, kind="orders", source="etsy", mapping="Ref=order_id\nBuyer=email\nWhen=placed_at\nAmount=total")
    assert response.status_code == 302, soup(response).select(".field-error, .flash-error")
    preview = soup(client.get(response.headers["Location"]))
    assert "TSV" in text_of(preview.select_one("main p")) and "etsy" in text_of(preview.select_one("main p"))
    client.post(response.headers["Location"] + "/run", data={})
    run_worker()
    assert db.session.scalar(select(Order.source)) == "etsy"


def test_a_bad_mapping_or_format_is_explained_on_the_form(client, auth, tmp_path):
    auth.as_role("admin")
    path = tmp_path / "orders.xml"
    path.write_text("<orders/>")
    page = soup(upload(client, path, kind="orders"))
    assert "cannot tell the file's format" in text_of(page.select_one(".flash-error")).lower()
    bad_map = soup(upload(client, SHOPIFY_ORDERS, kind="orders", mapping="just a column"))
    assert "FILECOL=field" in text_of(bad_map.select_one(".flash-error"))
    wrong_kind = soup(upload(client, SHOPIFY_ORDERS, kind="shopify-orders", mapping="Name=order_id"))
    assert "any orders file" in text_of(wrong_kind.select_one(".flash-error"))


def test_a_binary_file_is_refused_with_a_clear_message(client, auth, tmp_path, app):
    auth.as_role("support")
    path = tmp_path / "orders.csv"
    path.write_bytes(b"PK\x03\x04\x14\x00\x06\x00 this is a zip")
    response = upload(client, path)
    assert response.status_code == 400
    assert "save it as CSV" in text_of(soup(response).select_one(".field-error"))
    assert not (Path(app.instance_path) / "uploads").exists() or not any((Path(app.instance_path) / "uploads").iterdir())


@pytest.mark.parametrize("app_config", [{"MAX_CONTENT_LENGTH": 1000}])
def test_an_upload_over_the_limit_is_413_with_the_way_out(client, auth, app_config):
    auth.as_role("support")
    response = upload(client, SHOPIFY_ORDERS)
    assert response.status_code == 413
    assert "crm import" in text_of(soup(response).select_one("article"))
    assert count(ImportRun) == 0


def test_viewers_see_the_history_but_cannot_import(client, auth):
    auth.as_role("viewer")
    page = soup(client.get("/imports/"))
    assert page.select_one("#upload") is None and page.select_one("#history") is not None
    assert upload(client, SHOPIFY_ORDERS).status_code == 403
    assert client.post("/imports/upload/" + "0" * 32 + "/run").status_code == 403
    assert count(ImportRun) == 0


def test_an_upload_belongs_to_the_person_who_made_it(client, auth):
    auth.as_role("support")
    location = upload(client, SHOPIFY_ORDERS).headers["Location"]
    auth.logout()
    auth.as_role("sales")
    assert client.get(location).status_code == 404
    assert client.post(location + "/run", data={}).status_code == 404
    assert client.get("/imports/upload/not-a-token").status_code == 404
    assert count(Order) == 0


def test_discarding_an_upload(client, auth, app):
    auth.as_role("support")
    location = upload(client, SHOPIFY_ORDERS).headers["Location"]
    token = location.rstrip("/").split("/")[-1]
    client.post(f"/imports/upload/{token}/discard")
    assert client.get(location).status_code == 404
    assert count(ImportRun) == 0


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_an_upload_needs_the_csrf_token(client, app_config):
    make_user("support")
    token = soup(client.get("/login")).select_one("input[name=csrf_token]")["value"]
    client.post("/login", data={"email": "support@example.com", "password": "correct horse battery", "csrf_token": token})
    assert upload(client, SHOPIFY_ORDERS).status_code == 400
    form_token = soup(client.get("/imports/")).select_one("#upload input[name=csrf_token]")["value"]
    assert upload(client, SHOPIFY_ORDERS, csrf_token=form_token).status_code == 302


def import_in_sek(client, tmp_path, run_worker) -> str:
    """Import the Shopify sample with its orders in SEK through the page; return the run page's address."""
    path = tmp_path / "orders_sek.csv"
    path.write_text(SHOPIFY_ORDERS.read_text(encoding="utf-8").replace(",EUR,", ",SEK,"), encoding="utf-8")
    location = upload(client, path).headers["Location"]
    run_page = client.post(location + "/run", data={}).headers["Location"]
    run_worker()
    return run_page


OFFER = "This file's orders are in SEK; the shop counts in EUR. Use SEK for the shop?"


def test_a_first_import_in_another_currency_offers_it_to_an_admin_who_can_take_it(client, auth, tmp_path, run_worker):
    from crm.models import AuditEntry
    from crm.services import shop

    assert shop.current().currency == "EUR"
    auth.logout()
    auth.as_role("admin")
    run_page = import_in_sek(client, tmp_path, run_worker)
    page = soup(client.get(run_page))
    offer = page.select_one(".currency-offer")
    assert offer is not None and OFFER in text_of(offer)
    response = client.post(offer.select_one("form")["action"], data={}, follow_redirects=True)
    assert "The shop now counts in SEK." in text_of(soup(response).select_one(".flash-success"))
    assert shop.current().currency == "SEK"
    entry = db.session.scalars(select(AuditEntry).where(AuditEntry.entity == "setting")).one()
    assert entry.after["currency"] == "SEK" and entry.user_id is not None
    assert soup(response).select_one(".currency-offer") is None  # the shop's currency is the file's now


@pytest.mark.slow
def test_no_offer_when_the_shop_already_had_orders(client, auth, tmp_path, run_worker):
    auth.as_role("admin")
    first = tmp_path / "eur.csv"
    first.write_text("order_id,email,placed_at,total,currency\nE1,ada@example.com,2026-01-05,30.00,EUR\n")
    location = upload(client, first, kind="orders").headers["Location"]
    client.post(location + "/run", data={})
    run_worker()
    run_page = import_in_sek(client, tmp_path, run_worker)
    page = soup(client.get(run_page))
    assert "not the shop's currency (EUR)" in text_of(page.select_one("ul.import-summary"))  # the warning stays
    assert page.select_one(".currency-offer") is None
    assert client.post(run_page + "/use-currency", data={}, follow_redirects=True).status_code == 200
    from crm.services import shop

    assert shop.current().currency == "EUR"


def test_a_sales_user_sees_only_the_warning_and_cannot_set_the_currency(client, auth, tmp_path, run_worker):
    from crm.services import shop

    auth.as_role("sales")
    run_page = import_in_sek(client, tmp_path, run_worker)
    page = soup(client.get(run_page))
    assert "not the shop's currency (EUR)" in text_of(page.select_one("ul.import-summary"))
    assert page.select_one(".currency-offer") is None and OFFER not in text_of(page)
    assert client.post(run_page + "/use-currency", data={}).status_code == 403
    assert shop.current().currency == "EUR"
    auth.logout()
    auth.as_role("admin")
    assert OFFER in text_of(soup(client.get(run_page)).select_one(".currency-offer"))
    client.post(run_page + "/use-currency", data={})
    auth.logout()
    auth.as_role("sales")
    assert client.post(run_page + "/use-currency", data={}).status_code == 403
    assert shop.current().currency == "SEK"
