"""Email templates: the defaults shipped for every retention rule and purpose, loading and saving.

A template missing from the table is its shipped default, so a fresh shop can send at once and
"reset to default" is deleting the row. Saving checks that the subject and body compile and use
only the documented variables, and audits the change.
"""
from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select

from crm.extensions import db
from crm.models import EmailTemplate
from crm.services import audit
from crm.services.email import render
from crm.services.errors import NotFound, ValidationError

# Not marketing: a personal message and an order confirmation need no marketing consent.
TRANSACTIONAL = frozenset({"personal", "order_thanks"})

_SIGN_OFF = "\n\nWarm regards,  \n{{ sender.name or shop.name }}\n"

DEFAULTS: dict[str, tuple[str, str, str]] = {
    # key: (name, subject, body)
    "followup_first_order": (
        "After the first order", "How is your order {{ order.number }}, {{ contact.first_name }}?",
        "Hello {{ contact.first_name or 'there' }},\n\nThank you again for your first order with {{ shop.name }}. "
        "We hope everything arrived safe and sound:\n\n{% for line in order.lines %}- {{ line.quantity }} × {{ line.name }}\n{% endfor %}"
        "\n\nIf anything is not as it should be, just reply to this email and we will put it right." + _SIGN_OFF),
    "testimonial_request": (
        "Testimonial request", "Would you share a few words about {{ shop.name }}?",
        "Hello {{ contact.first_name or 'there' }},\n\nYou have ordered from us {{ contact.order_count }} times now, "
        "and that means a lot to a small shop like ours.\n\nWould you tell us, in a sentence or two, what you like "
        "about {{ shop.name }}? Simply reply to this email; with your permission we would love to quote you." + _SIGN_OFF),
    "winback": (
        "Win-back", "We miss you, {{ contact.first_name }}",
        "Hello {{ contact.first_name or 'there' }},\n\nIt has been a while since your last order"
        "{% if order.placed_at %} on {{ order.placed_at|date }}{% endif %}. A lot has happened at {{ shop.name }} since, "
        "and we would love to see you again.\n\nIs there anything we could do better? A reply goes straight to us." + _SIGN_OFF),
    "birthday": (
        "Birthday greeting", "Happy birthday, {{ contact.first_name }}!",
        "Hello {{ contact.first_name or 'there' }},\n\nEveryone at {{ shop.name }} wishes you a very happy birthday "
        "and a wonderful year ahead." + _SIGN_OFF),
    "abandoned_cart": (
        "Abandoned cart", "You left something in your cart",
        "Hello {{ contact.first_name or 'there' }},\n\nYou were looking at a few things at {{ shop.name }} and did not "
        "finish your order. Your cart is waiting for you: [back to the shop]({{ shop.url }}).\n\nQuestions? Just reply." + _SIGN_OFF),
    "replenishment": (
        "Replenishment reminder", "Running low, {{ contact.first_name }}?",
        "Hello {{ contact.first_name or 'there' }},\n\nBy our count you may soon run out of what you ordered last time"
        "{% if order.lines %}:\n\n{% for line in order.lines %}- {{ line.name }}\n{% endfor %}\n\n{% else %}.\n\n{% endif %}"
        "Order again at [{{ shop.name }}]({{ shop.url }}) whenever it suits you." + _SIGN_OFF),
    "survey": (
        "Survey", "Two minutes for {{ shop.name }}?",
        "Hello {{ contact.first_name or 'there' }},\n\nHow are we doing? Reply with a number from 1 (poor) to 10 "
        "(excellent) and, if you like, one thing we should change." + _SIGN_OFF),
    "stay_in_touch": (
        "Stay in touch", "News from {{ shop.name }}",
        "Hello {{ contact.first_name or 'there' }},\n\nWe just wanted to say hello and ask how you are. "
        "Is there anything we can help you with?" + _SIGN_OFF),
    "welcome": (
        "Welcome", "Welcome to {{ shop.name }}",
        "Hello {{ contact.first_name or 'there' }},\n\nWelcome to {{ shop.name }}! We are glad you are here. "
        "Reply to this email any time: a person reads every message." + _SIGN_OFF),
    "order_thanks": (
        "Thanks for the order", "Thank you for your order {{ order.number }}",
        "Hello {{ contact.first_name or 'there' }},\n\nThank you for your order {{ order.number }}"
        "{% if order.total %} of {{ order.total|money(order.currency) }}{% endif %}.\n\n"
        "{% for line in order.lines %}- {{ line.quantity }} × {{ line.name }}\n{% endfor %}" + _SIGN_OFF),
    "personal": ("Personal message", "", "Hello {{ contact.first_name or 'there' }},\n\n" + _SIGN_OFF),
}
# The template each rule to-do sends (to-do kind -> template key).
TASK_TEMPLATES = {
    "followup_call": "followup_first_order", "testimonial_request": "testimonial_request", "winback": "winback",
    "birthday": "birthday", "cart_followup": "abandoned_cart", "replenishment": "replenishment",
    "survey": "survey", "stay_in_touch": "stay_in_touch", "email": "personal",
}
SUBJECT_LIMIT = 300
BODY_LIMIT = 50_000


@dataclass
class Template:
    key: str
    name: str
    subject: str
    body: str
    customised: bool

    @property
    def marketing(self) -> bool:
        return is_marketing(self.key)


def is_marketing(key: str | None) -> bool:
    """Return whether a template is marketing (needs consent and carries one-click unsubscribe)."""
    return key not in TRANSACTIONAL


def get(key: str) -> Template:
    """Return the template in force for a key (the shop's own, else the default), or raise NotFound."""
    if key not in DEFAULTS:
        raise NotFound(f"There is no email template called {key!r}.")
    row = db.session.scalar(select(EmailTemplate).where(EmailTemplate.key == key))
    name, subject, body = DEFAULTS[key]
    if row is not None:
        return Template(key, row.name or name, row.subject, row.body, True)
    return Template(key, name, subject, body, False)


def all_templates() -> list[Template]:
    rows = {row.key: row for row in db.session.scalars(select(EmailTemplate))}
    result = []
    for key, (name, subject, body) in DEFAULTS.items():
        row = rows.get(key)
        result.append(Template(key, name, row.subject, row.body, True) if row else Template(key, name, subject, body, False))
    return result


def clean(subject: str, body: str, shop: dict | None = None) -> tuple[str, str]:
    """Return the subject and body, or raise ValidationError naming the line and the reason."""
    subject, body = str(subject or ""), str(body or "").replace("\r\n", "\n")
    errors: dict[str, str] = {}
    if "\n" in subject.strip() or "\r" in subject:
        errors["subject"] = "Keep the subject on one line."
    if len(subject) > SUBJECT_LIMIT:
        errors["subject"] = f"Keep the subject under {SUBJECT_LIMIT} characters."
    if not body.strip():
        errors["body"] = "Write the message."
    if len(body) > BODY_LIMIT:
        errors["body"] = f"Keep the message under {BODY_LIMIT:,} characters."
    if not errors:
        try:
            render.check(subject.strip(), body, shop)
        except render.TemplateProblem as problem:
            where = f"Line {problem.line}: " if problem.line else ""
            errors["subject" if problem.part == "Subject" else "body"] = where + problem.reason
    if errors:
        raise ValidationError(fields=errors)
    return subject.strip(), body


def save(key: str, subject: str, body: str, actor_id: int | None, shop: dict | None = None) -> Template:
    """Store the shop's version of a template after checking it; audited. Returns the template."""
    current = get(key)
    subject, body = clean(subject, body, shop)
    if key != "personal" and not subject:
        raise ValidationError(fields={"subject": "Give the message a subject."})
    row = db.session.scalar(select(EmailTemplate).where(EmailTemplate.key == key))
    if row is None:
        row = EmailTemplate(key=key, name=current.name, subject=subject, body=body, marketing=is_marketing(key))
        db.session.add(row)
    row.subject, row.body, row.updated_by_id = subject, body, actor_id
    db.session.flush()
    audit.record("update", "email_template", row.id, user_id=actor_id,
                 before={"key": key, "subject": current.subject, "body": current.body},
                 after={"key": key, "subject": subject, "body": body})
    return get(key)


def reset(key: str, actor_id: int | None) -> Template:
    """Go back to the shipped default (audited)."""
    current = get(key)
    row = db.session.scalar(select(EmailTemplate).where(EmailTemplate.key == key))
    if row is not None:
        audit.record("reset", "email_template", row.id, user_id=actor_id,
                     before={"key": key, "subject": current.subject, "body": current.body},
                     after={"key": key, "subject": DEFAULTS[key][1], "body": DEFAULTS[key][2]})
        db.session.delete(row)
        db.session.flush()
    return get(key)
