"""The users page (admins) and the account page (everyone): invite, roles, disable, passwords."""
from sqlalchemy import select

from crm.extensions import db
from crm.models import AuditEntry, User
from crm.services.staff import api_tokens, users
from crm.views.access import access
from tests.conftest import PASSWORD, make_user, soup, text_of


def _user(email):
    db.session.expire_all()
    return db.session.scalar(select(User).where(User.email == email))


def _audit(action):
    return list(db.session.scalars(select(AuditEntry).where(AuditEntry.action == action)))


def _second_client(app):
    other = app.test_client()
    return other


def _flash(response):
    return text_of(soup(response).select_one(".flash"))


def test_admin_sees_every_user_with_role_and_status(client, auth):
    auth.as_role("admin")
    make_user("viewer")
    page = soup(client.get("/settings/users"))
    rows = {text_of(row.select("td")[1]): row for row in page.select("#users tbody tr")}
    assert set(rows) == {"admin@example.com", "viewer@example.com"}
    viewer_row = rows["viewer@example.com"]
    assert viewer_row.select_one("select[name=role] option[selected]")["value"] == "viewer"
    assert text_of(viewer_row.select_one(".badge")) == "Active"
    assert "(you)" in text_of(rows["admin@example.com"])


def test_adding_a_user_without_a_password_shows_a_made_up_one_once(app, client, auth):
    auth.as_role("admin")
    response = client.post("/settings/users", data={"name": "Sam Seller", "email": "Sam@Shop.example", "role": "sales"})
    assert response.status_code == 200
    password = text_of(soup(response).select_one("#shown-password"))
    assert len(password) >= users.MIN_PASSWORD_LENGTH
    sam = _user("sam@shop.example")
    assert sam.role == "sales" and sam.check_password(password)
    assert password not in sam.password_hash
    # Shown only on that response: not in the session cookie, not on the next visit.
    assert soup(client.get("/settings/users")).select_one("#shown-password") is None
    assert password not in (response.headers.get("Set-Cookie") or "")
    # The new user can sign in with it.
    other = _second_client(app)
    assert other.post("/login", data={"email": "sam@shop.example", "password": password}).status_code == 302
    created = _audit("create")
    assert any(entry.entity == "user" and entry.entity_id == sam.id and entry.after["role"] == "sales" for entry in created)


def test_adding_a_user_with_a_chosen_password_does_not_echo_it(client, auth):
    auth.as_role("admin")
    response = client.post("/settings/users", data={"name": "Vi", "email": "vi@example.com", "role": "viewer",
                                                    "password": "chosen password 1"})
    assert soup(response).select_one("#shown-password") is None
    assert "chosen password 1" not in response.get_data(as_text=True)
    assert _user("vi@example.com").check_password("chosen password 1")


def test_adding_a_user_explains_bad_fields_and_adds_nobody(client, auth):
    auth.as_role("admin")
    response = client.post("/settings/users", data={"name": "Again", "email": "ADMIN@example.com", "role": "admin",
                                                    "password": "short"})
    errors = {e["id"].removesuffix("-error"): text_of(e) for e in soup(response).select(".field-error")}
    assert "already exists" in errors["email"] and "10 characters" in errors["password"]
    assert db.session.scalar(select(db.func.count()).select_from(User)) == 1


def test_changing_a_role_is_audited(client, auth):
    admin = make_user("admin")
    auth.login()
    support = make_user("support")
    response = client.post(f"/settings/users/{support.id}/role", data={"role": "sales"}, follow_redirects=True)
    assert "now sales" in _flash(response)
    assert _user("support@example.com").role == "sales"
    entry = _audit("change_role")[0]
    assert (entry.user_id, entry.entity_id, entry.before, entry.after) == (admin.id, support.id, {"role": "support"}, {"role": "sales"})


def test_the_last_active_admin_cannot_demote_or_disable_themself(client, auth):
    admin = make_user("admin")
    auth.login()
    response = client.post(f"/settings/users/{admin.id}/role", data={"role": "viewer"}, follow_redirects=True)
    assert "last active admin" in _flash(response)
    response = client.post(f"/settings/users/{admin.id}/active", data={"active": "0"}, follow_redirects=True)
    assert "last active admin" in _flash(response)
    admin = _user("admin@example.com")
    assert (admin.role, admin.active) == ("admin", True)
    assert _audit("change_role") == [] and _audit("disable") == []


def test_an_admin_may_step_down_when_another_admin_remains(client, auth):
    admin = make_user("admin")
    make_user("admin", email="second@example.com", name="Second")
    auth.login()
    client.post(f"/settings/users/{admin.id}/role", data={"role": "sales"})
    assert _user("admin@example.com").role == "sales"
    assert client.get("/settings/users").status_code == 403  # the change holds at once


def test_disabling_a_user_ends_their_sessions_and_tokens_at_once(app, client, auth):
    app.add_url_rule("/api/v1/whoami", "whoami", access("read")(lambda: {"ok": True}))
    auth.as_role("admin")
    support = make_user("support")
    _token, plain = api_tokens.create_token(support, "Zapier")
    db.session.commit()
    theirs = _second_client(app)
    theirs.post("/login", data={"email": "support@example.com", "password": PASSWORD})
    assert theirs.get("/").status_code == 200
    assert theirs.get("/api/v1/whoami", headers={"Authorization": f"Bearer {plain}"}).status_code == 200

    response = client.post(f"/settings/users/{support.id}/active", data={"active": "0"}, follow_redirects=True)
    assert "disabled" in _flash(response)
    assert theirs.get("/").headers["Location"].startswith("/login")
    assert theirs.get("/api/v1/whoami", headers={"Authorization": f"Bearer {plain}"}).status_code == 401
    row = soup(client.get("/settings/users")).select_one(f"#user-{support.id}")
    assert text_of(row.select_one(".badge")) == "Disabled"

    # Enabling again lets them sign in anew, but the old session cookie and the old token stay dead.
    client.post(f"/settings/users/{support.id}/active", data={"active": "1"})
    assert theirs.get("/").status_code == 302
    assert theirs.get("/api/v1/whoami", headers={"Authorization": f"Bearer {plain}"}).status_code == 401
    assert [e.action for e in db.session.scalars(select(AuditEntry).where(AuditEntry.entity == "user",
                                                                          AuditEntry.entity_id == support.id))][-2:] == ["disable", "enable"]


def test_an_admin_resets_a_password_shown_once_and_sessions_end(app, client, auth):
    auth.as_role("admin")
    viewer = make_user("viewer")
    theirs = _second_client(app)
    theirs.post("/login", data={"email": "viewer@example.com", "password": PASSWORD})
    page = soup(client.get(f"/settings/users/{viewer.id}/password"))
    assert page.select_one("input[name=password]") is not None
    response = client.post(f"/settings/users/{viewer.id}/password", data={"password": ""})
    password = text_of(soup(response).select_one("#shown-password"))
    viewer = _user("viewer@example.com")
    assert viewer.check_password(password) and not viewer.check_password(PASSWORD)
    assert theirs.get("/").status_code == 302
    entry = _audit("reset_password")[0]
    assert entry.entity_id == viewer.id and password not in repr((entry.before, entry.after))


def test_an_admin_can_set_a_chosen_password(client, auth):
    auth.as_role("admin")
    viewer = make_user("viewer")
    response = client.post(f"/settings/users/{viewer.id}/password", data={"password": "short"})
    assert "10 characters" in text_of(soup(response).select_one(".field-error"))
    response = client.post(f"/settings/users/{viewer.id}/password", data={"password": "a chosen new one"})
    assert soup(response).select_one("#shown-password") is None
    assert _user("viewer@example.com").check_password("a chosen new one")


def test_resetting_your_own_password_keeps_your_session(client, auth):
    admin = make_user("admin")
    auth.login()
    client.post(f"/settings/users/{admin.id}/password", data={"password": ""})
    assert client.get("/settings/users").status_code == 200


def test_any_role_changes_their_own_password_and_other_sessions_end(app, client, auth):
    auth.as_role("viewer")
    elsewhere = _second_client(app)
    elsewhere.post("/login", data={"email": "viewer@example.com", "password": PASSWORD})
    page = soup(client.get("/account"))
    assert "viewer@example.com" in text_of(page.select_one("main"))
    response = client.post("/account", data={"current_password": PASSWORD, "password": "a fresh password",
                                             "confirm": "a fresh password"}, follow_redirects=True)
    assert "password is changed" in _flash(response)
    assert client.get("/").status_code == 200  # this session survives
    assert elsewhere.get("/").status_code == 302  # the other one ended
    assert _user("viewer@example.com").check_password("a fresh password")


def test_changing_your_password_needs_the_current_one(client, auth):
    auth.as_role("support")
    response = client.post("/account", data={"current_password": "not my password", "password": "a fresh password",
                                             "confirm": "a fresh password"})
    assert "not your current password" in text_of(soup(response).select_one(".field-error"))
    assert _user("support@example.com").check_password(PASSWORD)


def test_the_header_links_to_the_account_page(client, auth):
    auth.as_role("sales")
    assert soup(client.get("/")).select_one("a.who")["href"] == "/account"


def test_non_admins_cannot_open_or_use_the_users_page(client, auth):
    target = make_user("viewer")
    auth.as_role("sales")
    assert client.get("/settings/users").status_code == 403
    assert client.post(f"/settings/users/{target.id}/role", data={"role": "admin"}).status_code == 403
    assert _user("viewer@example.com").role == "viewer"
