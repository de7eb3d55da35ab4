"""Settings → Rules → Emails the rules send: each rule's flow (to-do, email or both, segment,
follow-up days) and the shop-wide pacing (cap and sending window)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_login import current_user
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import FlowSend
from crm.services.errors import ValidationError
from crm.services.flows import config, runner
from crm.views.access import access

bp = Blueprint("flows", __name__, url_prefix="/settings/flows")

FIELD_LABELS = {"send_days": "Days after a send", "click_days": "Days after a click", "action": "Action", "followup_days": "Follow-up days", "segment_id": "Segment", "cap": "At most",
                "period_days": "In any (days)", "window_start": "Send from", "window_end": "Send until"}


def page_context() -> dict[str, Any]:
    """What the rules page shows about flows: the settings, the segments and what each flow did."""
    from crm.services.campaigns import figures
    from crm.services.segments import store as segments

    counts: dict[str, dict[str, int]] = {}
    for flow, status, count in db.session.execute(
            select(FlowSend.flow, FlowSend.status, func.count()).group_by(FlowSend.flow, FlowSend.status)):
        counts.setdefault(flow, {})[status] = count
    return {"flows": config.flows(), "flow_titles": runner.TITLES, "flow_actions": config.ACTIONS,
            "flow_pacing": config.pacing_values(), "flow_counts": counts, "flow_segments": segments.all_segments(),
            "attribution": figures.windows()}


@bp.app_template_global()
def email_results() -> dict[str, Any]:
    """The dashboard card: what the flows and newsletters earned, the NPS by month, the latest comments."""
    from crm.services.campaigns import figures
    from crm.services.flows import answers

    flows = {rule: figures.flow(rule) for rule, flow in config.flows().items() if flow.sends}
    return {"flows": flows, "nps": answers.nps(), "comments": answers.latest_comments(), "titles": runner.TITLES}


def _refused(error: ValidationError) -> None:
    for name, reason in error.fields.items():
        flash(f"{FIELD_LABELS.get(name, name)}: {reason}", "error")


@bp.route(f"/<any({', '.join(config.RULES)}):rule>", methods=["POST"])
@access("admin")
def save(rule: str):
    """Save what one rule does: a to-do, the email, or both."""
    try:
        flow = config.save_flow(rule, request.form.to_dict(), current_user.id)
    except ValidationError as error:
        _refused(error)
    else:
        db.session.commit()
        flash(f"{runner.TITLES[rule]}: {config.ACTIONS[flow.action].lower()}.", "success")
    return redirect(url_for("rules.index", _anchor="flows"))


@bp.route(f"/<any({', '.join(config.RULES)}):rule>")
@access("read")
def show(rule: str):
    """One flow: what it does and what its emails earned, week by week."""
    from crm.models import utcnow
    from crm.services.campaigns import figures

    weeks = figures.flow_weeks(rule, utcnow().date())
    return render_template("flows/show.html", rule=rule, flow=config.flows()[rule], title=runner.TITLES[rule],
                           actions=config.ACTIONS, weeks=weeks, total=figures.flow(rule))


@bp.route("/pacing", methods=["POST"])
@access("admin")
def pacing():
    """Save the cap on marketing email and the sending window."""
    try:
        values = config.save_pacing(request.form.to_dict(), current_user.id)
    except ValidationError as error:
        _refused(error)
    else:
        db.session.commit()
        flash(f"At most {values['cap']} marketing emails per contact in any {values['period_days']} days, "
              f"sent between {values['window_start']} and {values['window_end']}.", "success")
    return redirect(url_for("rules.index", _anchor="flows"))


@bp.route("/attribution", methods=["POST"])
@access("admin")
def attribution():
    """Save the attribution windows and whether links are tracked."""
    from crm.services.campaigns import figures

    try:
        values = figures.save_windows(request.form.to_dict(), current_user.id)
    except ValidationError as error:
        _refused(error)
    else:
        db.session.commit()
        flash(f"Orders count within {values['click_days']} days of a click or {values['send_days']} of a send; "
              f"click tracking {'on' if values['track_clicks'] else 'off'}.", "success")
    return redirect(url_for("rules.index", _anchor="flows"))
