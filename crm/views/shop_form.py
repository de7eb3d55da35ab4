"""The shop settings form: on Settings → Shop and, before the admin account, on /setup."""
from __future__ import annotations

from zoneinfo import available_timezones

from flask_wtf import FlaskForm
from wtforms import SelectField, SelectMultipleField, StringField
from wtforms.widgets import CheckboxInput, ListWidget

from crm.services import shop
from crm.views.forms import choices

ZONES = sorted(z for z in available_timezones() if "/" in z and not z.startswith(("Etc/", "SystemV/", "US/"))) + ["UTC"]
DAY_LABELS = {"mon": "Mon", "tue": "Tue", "wed": "Wed", "thu": "Thu", "fri": "Fri", "sat": "Sat", "sun": "Sun"}


class DaysField(SelectMultipleField):
    widget = ListWidget(prefix_label=False)
    option_widget = CheckboxInput()


class ShopForm(FlaskForm):
    shop_name = StringField("Shop name")
    timezone = SelectField("Time zone", choices=choices((z, z.replace("_", " ")) for z in ZONES), validate_choice=False)
    currency = StringField("Currency", description="Three letters, e.g. EUR, USD, GBP.")
    language = SelectField("Default language", choices=choices(shop.LANGUAGES.items()), validate_choice=False)
    opens = StringField("Opens", render_kw={"type": "time"})
    closes = StringField("Closes", render_kw={"type": "time"})
    days = DaysField("Open on", choices=choices(DAY_LABELS.items()), validate_choice=False)

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
                field.errors = list(field.errors) + [reason]
