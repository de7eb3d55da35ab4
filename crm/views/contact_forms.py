"""The forms of the contact pages: a contact, an interaction, and shop-local times."""
from __future__ import annotations

from datetime import datetime, timezone

from flask_wtf import FlaskForm
from wtforms import BooleanField, DateTimeLocalField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from crm.models import DIRECTIONS, INTERACTION_KINDS, SENTIMENTS
from crm.views.formatting import local, shop_zone

KIND_LABELS = {
    "call": "Call", "email": "Email", "chat": "Chat", "meeting": "Meeting", "note": "Note",
    "complaint": "Complaint", "testimonial": "Testimonial", "review": "Review", "survey": "Survey answer",
    "sms": "SMS", "social": "Social", "cart": "Abandoned cart",
}
# Kinds a person logs; an abandoned cart comes from the shop.
LOGGED_KINDS = tuple(kind for kind in INTERACTION_KINDS if kind != "cart")
CHANNELS = ("phone", "email", "chat", "shop", "in person", "video", "whatsapp", "instagram", "facebook", "letter")
LOCAL_INPUT = "%Y-%m-%dT%H:%M"


def to_utc(value: datetime | None) -> datetime | None:
    """Return a naive time typed in the shop's zone as aware UTC."""
    if value is None:
        return None
    return value.replace(tzinfo=shop_zone()).astimezone(timezone.utc)


def local_now() -> datetime:
    """Return the current time in the shop's zone, naive, to the minute (for a datetime-local input)."""
    return local(datetime.now(timezone.utc)).replace(tzinfo=None, second=0, microsecond=0)


def prefix_ids(form: FlaskForm, prefix: str) -> FlaskForm:
    """Give a form's fields unique element ids (several forms on one page) while their
    names stay the same."""
    for field in form:
        field.id = f"{prefix}{field.id}"
    return form


class BlankableSelectField(SelectField):
    """A select whose empty choice stands for a value that is not set (None)."""

    def process_data(self, value):
        super().process_data("" if value is None else value)


class InteractionForm(FlaskForm):
    kind = SelectField("Kind", choices=[SelectChoice(kind, KIND_LABELS[kind]) for kind in LOGGED_KINDS])
    direction = SelectField("Direction", choices=[SelectChoice(d, d.capitalize()) for d in DIRECTIONS],
                            default="inbound")
    channel = StringField("Channel", validators=[Optional(), Length(max=40)])
    subject = StringField("Subject", validators=[Optional(), Length(max=300)])
    body = TextAreaField("What was said", validators=[Optional()])
    outcome = StringField("Outcome", validators=[Optional(), Length(max=300)])
    sentiment = BlankableSelectField("Sentiment", choices=[SelectChoice("", "—")] + [
        SelectChoice(s, s.capitalize()) for s in SENTIMENTS], default="")
    occurred_at = DateTimeLocalField("When", format=LOCAL_INPUT, validators=[Optional()])

    def for_kind(self, kind: str | None) -> InteractionForm:
        """Offer the kind an existing interaction has even when people do not log it (a cart)."""
        if kind and kind not in LOGGED_KINDS:
            self.kind.choices = [*self.kind.choices, SelectChoice(kind, KIND_LABELS.get(kind, kind))]
        return self

    def values(self) -> dict:
        """Return the fields as the interactions service takes them (the time in UTC)."""
        return {
            "kind": self.kind.data, "direction": self.direction.data, "channel": self.channel.data or None,
            "subject": self.subject.data or "", "body": self.body.data or "", "outcome": self.outcome.data or None,
            "sentiment": self.sentiment.data or None, "occurred_at": to_utc(self.occurred_at.data),
        }


class ContactForm(FlaskForm):
    first_name = StringField("First name")
    last_name = StringField("Last name")
    email = StringField("Email", render_kw={"type": "email", "autocomplete": "off"})
    phone = StringField("Phone", render_kw={"type": "tel"})
    company = StringField("Company")
    title = StringField("Job title")
    birthday = StringField("Birthday", render_kw={"type": "date"})
    address = StringField("Address")
    city = StringField("City")
    country = StringField("Country", render_kw={"maxlength": 2, "placeholder": "DE"})
    owner_id = BlankableSelectField("Owner", choices=[SelectChoice("", "Nobody")], default="")
    consent = BooleanField("Agreed to marketing messages")
    consent_source = StringField("Where consent was given")
    do_not_contact = BooleanField("Do not contact")
    stay_in_touch_days = StringField("Stay in touch every … days", render_kw={"type": "number", "min": 1})
    tags = StringField("Tags", render_kw={"placeholder": "vip, wholesale"})

    def with_owners(self, owners) -> ContactForm:
        self.owner_id.choices = [SelectChoice("", "Nobody")] + [SelectChoice(str(user.id), user.name) for user in owners]
        return self

    def values(self) -> dict:
        """Return the fields as the contacts service takes them (it validates and normalises)."""
        values = {name: getattr(self, name).data for name in (
            "first_name", "last_name", "email", "phone", "company", "title", "birthday", "address", "city",
            "country", "consent", "consent_source", "do_not_contact", "stay_in_touch_days",
        )}
        values["owner_id"] = int(self.owner_id.data) if self.owner_id.data else None
        for name in ("company", "title", "address", "city", "consent_source"):
            values[name] = (values[name] or "").strip() or None
        return values

    @classmethod
    def for_contact(cls, contact, owners, **kwargs) -> ContactForm:
        form = cls(obj=contact, **kwargs).with_owners(owners)
        if not form.is_submitted():
            form.birthday.data = contact.birthday.isoformat() if contact.birthday else ""
            form.email.data = contact.email_display or contact.email or ""
            form.stay_in_touch_days.data = str(contact.stay_in_touch_days or "")
        return form
