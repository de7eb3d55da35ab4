"""Sign-in, sign-out and the first-run setup that creates the admin account."""
from __future__ import annotations

from urllib.parse import urljoin, urlsplit

from flask import Blueprint, abort, current_app, flash, redirect, render_template, request, url_for
from flask_login import current_user, login_user, logout_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, EmailField, PasswordField, StringField
from wtforms.validators import DataRequired, EqualTo, Length

from crm.extensions import db, limiter
from crm.services import shop, users
from crm.services import tasks as task_service
from crm.services.setup import schema as schema_state
from crm.services.errors import ValidationError
from crm.views.access import access
from crm.views.forms import apply_errors
from crm.views.shop_form import ShopForm

bp = Blueprint("auth", __name__)


class LoginForm(FlaskForm):
    email = EmailField("Email", validators=[DataRequired()])
    password = PasswordField("Password", validators=[DataRequired()])


class SetupForm(ShopForm):
    name = StringField("Your name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    password = PasswordField("Password", validators=[DataRequired(), Length(min=users.MIN_PASSWORD_LENGTH)])
    confirm = PasswordField("Repeat the password", validators=[DataRequired(), EqualTo("password", "The passwords differ.")])
    demo = BooleanField("Fill the CRM with a demo shop so I can look around")


def safe_next(target: str | None) -> str | None:
    """Return `target` only when it stays on this site, else None."""
    if not target:
        return None
    if target.startswith("//") or "\\" in target:
        return None
    parts = urlsplit(urljoin(request.host_url, target))
    if parts.scheme not in ("http", "https") or parts.netloc != urlsplit(request.host_url).netloc:
        return None
    return parts.path + (f"?{parts.query}" if parts.query else "")


def _login_limit() -> str:
    return current_app.config["LOGIN_RATE_LIMIT"]


@bp.route("/login", methods=["GET", "POST"])
@access("public")
@limiter.limit(_login_limit, methods=["POST"], deduct_when=lambda response: response.status_code != 302)
def login():
    """Show the sign-in form and sign the user in."""
    if users.user_count() == 0:
        return redirect(url_for("auth.setup"))
    if current_user.is_authenticated:
        return redirect(url_for("main.dashboard"))
    form = LoginForm()
    if form.validate_on_submit():
        user = users.authenticate(form.email.data, form.password.data)
        if user is not None:
            db.session.commit()
            login_user(user)
            return redirect(safe_next(request.args.get("next")) or url_for("main.dashboard"))
        form.password.errors.append("That email and password do not match an active account.")
    return render_template("auth/login.html", form=form)


@bp.route("/logout", methods=["POST"])
@access("public")
def logout():
    """End the session."""
    logout_user()
    flash("You are signed out.", "info")
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
                from crm.services import demo

                demo.generate(owner=user)
            db.session.commit()
            login_user(user)
            user.last_login_at = user.created_at  # signed in by setting up: the Users page says so
            db.session.commit()
            flash("Welcome! Your admin account is ready." + (" The demo shop is loaded." if form.demo.data else ""), "success")
            return redirect(url_for("main.dashboard"))
    return render_template("auth/setup.html", form=form)
