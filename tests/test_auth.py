"""First-run setup, sign-in, sign-out, sessions and the protections around them."""
import pytest

from crm.extensions import db
from crm.models import User
from crm.services.staff import users
from tests.conftest import PASSWORD, make_user, soup, text_of


def test_first_visit_goes_to_setup_which_creates_the_admin(client):
    assert client.get("/login").headers["Location"].endswith("/setup")
    page = soup(client.get("/setup"))
    assert page.select_one("input[name=email]") is not None
    response = client.post("/setup", data={"name": "Ada", "email": "Ada@Shop.example", "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 302
    admin = db.session.scalar(db.select(User))
    assert (admin.email, admin.role) == ("ada@shop.example", "admin")
    assert admin.password_hash != PASSWORD and admin.check_password(PASSWORD)
    # Signed in straight away, and the setup page is gone for good.
    assert client.get("/").status_code == 200
    assert client.get("/setup").status_code == 404


def test_setup_explains_each_bad_field(client):
    response = client.post("/setup", data={"name": "", "email": "not-an-email", "password": "short", "confirm": "other"})
    assert response.status_code == 200
    page = soup(response)
    errors = {e["id"].removesuffix("-error"): text_of(e) for e in page.select(".field-error")}
    assert "name" in errors and "password" in errors and "confirm" in errors
    assert db.session.scalar(db.select(db.func.count()).select_from(User)) == 0


def test_setup_rejects_a_bad_email_from_the_service(client):
    response = client.post("/setup", data={"name": "Ada", "email": "ada@", "password": PASSWORD, "confirm": PASSWORD})
    assert "email" in {e["id"].removesuffix("-error") for e in soup(response).select(".field-error")}
    assert users.user_count() == 0


def test_setup_can_load_the_demo_shop(client):
    client.post("/setup", data={"name": "Ada", "email": "ada@example.com", "password": PASSWORD, "confirm": PASSWORD, "demo": "y"})
    from crm.models import Contact, Order

    assert db.session.scalar(db.select(db.func.count()).select_from(Contact)) > 50
    assert db.session.scalar(db.select(db.func.count()).select_from(Order)) > 50


def test_login_and_logout(client, auth):
    make_user("sales")
    assert auth.login("SALES@example.com ").status_code == 302
    assert client.get("/").status_code == 200
    assert auth.logout().status_code == 302
    assert client.get("/").headers["Location"].startswith("/login")


def test_wrong_password_is_refused_with_a_message(client, auth):
    make_user("admin")
    response = auth.login(password="wrong password!!")
    assert response.status_code == 200
    assert "do not match" in text_of(soup(response).select_one(".field-error"))
    assert client.get("/").status_code == 302


def test_a_disabled_user_cannot_sign_in_and_loses_their_session(client, auth):
    user = make_user("support")
    auth.login("support@example.com")
    assert client.get("/").status_code == 200
    user.active = False
    db.session.commit()
    assert client.get("/").status_code == 302
    assert auth.login("support@example.com").status_code == 200


def test_changing_a_password_ends_other_sessions(app, client, auth):
    user = make_user("sales")
    auth.login("sales@example.com")
    users.change_password(user, "a brand new password")
    db.session.commit()
    assert client.get("/").status_code == 302


@pytest.mark.parametrize("target,expected", [
    ("/contacts?q=x", "/contacts?q=x"),
    ("https://evil.example/steal", "/"),
    ("//evil.example/", "/"),
    ("/\\evil.example", "/"),
])
def test_next_after_login_cannot_leave_the_site(client, auth, target, expected):
    make_user("admin")
    response = client.post("/login", query_string={"next": target},
                           data={"email": "admin@example.com", "password": PASSWORD})
    location = response.headers["Location"]
    assert location == expected or location.endswith(expected) and "evil" not in location


def test_a_burst_of_wrong_passwords_gets_429(client, auth):
    make_user("admin")
    statuses = [auth.login(password=f"wrong-{i}-password").status_code for i in range(12)]
    assert statuses[:10] == [200] * 10
    assert statuses[-1] == 429
    assert "Retry-After" in auth.login(password="again wrong").headers


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_forms_refuse_a_post_without_the_csrf_token(client, app_config):
    response = client.post("/setup", data={"name": "Ada", "email": "ada@example.com", "password": PASSWORD, "confirm": PASSWORD})
    assert response.status_code == 400
    assert users.user_count() == 0


@pytest.mark.parametrize("app_config", [{"WTF_CSRF_ENABLED": True}])
def test_every_page_carries_the_csrf_token_for_htmx(client, app_config):
    make_user("admin")
    page = soup(client.get("/login"))
    token = page.select_one("input[name=csrf_token]")["value"]
    assert token in page.body["hx-headers"]
    response = client.post("/login", data={"email": "admin@example.com", "password": PASSWORD, "csrf_token": token})
    assert response.status_code == 302


def test_session_cookie_is_httponly_and_samesite_lax(client, auth):
    make_user("admin")
    response = auth.login()
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie


def test_session_cookie_is_secure_over_https(client):
    make_user("admin")
    response = client.post("/login", base_url="https://localhost",
                           data={"email": "admin@example.com", "password": PASSWORD})
    assert "Secure" in response.headers["Set-Cookie"]
    assert "Strict-Transport-Security" in response.headers


def test_create_user_refuses_duplicates_and_bad_roles(app):
    make_user("admin")
    from crm.services.shared.errors import ValidationError

    with pytest.raises(ValidationError) as caught:
        users.create_user("ADMIN@example.com", "Again", "owner", "short")
    assert set(caught.value.fields) == {"email", "role", "password"}
