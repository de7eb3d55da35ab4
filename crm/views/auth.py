"""Sign-in, sign-out and the first-run setup that creates the admin account."""
from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from crm.extensions import db
from crm.services import shop
from crm.services.people import tasks as task_service
from crm.services.setup import schema as schema_state
from crm.services.shared.errors import ValidationError
from crm.services.staff import users
from crm.views import limits
from crm.views.access import access
from crm.views.forms import apply_errors
from crm.views.shop_form import ShopForm

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField(_l("Email"), validators=[DataRequired()])
    password = PasswordField(_l("Password"), validators=[DataRequired()])


class SetupForm(ShopForm):
    name = StringField(_l("Your name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=320)])
    password = PasswordField(_l("Password"), validators=[DataRequired(), Length(min=users.MIN_PASSWORD_LENGTH)])
    confirm = PasswordField(_l("Repeat the password"), validators=[DataRequired(), EqualTo("password", _l("The passwords differ."))])
    demo = BooleanField(_l("Fill the CRM with a demo shop so I can look around"))


def safe_next(target: str | None) -> str | None:
    """Return `target` only when it stays on this site, else None.

    The check runs on the final, normalised value that goes into Location: a path
    that starts with exactly one "/" (never "//", which a browser reads as another host).
    """
    if not target or "\\" in target or any(ord(ch) < 32 or ch.isspace() for ch in target):
        return None
    parts = urlsplit(urljoin(request.host_url, target))
    if parts.scheme not in ("http", "https") or parts.netloc != urlsplit(request.host_url).netloc:
        return None
    final = parts.path + (f"?{parts.query}" if parts.query else "")
    checked = urlsplit(final)
    if not final.startswith("/") or final.startswith("//") or checked.scheme or checked.netloc:
        return None
    return final


@bp.route("/login", methods=["GET", "POST"])
@access("public")
def login():
    """Show the sign-in form and sign the user in."""
    if users.user_count() == 0:
        return redirect(url_for("auth.setup"))
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        # Failed sign-ins count per address (LOGIN_RATE_LIMIT) and per account
        # (LOGIN_ACCOUNT_RATE_LIMIT). An account over its limit is refused even with the right
        # password; an address over its limit alone is not, so an office behind one NAT is not
        # locked out by someone else's typos, while guessing one account stays slow.
        account = users.normalise_email(form.email.data) or ""
        if not limits.within("LOGIN_ACCOUNT_RATE_LIMIT", "login-account", account):
            limits.refuse("LOGIN_ACCOUNT_RATE_LIMIT")
        address_ok = limits.within("LOGIN_RATE_LIMIT", "login-address", limits.address())
        user = users.authenticate(form.email.data, form.password.data)
        if user is not None:
            db.session.commit()
            login_user(user)
            return redirect(safe_next(request.args.get("next")) or url_for("main.dashboard"))
        limits.count("LOGIN_ACCOUNT_RATE_LIMIT", "login-account", account)
        if not limits.count("LOGIN_RATE_LIMIT", "login-address", limits.address()) or not address_ok:
            limits.refuse("LOGIN_RATE_LIMIT")
        form.password.errors.append(_("That email and password do not match an active account."))
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@access("public")
def logout():
    """End the session, on the server too: the user's session version moves on, so a
    cookie captured before sign-out (on this or any other browser) no longer works."""
    if current_user.is_authenticated:
        users.end_sessions(current_user)
        db.session.commit()
    logout_user()
    flash(_("You are signed out."), "info")
    return redirect(url_for("auth.login"))


def _shop_values(form: SetupForm) -> dict:
    """The shop settings posted; a request without the shop's part keeps the current (config) values."""
    return form.values() if "shop_name" in request.form else shop.as_form_data()


@bp.route("/setup", methods=["GET", "POST"])
@access("public")
def setup():
    """Ask about the shop and create the first admin account; gone once any user exists."""
    if not schema_state.is_migrated():
        # A first run on an empty database: build the tables (SQLite), or say how.
        problem = schema_state.migrate_empty_database()
        if problem:
            return render_template("auth/setup_database.html", problem=problem), 503
    if users.user_count() > 0:
        abort(404)
    form = SetupForm()
    if not form.is_submitted():
        form.fill(shop.current())
    if form.validate_on_submit():
        if not users.claim_setup():
            db.session.rollback()
            abort(404)  # another request created the first admin a moment ago
        shop_values = _shop_values(form)
        shop_errors: dict[str, str] = {}
        try:
            shop.validate(shop_values)
        except ValidationError as error:
            shop_errors = error.fields
        try:
            if shop_errors:
                raise ValidationError(fields={})
            user = users.create_user(form.email.data, form.name.data, "admin", form.password.data)
            shop.save(shop_values, user.id)
            # To-dos made before anyone could hold them (`crm demo` before /setup) go to the admin.
            task_service.balance_role_tasks(user, actor_id=user.id)
        except ValidationError as error:
            db.session.rollback()
            form.apply_errors(shop_errors)
            if error.fields or not shop_errors:
                apply_errors(form, error)
        else:
            if form.demo.data:
                from crm.services.shop import demo

                demo.generate(owner=user)
            db.session.commit()
            login_user(user)
            user.last_login_at = user.created_at  # signed in by setting up: the Users page says so
            db.session.commit()
            flash(_("Welcome! Your admin account is ready. The demo shop is loaded.") if form.demo.data
                  else _("Welcome! Your admin account is ready."), "success")
            return redirect(url_for("main.dashboard"))
    return render_template("auth/setup.html", form=form)
