"""The shop settings form: on Settings → Shop and, before the admin account, on /setup."""
from __future__ import annotations

from zoneinfo import available_timezones

from flask_babel import lazy_gettext as _l
from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField
from wtforms.widgets import CheckboxInput, ListWidget

from crm.services import shop
from crm.views.forms import choices

ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "US/"))) + ["UTC"]
DAY_LABELS = {"mon": _l("Mon"), "tue": _l("Tue"), "wed": _l("Wed"), "thu": _l("Thu"), "fri": _l("Fri"), "sat": _l("Sat"),
              "sun": _l("Sun")}
# The shop service's reasons (worded in English), in the reader's language.
REASONS = {
    "Give the shop's name.": _l("Give the shop's name."),
    "Keep the name under 100 characters.": _l("Keep the name under 100 characters."),
    "Choose a time zone from the list, e.g. Europe/Amsterdam.": _l("Choose a time zone from the list, e.g. Europe/Amsterdam."),
    "Give a three-letter currency code, e.g. EUR.": _l("Give a three-letter currency code, e.g. EUR."),
    "Choose a language from the list.": _l("Choose a language from the list."),
    "Give a time such as 09:00.": _l("Give a time such as 09:00."),
    "Closing time must be after opening time.": _l("Closing time must be after opening time."),
    "Tick at least one day the shop is open.": _l("Tick at least one day the shop is open."),
}


class DaysField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ShopForm(FlaskForm):
    shop_name = StringField(_l("Shop name"))
    timezone = SelectField(_l("Time zone"), choices=choices((z, z.replace("_", " ")) for z in ZONES), validate_choice=False)
    currency = StringField(_l("Currency"), description=_l("Three letters, e.g. EUR, USD, GBP."))
    language = SelectField(_l("Default language"), choices=choices(shop.LANGUAGES.items()), validate_choice=False)
    opens = StringField(_l("Opens"), render_kw={"type": "time"})
    closes = StringField(_l("Closes"), render_kw={"type": "time"})
    days = DaysField(_l("Open on"), choices=choices(DAY_LABELS.items()), validate_choice=False)

    def fill(self, settings: shop.ShopSettings) -> None:
        """Show these settings in the form."""
        self.shop_name.data, self.timezone.data, self.currency.data = settings.name, settings.timezone, settings.currency
        self.language.data, self.opens.data, self.closes.data = settings.language, settings.opens, settings.closes
        self.days.data = list(settings.days)

    def values(self) -> dict:
        return {"name": self.shop_name.data, "timezone": self.timezone.data, "currency": self.currency.data,
                "language": self.language.data, "opens": self.opens.data, "closes": self.closes.data,
                "days": self.days.data or []}

    def apply_errors(self, fields: dict[str, str]) -> None:
        for name, reason in fields.items():
            field = getattr(self, "shop_name" if name == "name" else name, None)
            if field is not None:
                field.errors = list(field.errors) + [str(REASONS.get(reason, reason))]
