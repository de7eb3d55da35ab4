"""The templates' fast paths (translated strings, row links, formatted values) give what the slow
ones gave: the same text, escaped the same way, the same links, in either language."""
from datetime import date, datetime, timezone
from decimal import Decimal

import pytest
from flask import render_template_string, url_for
from jinja2 import Environment

DUTCH = {"Accept-Language": "nl-NL,nl;q=0.9"}
ENGLISH = {"Accept-Language": "en-GB,en;q=0.9"}

# Strings from the catalogue (translated in Dutch) and not, with and without values, in a loop.
TEMPLATES = [
    "{% for _i in range(2) %}{{ _('Contacts') }}|{% endfor %}",
    "{{ _('Tick %(name)s', name=name) }}",
    "{% for n in (1, 2) %}{{ ngettext('%(num)s to-do', '%(num)s to-dos', n) }}|{% endfor %}",
    "{{ ngettext('%(num)d to-do', '%(num)d to-dos', 3) }}",
    "{{ _('<a href=\"%(url)s\">Add the first one</a>.', url=url) }}",
    "{{ _('A string not in any catalogue, 100%% sure') }}",
    "{{ _('Done: %(outcome)s', outcome=name) }}",
    "{% autoescape false %}{{ _('Tick %(name)s', name=name) }}{% endautoescape %}",
    "{{ gettext('Snooze') }} {{ pgettext('a context', 'Snooze') }}",
]


@pytest.mark.parametrize("headers", [ENGLISH, DUTCH])
def test_translated_strings_read_and_escape_as_jinjas_own_gettext(app, headers):
    """The templates' _() and ngettext take the evaluation context only (Jinja's own copied the
    template's context for every string in a loop); each template renders exactly as Jinja's
    i18n extension renders it with the same translations."""
    from crm.views.languages import request_translations

    values = {"name": "<b>Anna & Co</b>", "url": "/contacts/new?x=1&y=2"}
    with app.test_request_context(headers=headers):
        translations = request_translations()
        reference = Environment(autoescape=True, extensions=["jinja2.ext.i18n"])
        reference.install_gettext_translations(translations, newstyle=True)
        for source in TEMPLATES:
            ours = render_template_string(source, **values)
            assert ours == reference.from_string(source).render(**values), source
            assert render_template_string(source, **values) == ours  # kept, the same again
        if headers is DUTCH:
            assert render_template_string(TEMPLATES[0]) == "Contacten|Contacten|"
            assert render_template_string(TEMPLATES[1], **values) == "&lt;b&gt;Anna &amp; Co&lt;/b&gt; aanvinken"


@pytest.mark.parametrize("script_root", ["", "/crm"])
def test_row_links_are_the_links_url_for_builds(app, script_root):
    """A row's link put together from the page's one built link is the link url_for builds,
    under a prefix too, with query values, and for what is not a plain id."""
    from crm.views.formatting import contact_url, row_url

    cases = [
        ("tasks.detail", "task_id", {}),
        ("tasks.action_form", "task_id", {"action": "snooze", "bulk": 1}),
        ("tasks.action_form", "task_id", {"action": "dismiss", "bulk": None}),
        ("contacts.show", "contact_id", {}),
        ("orders.show", "order_id", {}),
        ("contacts.edit_interaction", "interaction_id", {"contact_id": 17}),
    ]
    with app.test_request_context("/", base_url="http://localhost" + script_root):
        for endpoint, key, values in cases:
            for row_id in (1, 7, 42, 7306419582463019, 123456789012):
                assert row_url(endpoint, key, row_id, **values) == url_for(endpoint, **{key: row_id}, **values)
        assert contact_url(5) == url_for("contacts.show", contact_id=5)
        assert contact_url(5).startswith(script_root + "/contacts/")
        # Not a plain int: url_for itself (a bool is no id; a string id is what url_for makes of it).
        assert row_url("contacts.edit_interaction", "interaction_id", "3", contact_id=2) == \
            url_for("contacts.edit_interaction", interaction_id="3", contact_id=2)
    with app.app_context():  # no request (an email rendered by a job): url_for's own link
        assert contact_url(5) == url_for("contacts.show", contact_id=5)


def test_formatted_values_follow_a_language_forced_within_the_page(app):
    """Money and dates are formatted with what the request's language and shop give, found once
    and kept for the page; a language forced for an email in the middle of it is followed."""
    from flask_babel import force_locale

    from crm.views.formatting import format_date, format_datetime, format_money

    day, moment = date(2026, 12, 5), datetime(2026, 12, 5, 14, 30, tzinfo=timezone.utc)
    with app.test_request_context(headers=DUTCH):
        dutch = [format_money(Decimal("1234.5")), format_date(day), format_datetime(moment), format_money(3, "SEK")]
        assert dutch == ["€\u00a01.234,50", "5 dec 2026", "5 dec 2026 14:30", "3,00 SEK"]
        with force_locale("en"):
            assert [format_money(Decimal("1234.5")), format_date(day), format_datetime(moment)] == \
                ["€1,234.50", "5 Dec 2026", "5 Dec 2026 14:30"]
        assert [format_money(Decimal("1234.5")), format_date(day), format_datetime(moment),
                format_money(3, "SEK")] == dutch
        # The same amount as a float, an int or a Decimal reads the same.
        assert format_money(1234.5) == format_money(Decimal("1234.50")) == dutch[0]
        assert format_money(-0.004) == format_money(0) == "€\u00a00,00"
