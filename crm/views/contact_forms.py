"""The forms of the contact pages: a contact, an interaction, and shop-local times."""
from __future__ import annotations

from datetime import datetime, timezone

from flask_babel import lazy_gettext as _l
from flask_babel import gettext
from flask_wtf import FlaskForm
from wtforms import BooleanField, DateTimeLocalField, SelectChoice, SelectField, StringField, TextAreaField
from wtforms.validators import Length, Optional

from crm.models import DIRECTIONS, INTERACTION_KINDS, SENTIMENTS
from crm.services.shared.languages import LANGUAGES
from crm.views.formatting import local, shop_zone

KIND_LABELS = {
    "call": _l("Call"), "email": _l("Email"), "chat": _l("Chat"), "meeting": _l("Meeting"), "note": _l("Note"),
    "complaint": _l("Complaint"), "testimonial": _l("Testimonial"), "review": _l("Review"),
    "survey": _l("Survey answer"), "sms": _l("SMS"), "social": _l("Social"), "cart": _l("Abandoned cart"),
}
STAGE_LABELS = {
    "awareness": _l("Awareness"), "consideration": _l("Consideration"), "conversion": _l("Conversion"),
    "retention": _l("Retention"), "advocacy": _l("Advocacy"),
}
HEALTH_LABELS = {"active": _l("Active"), "at_risk": _l("At risk"), "lapsed": _l("Lapsed")}
DIRECTION_LABELS = {"inbound": _l("Inbound"), "outbound": _l("Outbound"), "internal": _l("Internal")}
SENTIMENT_LABELS = {"negative": _l("Negative"), "neutral": _l("Neutral"), "positive": _l("Positive")}
ORDER_STATUS_LABELS = {
    "pending": _l("Pending"), "paid": _l("Paid"), "fulfilled": _l("Fulfilled"),
    "partially_refunded": _l("Partially refunded"), "refunded": _l("Refunded"), "cancelled": _l("Cancelled"),
}
TASK_STATUS_LABELS = {"open": _l("open"), "done": _l("done"), "dismissed": _l("dismissed"), "closed": _l("closed")}


def order_status_label(status: str | None) -> str:
    """An order's status as the reader says it ("Partially refunded")."""
    return str(ORDER_STATUS_LABELS.get(status, (status or "").replace("_", " ").capitalize()))


def task_status_label(status: str | None) -> str:
    """A to-do's status, lower case as the timeline shows it ("done", "afgerond")."""
    return str(TASK_STATUS_LABELS.get(status, status or ""))


def history_count(label: str, count: int) -> str:
    """How many of a contact's records of one kind (merge.MOVED's labels), for the delete page (always
    the plural, as the page has always said)."""
    forms = {
        "orders": gettext("%(num)s orders", num=count),
        "interactions": gettext("%(num)s interactions", num=count),
        "to-dos": gettext("%(num)s to-dos", num=count),
        "stage changes": gettext("%(num)s stage changes", num=count),
        "score history": gettext("%(num)s score history", num=count),
        "external ids": gettext("%(num)s external ids", num=count),
    }
    return forms.get(label, f"{count} {label}")


# The same kinds of record as a heading (the merge page).
HISTORY_LABELS = {
    "orders": _l("Orders"), "interactions": _l("Interactions"), "to-dos": _l("To-dos"),
    "stage changes": _l("Stage changes"), "score history": _l("Score history"), "external ids": _l("External ids"),
}
# A contact's fields in the middle of a sentence (the merge page).
FIELD_LABELS = {
    "email": _l("email"), "email_display": _l("email as typed"), "first_name": _l("first name"),
    "last_name": _l("last name"), "phone": _l("phone"), "company": _l("company"), "title": _l("title"),
    "birthday": _l("birthday"), "address": _l("address"), "city": _l("city"), "country": _l("country"),
    "owner_id": _l("owner"), "stay_in_touch_days": _l("stay in touch days"),
}


def stage_label(stage: str | None) -> str:
    """A journey stage as the reader says it ("Awareness", "Oriëntatie")."""
    return str(STAGE_LABELS.get(stage, (stage or "").capitalize()))


def health_label(health: str | None) -> str:
    """A contact's health as the reader says it ("At risk", "Risico")."""
    return str(HEALTH_LABELS.get(health, (health or "").replace("_", " ").capitalize()))
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
    kind = SelectField(_l("Kind"), choices=[SelectChoice(kind, KIND_LABELS[kind]) for kind in LOGGED_KINDS])
    direction = SelectField(_l("Direction"), choices=[SelectChoice(d, DIRECTION_LABELS[d]) for d in DIRECTIONS],
                            default="inbound")
    channel = StringField(_l("Channel"), validators=[Optional(), Length(max=40)])
    subject = StringField(_l("Subject"), validators=[Optional(), Length(max=300)])
    body = TextAreaField(_l("What was said"), validators=[Optional()])
    outcome = StringField(_l("Outcome"), validators=[Optional(), Length(max=300)])
    sentiment = BlankableSelectField(_l("Sentiment"), choices=[SelectChoice("", "—")] + [
        SelectChoice(s, SENTIMENT_LABELS[s]) for s in SENTIMENTS], default="")
    occurred_at = DateTimeLocalField(_l("When"), format=LOCAL_INPUT, validators=[Optional()])

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
    first_name = StringField(_l("First name"))
    last_name = StringField(_l("Last name"))
    email = StringField(_l("Email"), render_kw={"type": "email", "autocomplete": "off"})
    phone = StringField(_l("Phone"), render_kw={"type": "tel"})
    company = StringField(_l("Company"))
    title = StringField(_l("Job title"))
    birthday = StringField(_l("Birthday"), render_kw={"type": "date"})
    address = StringField(_l("Address"))
    city = StringField(_l("City"))
    country = StringField(_l("Country"), render_kw={"maxlength": 2, "placeholder": "DE"})
    owner_id = BlankableSelectField(_l("Owner"), choices=[SelectChoice("", _l("Nobody"))], default="")
    consent = BooleanField(_l("Agreed to marketing messages"))
    consent_source = StringField(_l("Where consent was given"))
    do_not_contact = BooleanField(_l("Do not contact"))
    stay_in_touch_days = StringField(_l("Stay in touch every … days"), render_kw={"type": "number", "min": 1})
    tags = StringField(_l("Tags"), render_kw={"placeholder": _l("vip, wholesale")})
    # The language emails to the contact are written in; empty follows the shop's.
    language = BlankableSelectField(
        _l("Language for emails"), default="",
        choices=[SelectChoice("", _l("The shop's language")),
                 *[SelectChoice(code, name) for code, name in LANGUAGES.items()]])

    def with_owners(self, owners) -> ContactForm:
        self.owner_id.choices = [SelectChoice("", _l("Nobody"))] + [SelectChoice(str(user.id), user.name) for user in owners]
        return self

    def values(self) -> dict:
        """Return the fields as the contacts service takes them (it validates and normalises)."""
        values = {name: getattr(self, name).data for name in (
            "first_name", "last_name", "email", "phone", "company", "title", "birthday", "address", "city",
            "country", "consent", "consent_source", "do_not_contact", "stay_in_touch_days", "language",
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
            form.language.data = contact.language or ""
        return form
