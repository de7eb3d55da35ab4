"""Leads: the sales view of contacts ranked by lead score, and the score partial of a contact."""
from __future__ import annotations

from flask import Blueprint, current_app, render_template, request

from crm.extensions import htmx
from crm.models import STAGES
from crm.services.people import leads
from crm.services.shared.bounds import parse_id
from crm.views.access import access
from crm.views.params import page_arg

bp = Blueprint("leads", __name__, url_prefix="/leads")

# Where a contact is shown, by the endpoint the contacts area provides.
@bp.app_template_global()
def score_trend(contact) -> leads.Trend:
    """Return a contact's score and its 7- and 30-day change, for leads/_score.html."""
    return leads.score_trend(contact)


def _filters() -> leads.LeadFilters:
    """Read the filters from the query string; a value that is not one of the choices is ignored."""
    stage = request.args.get("stage") or None
    owner = request.args.get("owner") or None
    if owner not in (None, "none") and parse_id(owner) is None:
        owner = None
    return leads.LeadFilters(stage=stage if stage in STAGES else None, owner=owner,
                             tag=(request.args.get("tag") or "").strip() or None)


@bp.route("/")
@access("read")
def index():
    """List contacts by lead score with the reasons, the trend, the last touch and the next to-do."""
    filters = _filters()
    page = leads.lead_page(filters, page=page_arg(),
                           per_page=current_app.config["PAGE_SIZE"])
    context = {"page": page, "filters": filters}
    if htmx.fragment:
        return render_template("leads/_list.html", **context)
    return render_template("leads/index.html", stages=STAGES, owners=leads.owners(), tags=leads.tag_names(),
                           **context)
