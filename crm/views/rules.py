"""Settings → rules: the journey, health, score and to-do rules an admin tunes, and "refresh now"."""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask_babel import force_locale, ngettext
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from flask_wtf import FlaskForm
from wtforms import BooleanField, FloatField, IntegerField, SelectField, SelectMultipleField
from wtforms.validators import InputRequired
from wtforms.widgets import CheckboxInput, ListWidget

from crm.extensions import db, htmx
from crm.services.people import tasks as task_service
from crm.services.rules import freshness
from crm.services.rules import settings as rule_settings
from crm.services.shared.errors import ValidationError
from crm.views.access import access
from crm.views.forms import apply_errors, choices

bp = Blueprint("rules", __name__, url_prefix="/settings/rules")

SECTION_TITLES = {
    "journey": _l("Journey stages"),
    "health": _l("Customer health"),
    "scoring": _l("Lead score"),
    "retention": _l("To-do rules"),
}
RULE_TITLES = {
    "followup_first_order": _l("Satisfaction call after the first order"),
    "testimonial_request": _l("Ask a happy repeat customer for a testimonial"),
    "winback": _l("Win back a valuable customer who is slipping away"),
    "birthday": _l("Birthday greeting"),
    "abandoned_cart": _l("Follow up an abandoned cart"),
    "replenishment": _l("Replenishment reminder"),
    "survey": _l("Satisfaction survey"),
    "problem_followup": _l("Satisfaction call about a problem (a complaint or a negative interaction)"),
    "hot_lead": _l("Call a hot lead"),
    "stay_in_touch": _l("Stay in touch (contacts with a cadence)"),
}
GROUP_TITLES = {"weights": _l("Points per rule (negative numbers take points away)"), **RULE_TITLES}
# Labels by dotted path, then by the setting's own name.
LABELS = {
    "conversion_window_days": _l("First-purchase window (days in conversion after the first paid order)"),
    "repeat_order_is_retention": _l("A second paid order moves a customer to retention"),
    "advocacy_kinds": _l("Interactions that make a customer an advocate"),
    "advocacy_survey_min_orders": _l("Paid orders before a positive survey makes an advocate"),
    "not_engagement_kinds": _l("Inbound interactions that do not count as engagement"),
    "engagement_kinds": _l("Interactions that count as engagement in any direction"),
    "at_risk_after_gaps": _l("At risk after this many usual gaps without an order"),
    "lapsed_after_gaps": _l("Lapsed after this many usual gaps without an order"),
    "fallback_gap_days": _l("Usual gap while the shop has no repeat customers (days)"),
    "min_gap_days": _l("A usual gap is never shorter than (days)"),
    "use_p_alive": _l("Judge repeat customers by the predicted chance they still buy"),
    "p_alive_at_risk": _l("At risk below this chance (0 to 1)"),
    "p_alive_lapsed": _l("Lapsed below this chance (0 to 1)"),
    "weights.reachable": _l("Has an email address or a phone number"),
    "weights.consent": _l("Agreed to hear from the shop"),
    "weights.company": _l("Works at a company"),
    "weights.engagement_inbound": _l("Each inbound interaction (before decay)"),
    "weights.engagement_meeting": _l("Each meeting (before decay)"),
    "weights.cart": _l("Abandoned a cart recently"),
    "weights.open_question": _l("Asked a question nobody answered yet"),
    "weights.rfm_per_quintile": _l("Per quintile of recency, frequency and money spent"),
    "weights.complaint": _l("Complaint or negative interaction not resolved (a problem is not buying intent)"),
    "weights.do_not_contact": _l("Marked do not contact"),
    "engagement_half_life_days": _l("Engagement half-life (an interaction this many days old counts half)"),
    "engagement_max_points": _l("Most points engagement can add"),
    "cart_window_days": _l("An abandoned cart counts for (days)"),
    "question_window_days": _l("An unanswered question counts for (days)"),
    "question_kinds": _l("Interactions that can be an open question"),
    "hot_threshold": _l("Hot lead from this score (a call to-do for sales)"),
    "negative_is_a_problem": _l("A negative interaction of any kind is a problem like a complaint: no engagement or "
                                 "open-question points, the complaint penalty until it is resolved"),
    "within_days": _l("Only for problems reported in the last (days)"),
    "enabled": _l("On"),
    "delay_days": _l("Due this many days after the occasion"),
    "grace_days": _l("Still made for this many days after it falls due"),
    "assignee": _l("Who gets it"),
    "role": _l("Role that takes turns"),
    "min_orders": _l("At least this many paid orders"),
    "max_days_since_order": _l("At most this many days since the last order"),
    "complaint_lookback_days": _l("No complaint or negative feedback in the last (days)"),
    "testimonial_kinds": _l("Interactions that count as a testimonial already given"),
    "health": _l("Health that calls for it"),
    "days_ahead": _l("Due this many days before the birthday"),
    "delay_hours": _l("Due this many hours after the cart was left"),
    "max_age_days": _l("Only for carts younger than (days)"),
    "days_before": _l("Due this many days before the usual gap is up"),
    "after_order_count": _l("After this paid order (1st, 2nd, 3rd …)"),
}
ASSIGNEE_CHOICES = [("owner", _l("The contact's owner, else the role takes turns")),
                    ("round_robin", _l("The role takes turns"))]


class MultiCheckboxField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


def field_name(path: str) -> str:
    return path.replace(".", "__")


def _label(path: str) -> str:
    return LABELS.get(path) or LABELS.get(path.rsplit(".", 1)[-1]) or path.rsplit(".", 1)[-1].replace("_", " ").capitalize()


def _field(path: str, default: Any):
    key, label = path.rsplit(".", 1)[-1], _label(path)
    if key == "assignee":
        return SelectField(label, choices=choices(ASSIGNEE_CHOICES))
    if key == "role":
        from crm.views.users import ROLE_NAMES

        return SelectField(label, choices=choices((r, ROLE_NAMES.get(r, r.capitalize())) for r in rule_settings.ASSIGNABLE_ROLES))
    if isinstance(default, bool):
        return BooleanField(label)
    if isinstance(default, int):
        return IntegerField(label, validators=[InputRequired(_l("Give a whole number."))])
    if isinstance(default, float):
        return FloatField(label, validators=[InputRequired(_l("Give a number."))])
    if isinstance(default, (list, tuple)):
        return MultiCheckboxField(label, choices=choices((c, c.replace("_", " ")) for c in rule_settings.LIST_CHOICES[key]))
    raise ValueError(f"no form field for setting {path}")


def _leaves(settings: Mapping[str, Any], prefix: str = "") -> list[tuple[str, Any]]:
    leaves = []
    for key, value in settings.items():
        if isinstance(value, Mapping):
            leaves.extend(_leaves(value, f"{prefix}{key}."))
        else:
            leaves.append((f"{prefix}{key}", value))
    return leaves


def _layout(kind: str) -> list[tuple[str | None, list[str]]]:
    """Return the form's groups: (title or None, [field names]) in the defaults' order."""
    groups: dict[str | None, list[str]] = {}
    for path, _default in _leaves(rule_settings.DEFAULTS[kind]):
        group = path.split(".")[0] if "." in path else None
        groups.setdefault(group, []).append(field_name(path))
    return [(GROUP_TITLES.get(g, g) if g else None, names) for g, names in groups.items()]


FORMS: dict[str, type[FlaskForm]] = {
    kind: type(f"{kind.title()}RulesForm", (FlaskForm,),
               {field_name(path): _field(path, default) for path, default in _leaves(defaults)})
    for kind, defaults in rule_settings.DEFAULTS.items()
}
LAYOUTS = {kind: _layout(kind) for kind in rule_settings.KINDS}


def _form(kind: str, **kwargs) -> FlaskForm:
    return FORMS[kind](prefix=kind, **kwargs)


def _filled_form(kind: str) -> FlaskForm:
    """Return the form holding the shop's current settings."""
    current = {field_name(path): value for path, value in _leaves(rule_settings.load(kind))}
    return _form(kind, formdata=None, data=current)


def _values(kind: str, form: FlaskForm) -> dict[str, Any]:
    """Return the form's values shaped like the settings."""
    values: dict[str, Any] = {}
    for path, _default in _leaves(rule_settings.DEFAULTS[kind]):
        *groups, key = path.split(".")
        target = values
        for group in groups:
            target = target.setdefault(group, {})
        target[key] = form[field_name(path)].data
    return values


def _page(forms: dict[str, FlaskForm], **context):
    from crm.views.flows import page_context

    return render_template("rules/index.html", forms=forms, layouts=LAYOUTS, titles=SECTION_TITLES,
                           kinds=rule_settings.KINDS, **page_context(), **context)


def _switched_off_with_open_tasks(rules: list[str]) -> list[tuple[str, str, int]]:
    """Return (rule, title, open to-dos) for each switched-off rule that still has open to-dos."""
    asks = []
    for rule in rules:
        if rule in RULE_TITLES and not rule_settings.load("retention")[rule]["enabled"]:
            count = task_service.open_rule_task_count(rule)
            if count:
                asks.append((rule, RULE_TITLES[rule], count))
    return asks


@bp.route("/")
@access("admin")
def index():
    """Show every rule setting, editable, and the refresh button."""
    return _page({kind: _filled_form(kind) for kind in rule_settings.KINDS},
                 asks=_switched_off_with_open_tasks(request.args.getlist("ask")))


@bp.route("/close-tasks/<rule>", methods=["POST"])
@access("admin")
def close_tasks(rule: str):
    """Close the open to-dos of a rule that was switched off (the admin said yes)."""
    if rule not in RULE_TITLES:
        return redirect(url_for("rules.index"))
    with force_locale("en"):  # the reason is stored with the to-dos
        reason = f"rule switched off: {RULE_TITLES[rule]}"
    closed = task_service.close_rule_tasks(rule, reason, current_user.id)
    db.session.commit()
    flash(ngettext("%(num)d open to-do of “%(rule)s” closed.", "%(num)d open to-dos of “%(rule)s” closed.", closed,
                   rule=RULE_TITLES[rule]), "success")
    return redirect(url_for("rules.index") + "#rules-retention")


@bp.route(f"/<any({', '.join(rule_settings.KINDS)}):kind>", methods=["POST"])
@access("admin")
def save(kind: str):
    """Save one kind of rule settings; the form comes back in place with the reasons for any refusal."""
    form = _form(kind)
    saved = False
    was_on = ({rule for rule, c in rule_settings.load("retention").items() if c["enabled"]}
              if kind == "retention" else set())
    if form.validate():
        try:
            rule_settings.save(kind, _values(kind, form), current_user.id)
        except ValidationError as error:
            apply_errors(form, ValidationError(error.message, {field_name(p): r for p, r in error.fields.items()}))
        else:
            freshness.queue_refresh()
            db.session.commit()
            saved = True
    notice = _("%(section)s saved. Everyone is being refreshed with the new rules in the background.",
               section=SECTION_TITLES[kind])
    asks = _switched_off_with_open_tasks(sorted(was_on)) if saved else []
    if htmx.fragment:
        return render_template("rules/_form.html", kind=kind, form=form, layout=LAYOUTS[kind],
                               title=SECTION_TITLES[kind], notice=notice if saved else None, asks=asks)
    if saved:
        flash(notice, "success")
        return redirect(url_for("rules.index", ask=[rule for rule, _t, _n in asks]) +
                        ("#rules-retention" if asks else ""))
    forms = {k: form if k == kind else _filled_form(k) for k in rule_settings.KINDS}
    return _page(forms)


@bp.route("/refresh", methods=["POST"])
@access("admin")
def refresh():
    """Queue the refresh of every contact (the worker runs it; never inside the request)."""
    from crm.services.jobs.maintenance import refresh_everyone

    queued = refresh_everyone()
    db.session.commit()
    flash(_("Refresh queued (job #%(id)s): the worker runs the predictions and the rules for everyone; "
            "Settings → Jobs shows how far it got.", id=queued.id), "success")
    return redirect(url_for("rules.index"))
