"""Settings → Rules → Emails the rules send: each rule's flow (to-do, email or both, segment,
follow-up days) and the shop-wide pacing (cap and sending window)."""
from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from sqlalchemy import func, select

from crm.extensions import db
from crm.models import FlowSend
from crm.services.flows import config, runner
from crm.services.shared.errors import ValidationError
from crm.views.access import access
from crm.views.email import TEMPLATE_NAMES

bp = Blueprint("flows", __name__, url_prefix="/settings/flows")

FIELD_LABELS = {"send_days": _l("Days after a send"), "click_days": _l("Days after a click"), "action": _l("Action"),
                "followup_days": _l("Follow-up days"), "segment_id": _l("Segment"), "cap": _l("At most"),
                "period_days": _l("In any (days)"), "window_start": _l("Send from"), "window_end": _l("Send until")}
ACTIONS = {"todo": _l("Make a to-do (today)"), "email": _l("Send the email"),
           "both": _l("Send the email, then a to-do if no reply or order")}


def _titles() -> dict[str, str]:
    """Each flow's title in the reader's language (a flow is named after its email template)."""
    return {rule: str(TEMPLATE_NAMES.get(rule, title)) for rule, title in runner.TITLES.items()}


def _actions() -> dict[str, str]:
    return {key: str(ACTIONS.get(key, words)) for key, words in config.ACTIONS.items()}


def page_context() -> dict[str, Any]:
    """What the rules page shows about flows: the settings, the segments and what each flow did."""
    from crm.services.campaigns import figures
    from crm.services.segments import store as segments

    counts: dict[str, dict[str, int]] = {}
    for flow, status, count in db.session.execute(
            select(FlowSend.flow, FlowSend.status, func.count()).group_by(FlowSend.flow, FlowSend.status)):
        counts.setdefault(flow, {})[status] = count
    return {"flows": config.flows(), "flow_titles": _titles(), "flow_actions": _actions(),
            "flow_pacing": config.pacing_values(), "flow_counts": counts, "flow_segments": segments.all_segments(),
            "attribution": figures.windows()}


@bp.app_template_global()
def email_results() -> dict[str, Any]:
    """The dashboard card: what the flows and newsletters earned, the NPS by month, the latest comments."""
    from crm.services.campaigns import figures
    from crm.services.flows import answers

    flows = {rule: figures.flow(rule) for rule, flow in config.flows().items() if flow.sends}
    return {"flows": flows, "nps": answers.nps(), "comments": answers.latest_comments(), "titles": _titles()}


def _refused(error: ValidationError) -> None:
    for name, reason in error.fields.items():
        flash(_("%(field)s: %(reason)s", field=FIELD_LABELS.get(name, name), reason=reason), "error")


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
        flash(_("%(flow)s: %(action)s.", flow=_titles()[rule], action=_actions()[flow.action].lower()), "success")
    return redirect(url_for("rules.index", _anchor="flows"))


@bp.route(f"/<any({', '.join(config.RULES)}):rule>")
@access("read")
def show(rule: str):
    """One flow: what it does and what its emails earned, week by week."""
    from crm.models import utcnow
    from crm.services.campaigns import figures

    weeks = figures.flow_weeks(rule, utcnow().date())
    return render_template("flows/show.html", rule=rule, flow=config.flows()[rule], title=_titles()[rule],
                           actions=_actions(), weeks=weeks, total=figures.flow(rule))


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
        flash(_("At most %(cap)s marketing emails per contact in any %(days)s days, sent between %(start)s and %(end)s.",
                cap=values["cap"], days=values["period_days"], start=values["window_start"], end=values["window_end"]),
              "success")
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
        flash(_("Orders count within %(click)s days of a click or %(send)s of a send; click tracking on.",
                click=values["click_days"], send=values["send_days"]) if values["track_clicks"]
              else _("Orders count within %(click)s days of a click or %(send)s of a send; click tracking off.",
                     click=values["click_days"], send=values["send_days"]), "success")
    return redirect(url_for("rules.index", _anchor="flows"))
