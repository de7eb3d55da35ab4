"""Settings: an index of the admin areas (users, API tokens, webhooks, rules, data)."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, url_for

from crm.views.access import access, can, rule_for

bp = Blueprint("settings", __name__, url_prefix="/settings")

# (title, endpoint, what it is for). Each area's blueprint provides the endpoint;
# the index shows the ones that exist and that the user may open.
SECTIONS = (
    ("Users", "users.index", "Invite people, change roles, disable accounts, reset passwords."),
    ("API tokens", "tokens.index", "Tokens that let other systems use the JSON API."),
    ("Webhooks", "webhooks.deliveries", "Shopify and WooCommerce webhook secrets and every delivery received."),
    ("Journey, score and to-do rules", "rules.index", "Thresholds, score weights, half-life and to-do rules."),
    ("Audit log", "audit.index", "Who created, changed, merged, exported or erased what, and when."),
    ("Privacy", "privacy.index", "Data retention review and the erased-email block list."),
    ("Jobs", "jobs.index", "What the background worker did and does: imports, the nightly refresh, backups; retry a failed job."),
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
