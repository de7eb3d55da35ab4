"""API tokens: each person lists, creates and revokes their own; an admin sees everyone's."""
from __future__ import annotations

from flask import Blueprint, abort, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from sqlalchemy import select
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from crm.extensions import db
from crm.models import ApiToken, User
from crm.services.shared.errors import ValidationError
from crm.services.staff import api_tokens
from crm.views.access import access, can
from crm.views.forms import apply_errors

bp = Blueprint("tokens", __name__, url_prefix="/settings/tokens")


class TokenForm(FlaskForm):
    name = StringField(_l("What is it for?"), validators=[DataRequired(), Length(max=200)])


def _visible_tokens():
    query = select(ApiToken, User).join(User, User.id == ApiToken.user_id) \
        .order_by(ApiToken.revoked_at.is_not(None), ApiToken.created_at.desc(), ApiToken.id.desc())
    if not can("admin"):
        query = query.where(ApiToken.user_id == current_user.id)
    return db.session.execute(query.limit(500)).all()


@bp.route("/", methods=["GET", "POST"])
@access("read")
def index():
    """List the tokens this person may see and create a new one, shown once."""
    form = TokenForm()
    plain = None
    if form.validate_on_submit():
        try:
            _token, plain = api_tokens.create_token(current_user, form.name.data, actor_id=current_user.id)
        except ValidationError as error:
            apply_errors(form, error)
        else:
            db.session.commit()
            form = TokenForm(formdata=None)
    return render_template("tokens/index.html", form=form, tokens=_visible_tokens(), plain=plain)


@bp.route("/<int:token_id>/revoke", methods=["POST"])
@access("read")
def revoke(token_id: int):
    """Revoke a token at once; admins may revoke anyone's."""
    token = db.get_or_404(ApiToken, token_id)
    if token.user_id != current_user.id and not can("admin"):
        abort(404)
    if token.revoked_at is None:
        api_tokens.revoke(token, actor_id=current_user.id)
        db.session.commit()
        flash(_("The token “%(name)s” is revoked; requests with it now get 401.", name=token.name), "success")
    return redirect(url_for("tokens.index"))
