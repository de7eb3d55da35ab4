"""Users: admins invite people, change roles, disable accounts and reset passwords;
everyone changes their own password on /account."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import gettext
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from crm.extensions import db
from crm.models import ROLES, User
from crm.services import tasks as task_service
from crm.services import users
from crm.services.errors import ValidationError
from crm.views.access import access
from crm.views.forms import apply_errors

bp = Blueprint("users", __name__)

ROLE_CHOICES = {
    "viewer": "Viewer: reads everything, changes nothing",
    "support": "Support: logs interactions, edits contacts, works to-dos",
    "sales": "Sales: like support, plus leads",
    "admin": "Admin: everything, including users and settings",
}
assert set(ROLE_CHOICES) == set(ROLES)
PASSWORD_HINT = f"At least {users.MIN_PASSWORD_LENGTH} characters. Leave it empty to have one made up."


class NewUserForm(FlaskForm):
    name = StringField("Name", validators=[DataRequired(), Length(max=200)])
    email = EmailField("Email", validators=[DataRequired(), Length(max=320)])
    role = SelectField("Role", choices=ROLE_CHOICES, default="support")
    password = PasswordField("Initial password", validators=[Optional()])


class RoleForm(FlaskForm):
    role = SelectField("Role", choices={value: value.title() for value in ROLE_CHOICES})


class ActiveForm(FlaskForm):
    active = HiddenField(validators=[DataRequired()])


class ResetPasswordForm(FlaskForm):
    password = PasswordField("New password", validators=[Optional()])


class OwnPasswordForm(FlaskForm):
    current_password = PasswordField("Current password", validators=[DataRequired()])
    password = PasswordField("New password", validators=[DataRequired(), Length(min=users.MIN_PASSWORD_LENGTH)])
    confirm = PasswordField("Repeat the new password", validators=[DataRequired(), EqualTo("password", "The passwords differ.")])


def _user_or_404(user_id: int) -> User:
    return db.get_or_404(User, user_id)


def _render_index(form: NewUserForm, *, shown=None):
    return render_template(
        "users/index.html", users=users.list_users(), form=form, role_form=RoleForm,
        shown=shown, password_hint=PASSWORD_HINT,
    )


def _handed_words(user, handed: int) -> str:
    return (f"{handed} open {user.role} to-do{'' if handed == 1 else 's'} that nobody of the role held "
            f"{'was' if handed == 1 else 'were'} handed to {user.name}.")


@bp.route("/settings/users", methods=["GET", "POST"])
@access("admin")
def index():
    """List the users and add a new one; a made-up password is shown once, on this response."""
    form = NewUserForm()
    if not form.validate_on_submit():
        return _render_index(form)
    password = form.password.data or users.generate_password()
    try:
        user = users.create_user(form.email.data, form.name.data, form.role.data, password, actor_id=current_user.id)
    except ValidationError as error:
        apply_errors(form, error)
        return _render_index(form)
    handed = task_service.balance_role_tasks(user, actor_id=current_user.id)
    db.session.commit()
    if handed:
        flash(_handed_words(user, handed), "info")
    # Rendered, not redirected: a password in a flash message would travel in the cookie.
    return _render_index(NewUserForm(formdata=None), shown={"user": user, "password": None if form.password.data else password})


@bp.route("/settings/users/<int:user_id>/role", methods=["POST"])
@access("admin")
def change_role(user_id: int):
    """Give a user another role."""
    user = _user_or_404(user_id)
    form = RoleForm()
    if form.validate_on_submit():
        try:
            if users.set_role(user, form.role.data, actor_id=current_user.id):
                db.session.commit()
                flash(f"{user.name} is now {user.role}.", "success")
        except ValidationError as error:
            flash(" ".join(error.fields.values()), "error")
    else:
        flash("Choose one of the roles.", "error")
    return redirect(url_for("users.index"))


@bp.route("/settings/users/<int:user_id>/active", methods=["POST"])
@access("admin")
def set_active(user_id: int):
    """Disable a user (their sessions and API tokens stop at once) or enable them again."""
    user = _user_or_404(user_id)
    form = ActiveForm()
    if form.validate_on_submit() and form.active.data in ("0", "1"):
        try:
            if users.set_active(user, form.active.data == "1", actor_id=current_user.id):
                handed = task_service.balance_role_tasks(user, actor_id=current_user.id)
                db.session.commit()
                flash(f"{user.name} is {'enabled' if user.active else 'disabled; their sessions and tokens no longer work'}.",
                      "success")
                if handed:
                    flash(_handed_words(user, handed), "info")
        except ValidationError as error:
            flash(" ".join(error.fields.values()), "error")
    else:
        flash("Say whether the user should be enabled or disabled.", "error")
    return redirect(url_for("users.index"))


@bp.route("/settings/users/<int:user_id>/password", methods=["GET", "POST"])
@access("admin")
def reset_password(user_id: int):
    """Set or make up a new password for a user, shown once; their sessions end."""
    user = _user_or_404(user_id)
    form = ResetPasswordForm()
    shown = None
    if form.validate_on_submit():
        try:
            password = users.reset_password(user, form.password.data, actor_id=current_user.id)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            db.session.commit()
            if user.id == current_user.id:
                login_user(user)  # resetting your own password keeps this session
            shown = {"user": user, "password": None if form.password.data else password}
    return render_template("users/password.html", user=user, form=form, shown=shown, password_hint=PASSWORD_HINT)


@bp.route("/account", methods=["GET", "POST"])
@access("read")
def account():
    """Show who you are and change your own password, which ends your other sessions."""
    form = OwnPasswordForm()
    if form.validate_on_submit():
        try:
            users.change_own_password(current_user, form.current_password.data, form.password.data)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            db.session.commit()
            # The session version moved on; sign this session in again so only the others end.
            login_user(current_user._get_current_object())
            flash(gettext("Your password is changed. You were signed out everywhere else and your API tokens are revoked."), "success")
            return redirect(url_for("users.account"))
    return render_template("users/account.html", form=form, min_length=users.MIN_PASSWORD_LENGTH)


@bp.route("/account/language", methods=["POST"])
@access("read")
def language():
    """Save the language you read the CRM in; the confirmation (and every page after) is in it."""
    from flask import request
    from flask_babel import gettext as _
    from flask_babel import refresh

    from crm.views.languages import available

    try:
        users.set_language(current_user, request.form.get("language"), available())
    except ValidationError:
        flash(_("Choose one of the languages offered."), "error")
    else:
        db.session.commit()
        refresh()  # the confirmation below is already in the new language
        flash(_("Your language is saved."), "success")
    return redirect(url_for("users.account"))
