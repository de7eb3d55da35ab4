"""Users: admins invite people, change roles, disable accounts and reset passwords;
everyone changes their own password on /account."""
from __future__ import annotations

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext, refresh
from flask_login import current_user, login_user
from flask_wtf import FlaskForm
from wtforms import EmailField, HiddenField, PasswordField, SelectField, StringField
from wtforms.validators import DataRequired, EqualTo, Length, Optional

from crm.extensions import db
from crm.models import ROLES, User
from crm.services.people import tasks as task_service
from crm.services.shared.errors import ValidationError
from crm.services.staff import users
from crm.views.access import access
from crm.views.forms import apply_errors, choices, translated
from crm.views.languages import available as available_languages

bp = Blueprint("users", __name__)

ROLE_CHOICES = {
    "viewer": _l("Viewer: reads everything, changes nothing"),
    "support": _l("Support: logs interactions, edits contacts, works to-dos"),
    "sales": _l("Sales: like support, plus leads"),
    "admin": _l("Admin: everything, including users and settings"),
}
assert set(ROLE_CHOICES) == set(ROLES)
ROLE_NAMES = {"viewer": _l("Viewer"), "support": _l("Support"), "sales": _l("Sales"), "admin": _l("Admin")}
PASSWORD_HINT = _l("At least %(count)s characters. Leave it empty to have one made up.", count=users.MIN_PASSWORD_LENGTH)


@bp.app_template_global("role_name")
def role_name(role: str) -> str:
    """A role in the reader's language ("beheerder")."""
    return str(ROLE_NAMES.get(role, role))


class NewUserForm(FlaskForm):
    name = StringField(_l("Name"), validators=[DataRequired(), Length(max=200)])
    email = EmailField(_l("Email"), validators=[DataRequired(), Length(max=320)])
    role = SelectField(_l("Role"), choices=choices(ROLE_CHOICES.items()), default="support")
    password = PasswordField(_l("Initial password"), validators=[Optional()])


class RoleForm(FlaskForm):
    role = SelectField(_l("Role"), choices=choices(ROLE_NAMES.items()))


class ActiveForm(FlaskForm):
    active = HiddenField(validators=[DataRequired()])


class ResetPasswordForm(FlaskForm):
    password = PasswordField(_l("New password"), validators=[Optional()])


class OwnPasswordForm(FlaskForm):
    current_password = PasswordField(_l("Current password"), validators=[DataRequired()])
    password = PasswordField(_l("New password"), validators=[
        DataRequired(),
        Length(min=users.MIN_PASSWORD_LENGTH)])
    confirm = PasswordField(_l("Repeat the new password"), validators=[DataRequired(),
                                                                      EqualTo("password", _l("The passwords differ."))])


class LanguageForm(FlaskForm):
    language = SelectField(_l("Language"))


def _language_choices() -> list[tuple[str, str]]:
    from crm.services.shop import LANGUAGES

    return [("", _("The browser's language")), *[(code, LANGUAGES.get(code, code)) for code in available_languages()]]


def _user_or_404(user_id: int) -> User:
    return db.get_or_404(User, user_id)


def _render_index(form: NewUserForm, *, shown=None):
    return render_template(
        "users/index.html", users=users.list_users(), form=form, role_form=RoleForm,
        shown=shown, password_hint=PASSWORD_HINT,
    )


def _handed_words(user, handed: int) -> str:
    return ngettext("%(num)d open %(role)s to-do that nobody of the role held was handed to %(name)s.",
                    "%(num)d open %(role)s to-dos that nobody of the role held were handed to %(name)s.",
                    handed, role=role_name(user.role).lower(), name=user.name)


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
                flash(_("%(name)s is now %(role)s.", name=user.name, role=role_name(user.role).lower()), "success")
        except ValidationError as error:
            flash(" ".join(translated(reason) for reason in error.fields.values()), "error")
    else:
        flash(_("Choose one of the roles."), "error")
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
                flash(_("%(name)s is enabled.", name=user.name) if user.active
                      else _("%(name)s is disabled; their sessions and tokens no longer work.", name=user.name), "success")
                if handed:
                    flash(_handed_words(user, handed), "info")
        except ValidationError as error:
            flash(" ".join(translated(reason) for reason in error.fields.values()), "error")
    else:
        flash(_("Say whether the user should be enabled or disabled."), "error")
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
    """Show who you are, choose your language, and change your own password, which ends your other sessions."""
    language_form = LanguageForm(prefix="lang", data={"language": current_user.language or ""})
    language_form.language.choices = choices(_language_choices())
    if request.method == "POST" and "lang-language" in request.form:
        form = OwnPasswordForm(formdata=None)
        if language_form.validate_on_submit():
            try:
                users.set_language(current_user, language_form.language.data, available_languages())
            except ValidationError as error:
                apply_errors(language_form, error)
            else:
                db.session.commit()
                refresh()  # the flash is written in the newly chosen language
                flash(_("Your language is saved."), "success")
                return redirect(url_for("users.account"))
        return render_template("users/account.html", form=form, language_form=language_form,
                               min_length=users.MIN_PASSWORD_LENGTH), 422
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
            flash(_("Your password is changed. You were signed out everywhere else and your API tokens are revoked."),
                  "success")
            return redirect(url_for("users.account"))
    return render_template("users/account.html", form=form, language_form=language_form,
                           min_length=users.MIN_PASSWORD_LENGTH)
