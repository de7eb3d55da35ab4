"""Settings: an index of the admin areas (users, API tokens, webhooks, rules, data)."""
from __future__ import annotations

from flask import Blueprint, current_app, flash, redirect, render_template, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user

from crm.extensions import db
from crm.services import shop
from crm.services.shared.errors import ValidationError
from crm.views.access import access, can, rule_for
from crm.views.shop_form import ShopForm

bp = Blueprint("settings", __name__, url_prefix="/settings")

# (title, endpoint, what it is for). Each area's blueprint provides the endpoint;
# the index shows the ones that exist and that the user may open.
SECTIONS = (
    (_l("Shop"), "settings.shop_page", _l("Name, time zone, currency, default language and business hours.")),
    (_l("Users"), "users.index", _l("Invite people, change roles, disable accounts, reset passwords.")),
    (_l("API tokens"), "tokens.index", _l("Tokens that let other systems use the JSON API.")),
    (_l("Webhooks"), "webhooks.deliveries", _l("Shopify and WooCommerce webhook secrets and every delivery received.")),
    (_l("Email"), "email.settings_page", _l("The mail server, the sender, the test message and the sending rate.")),
    (_l("Email templates"), "email.template_list", _l("The messages sent from contacts and to-dos, with a live preview.")),
    (_l("Journey, score and to-do rules"), "rules.index", _l("Thresholds, score weights, half-life and to-do rules.")),
    (_l("Audit log"), "audit.index", _l("Who created, changed, merged, exported or erased what, and when.")),
    (_l("Privacy"), "privacy.index", _l("Data retention review and the erased-email block list.")),
    (_l("Jobs"), "jobs.index", _l("What the background worker did and does: imports, the nightly refresh, backups; retry a failed job.")),
)


@bp.route("/")
@access("read")
def index():
    """List the settings areas this user may open."""
    sections = []
    for title, endpoint, description in SECTIONS:
        view = current_app.view_functions.get(endpoint)
        if view is not None and can(rule_for(view, "GET") or "admin"):
            sections.append((title, url_for(endpoint), description))
    return render_template("settings/index.html", sections=sections)


@bp.route("/shop", methods=["GET", "POST"])
@access("admin")
def shop_page():
    """Show and save the shop's name, time zone, currency, default language and business hours."""
    form = ShopForm()
    if form.validate_on_submit():
        try:
            shop.save(form.values(), current_user.id)
        except ValidationError as error:
            db.session.rollback()
            form.apply_errors(error.fields)
        else:
            db.session.commit()
            flash(_("Shop settings saved."), "success")
            return redirect(url_for("settings.shop_page"))
    elif not form.is_submitted():
        form.fill(shop.current())
    return render_template("settings/shop.html", form=form)


@bp.app_template_global("hours_words")
def hours_words(settings: shop.ShopSettings) -> str:
    """The shop's business hours with the days in the reader's language ("ma, di 09:00–17:00")."""
    from crm.views.shop_form import DAY_LABELS

    days = ", ".join(str(DAY_LABELS.get(day, day)) for day in settings.days) or _("no days")
    return f"{days} {settings.opens}–{settings.closes}"
