"""The dashboard."""
from __future__ import annotations

from flask import Blueprint, render_template

from crm.services import overview
from crm.views.access import access

bp = Blueprint("main", __name__)


@bp.route("/")
@access("read")
def dashboard():
    """Show the shop at a glance: the journey, revenue and what is due."""
    return render_template("main/dashboard.html", summary=overview.summary())
