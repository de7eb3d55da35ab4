"""The model check page: how well the purchase model predicted the held-out end of the history."""
from __future__ import annotations

from datetime import date, datetime, time, timezone

from flask import Blueprint, render_template, request
from flask_babel import gettext as _

from crm.models import utcnow
from crm.views.access import access

bp = Blueprint("insight", __name__)


@bp.route("/insight/model")
@access("read")
def model_check():
    """Fit on the history up to a cut-off and show predicted against actual repeat purchases after it.

    `?holdout_weeks=N` (default: the last quarter of the history) and `?as_of=YYYY-MM-DD` (the
    end of that UTC day, as `crm predict --as-of`; default now). Same figures as
    `crm predict --holdout-weeks N --json`.
    """
    import os

    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")  # before numpy loads, as in `crm predict`
    from crm.services.insight import model_check as checking

    errors: list[str] = []
    now = utcnow()
    as_of = now
    text = (request.args.get("as_of") or "").strip()
    if text:
        try:
            day = date.fromisoformat(text)
            as_of = min(now, datetime.combine(day, time(12), tzinfo=timezone.utc))
        except ValueError:
            errors.append(_("As of: %(text)s is not a date (YYYY-MM-DD); showing today.", text=repr(text)))
    weeks = None
    text = (request.args.get("holdout_weeks") or "").strip()
    if text:
        if text.isdigit() and 1 <= int(text) <= 5200:
            weeks = int(text)
        else:
            errors.append(_("Weeks held out: %(text)s is not a whole number of weeks from 1 to 5200; "
                             "holding out the last quarter of the history.", text=repr(text)))
    result = checking.check(as_of, weeks)
    return render_template("insight/model_check.html", check=result, errors=errors,
                           as_of_text=request.args.get("as_of") or "", chosen_weeks=weeks,
                           )
