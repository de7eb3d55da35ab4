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
from crm.services.email import render
from crm.services.shared.errors import NotFound, ValidationError
from crm.services.trust import audit

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
        "about {{ shop.name }}? [Leave a testimonial]({{ links.testimonial }}) or simply reply to this email; "
        "with your permission we would love to quote you." + _SIGN_OFF),
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
        "Hello {{ contact.first_name or 'there' }},\n\nHow likely are you to recommend {{ shop.name }} to a friend? "
        "Click a number from 0 (not at all) to 10 (very likely):\n\n"
        "{% for url in links.scores %}[{{ loop.index0 }}]({{ url }}) {% endfor %}\n\n"
        "You can add a comment on the page that opens." + _SIGN_OFF),
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
_AFSLUITING = "\n\nHartelijke groet,  \n{{ sender.name or shop.name }}\n"

# The same purposes in Dutch (u-form), shipped so a Dutch contact gets a Dutch message on day one.
# The name (the CRM's own label) is translated in the page, not here: (subject, body).
TRANSLATED: dict[str, dict[str, tuple[str, str]]] = {"nl": {
    "followup_first_order": (
        "Hoe bevalt uw bestelling {{ order.number }}, {{ contact.first_name }}?",
        "Beste {{ contact.first_name or 'klant' }},\n\nNogmaals bedankt voor uw eerste bestelling bij {{ shop.name }}. "
        "We hopen dat alles heel is aangekomen:\n\n{% for line in order.lines %}- {{ line.quantity }} × {{ line.name }}\n{% endfor %}"
        "\n\nIs er iets niet zoals het hoort? Beantwoord dan gewoon deze e-mail, dan lossen we het op." + _AFSLUITING),
    "testimonial_request": (
        "Wilt u iets vertellen over {{ shop.name }}?",
        "Beste {{ contact.first_name or 'klant' }},\n\nU heeft nu al {{ contact.order_count }} keer bij ons besteld, "
        "en dat betekent veel voor een kleine winkel als de onze.\n\nWilt u in een zin of twee vertellen wat u goed vindt "
        "aan {{ shop.name }}? [Schrijf een review]({{ links.testimonial }}) of beantwoord gewoon deze e-mail; "
        "met uw toestemming citeren we u graag." + _AFSLUITING),
    "winback": (
        "We missen u, {{ contact.first_name }}",
        "Beste {{ contact.first_name or 'klant' }},\n\nHet is alweer een tijd geleden sinds uw laatste bestelling"
        "{% if order.placed_at %} op {{ order.placed_at|date }}{% endif %}. Er is sindsdien veel gebeurd bij {{ shop.name }}, "
        "en we zouden u graag weer zien.\n\nKunnen we iets beter doen? Een antwoord komt rechtstreeks bij ons." + _AFSLUITING),
    "birthday": (
        "Gefeliciteerd met uw verjaardag, {{ contact.first_name }}!",
        "Beste {{ contact.first_name or 'klant' }},\n\nIedereen bij {{ shop.name }} wenst u een hele fijne verjaardag "
        "en een prachtig jaar." + _AFSLUITING),
    "abandoned_cart": (
        "Er ligt nog iets in uw winkelwagen",
        "Beste {{ contact.first_name or 'klant' }},\n\nU keek naar een paar artikelen bij {{ shop.name }} maar rondde uw "
        "bestelling niet af. Uw winkelwagen wacht op u: [terug naar de winkel]({{ shop.url }}).\n\nVragen? Beantwoord gewoon deze e-mail." + _AFSLUITING),
    "replenishment": (
        "Bijna op, {{ contact.first_name }}?",
        "Beste {{ contact.first_name or 'klant' }},\n\nVolgens onze berekening is wat u de vorige keer bestelde binnenkort op"
        "{% if order.lines %}:\n\n{% for line in order.lines %}- {{ line.name }}\n{% endfor %}\n\n{% else %}.\n\n{% endif %}"
        "Bestel opnieuw bij [{{ shop.name }}]({{ shop.url }}) wanneer het u uitkomt." + _AFSLUITING),
    "survey": (
        "Twee minuten voor {{ shop.name }}?",
        "Beste {{ contact.first_name or 'klant' }},\n\nHoe waarschijnlijk is het dat u {{ shop.name }} aanbeveelt aan een vriend? "
        "Klik op een cijfer van 0 (helemaal niet) tot 10 (zeer waarschijnlijk):\n\n"
        "{% for url in links.scores %}[{{ loop.index0 }}]({{ url }}) {% endfor %}\n\n"
        "Op de pagina die opent kunt u een opmerking toevoegen." + _AFSLUITING),
    "stay_in_touch": (
        "Nieuws van {{ shop.name }}",
        "Beste {{ contact.first_name or 'klant' }},\n\nWe wilden even hallo zeggen en vragen hoe het met u gaat. "
        "Kunnen we u ergens mee helpen?" + _AFSLUITING),
    "welcome": (
        "Welkom bij {{ shop.name }}",
        "Beste {{ contact.first_name or 'klant' }},\n\nWelkom bij {{ shop.name }}! Fijn dat u er bent. "
        "Beantwoord deze e-mail wanneer u maar wilt: elk bericht wordt door een mens gelezen." + _AFSLUITING),
    "order_thanks": (
        "Bedankt voor uw bestelling {{ order.number }}",
        "Beste {{ contact.first_name or 'klant' }},\n\nBedankt voor uw bestelling {{ order.number }}"
        "{% if order.total %} van {{ order.total|money(order.currency) }}{% endif %}.\n\n"
        "{% for line in order.lines %}- {{ line.quantity }} × {{ line.name }}\n{% endfor %}" + _AFSLUITING),
    "personal": ("", "Beste {{ contact.first_name or 'klant' }},\n\n" + _AFSLUITING),
}}
# The languages a template exists in: English (DEFAULTS) first, then every translated set.
LANGUAGES: tuple[str, ...] = ("en", *TRANSLATED)
assert all(set(found) == set(DEFAULTS) for found in TRANSLATED.values()), "every purpose in every language"

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
    language: str = "en"

    @property
    def marketing(self) -> bool:
        return is_marketing(self.key)


def is_marketing(key: str | None) -> bool:
    """Return whether a template is marketing (needs consent and carries one-click unsubscribe)."""
    return key not in TRANSACTIONAL


def supported(language: str | None) -> str | None:
    """Return the language (its base, "nl" for "nl_BE") when templates exist in it, else None."""
    if not language:
        return None
    code = str(language).replace("-", "_").split("_")[0].lower()
    return code if code in LANGUAGES else None


def shop_language() -> str:
    """The shop's language when templates exist in it, else English."""
    from crm.services import shop

    return supported(shop.current().language) or "en"


def language_for(contact: object | None) -> str:
    """The language a contact's email is written in: the contact's, else the shop's, else English."""
    return supported(getattr(contact, "language", None)) or shop_language()


def default(key: str, language: str = "en") -> tuple[str, str]:
    """Return the shipped (subject, body) of a template in a language (English when not shipped in it)."""
    if language in TRANSLATED:
        return TRANSLATED[language][key]
    return DEFAULTS[key][1], DEFAULTS[key][2]


def _row(key: str, language: str) -> EmailTemplate | None:
    return db.session.scalar(select(EmailTemplate).where(EmailTemplate.key == key, EmailTemplate.language == language))


def get(key: str, language: str | None = None) -> Template:
    """Return the template in force for a key and language (the shop's own, else the shipped default),
    or raise NotFound. Without a language: the shop's."""
    if key not in DEFAULTS:
        raise NotFound(f"There is no email template called {key!r}.")
    language = supported(language) or shop_language()
    row = _row(key, language)
    name = DEFAULTS[key][0]
    if row is not None:
        return Template(key, row.name or name, row.subject, row.body, True, language)
    subject, body = default(key, language)
    return Template(key, name, subject, body, False, language)


def all_templates(language: str | None = None) -> list[Template]:
    """Every template in one language (default: the shop's), customised or default."""
    language = supported(language) or shop_language()
    rows = {row.key: row for row in db.session.scalars(select(EmailTemplate).where(EmailTemplate.language == language))}
    result = []
    for key, (name, _subject, _body) in DEFAULTS.items():
        row = rows.get(key)
        if row is not None:
            result.append(Template(key, name, row.subject, row.body, True, language))
        else:
            result.append(Template(key, name, *default(key, language), False, language))
    return result


def versions(key: str) -> list[Template]:
    """A template in every language it exists in (English first)."""
    return [get(key, language) for language in LANGUAGES]


def customised_languages() -> dict[str, set[str]]:
    """For each template key, the languages the shop wrote its own version in."""
    found: dict[str, set[str]] = {}
    for key, language in db.session.execute(select(EmailTemplate.key, EmailTemplate.language)):
        found.setdefault(key, set()).add(language)
    return found


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


def save(key: str, subject: str, body: str, actor_id: int | None, shop: dict | None = None,
         language: str | None = None) -> Template:
    """Store the shop's version of a template in a language after checking it; audited. Returns the template."""
    current = get(key, language)
    language = current.language
    subject, body = clean(subject, body, shop)
    if key != "personal" and not subject:
        raise ValidationError(fields={"subject": "Give the message a subject."})
    row = _row(key, language)
    if row is None:
        row = EmailTemplate(key=key, language=language, name=current.name, subject=subject, body=body,
                            marketing=is_marketing(key))
        db.session.add(row)
    row.subject, row.body, row.updated_by_id = subject, body, actor_id
    db.session.flush()
    audit.record("update", "email_template", row.id, user_id=actor_id,
                 before={"key": key, "language": language, "subject": current.subject, "body": current.body},
                 after={"key": key, "language": language, "subject": subject, "body": body})
    return get(key, language)


def reset(key: str, actor_id: int | None, language: str | None = None) -> Template:
    """Go back to the shipped default of a language (audited)."""
    current = get(key, language)
    language = current.language
    row = _row(key, language)
    if row is not None:
        subject, body = default(key, language)
        audit.record("reset", "email_template", row.id, user_id=actor_id,
                     before={"key": key, "language": language, "subject": current.subject, "body": current.body},
                     after={"key": key, "language": language, "subject": subject, "body": body})
        db.session.delete(row)
        db.session.flush()
    return get(key, language)
