"""The worker's quick MIME build is the standard library's message, byte for byte."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from email.headerregistry import Address
from email.message import EmailMessage as MimeMessage
from email.policy import SMTP
from email.utils import format_datetime
from types import SimpleNamespace

import pytest

from crm.services.email import sending
from crm.services.email.render import one_line
from crm.services.email.settings import DEFAULTS, EmailSettings


def _reference(message, settings) -> MimeMessage:
    """sending.build as it was: email.message alone."""
    mime = MimeMessage()
    mime["From"] = settings.sender
    mime["To"] = Address(display_name=one_line(message.to_name), addr_spec=message.to_address)
    mime["Subject"] = one_line(message.subject)
    mime["Date"] = format_datetime(message.created_at)
    mime["Message-ID"] = message.message_id
    if settings.reply_to:
        mime["Reply-To"] = settings.reply_to
    if message.marketing and message.unsubscribe_url:
        mime["List-Unsubscribe"] = f"<{message.unsubscribe_url}>"
        mime["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    mime.set_content(message.text_body)
    mime.add_alternative(message.html_body, subtype="html")
    return mime


NAMES = ["", "Ann", "Ann Lee", "Doe, John", "José Müller", "O'Brien", "Zoë \"Z\" Smith", "李小龙", "A" * 90,
         "Ünïcödé " * 12]
SUBJECTS = ["Spring at Tea House", "News from Tea House", "Wilt u iets vertellen over Thee & Co?",
            "Gefeliciteerd met uw verjaardag, José!", "Long " * 30, "Ça va? — “quotes” and émojis 🍵",
            "=?utf-8?q?not_an_encoded_word?=", "x" * 200]
TEXTS = ["Hello Ann,\n\nSee you.\n", "Short", "Ünïcode line\n" * 3, "a" * 200 + "\n" + "b\n" * 30,
         "Hello\r\nWindows\r\n", "trailing spaces   \n\n-- \nTea House\n", "line\n" * 15 + "é" * 100]
HTMLS = ["<p>Hello</p>", "<!DOCTYPE html><html><body>" + "<p style=\"color: red\">x</p>" * 40 + "</body></html>",
         "<p>é</p>" * 200, "<p>" + "y" * 2000 + "</p>\n", "<p>short\nlines\n</p>\n" * 12]


def _settings(rng: random.Random) -> EmailSettings:
    values = {**DEFAULTS, "from_name": rng.choice(["Tea House", "", "Thé & Co", "Ünïcode Shop"]),
              "from_address": "hello@teahouse.example", "reply_to": rng.choice(["", "support@teahouse.example"])}
    return EmailSettings(values)


@pytest.mark.parametrize("seed", range(6))
def test_the_quick_build_is_the_standard_librarys_message(seed):
    rng = random.Random(seed)
    for i in range(60):
        settings = _settings(rng)
        message = SimpleNamespace(
            to_name=rng.choice(NAMES), to_address=rng.choice(["ann@example.com", "a.b+c@sub.example.org", "ü@example.com"]),
            subject=rng.choice(SUBJECTS), created_at=datetime(2026, 5, 1, 9, tzinfo=UTC) + timedelta(minutes=rng.randrange(3)),
            message_id=f"<crm.{i:024x}@teahouse.example>", marketing=rng.random() < 0.7,
            unsubscribe_url=rng.choice([None, f"https://crm.teahouse.example/u/tok{i}.abc_-"]),
            text_body=rng.choice(TEXTS), html_body=rng.choice(HTMLS))
        try:
            expected = _reference(message, settings)
        except (ValueError, IndexError, TypeError) as error:
            with pytest.raises(type(error)):
                sending.build(message, settings)
            continue
        built = sending.build(message, settings)
        for policy, ours in ((None, None), (SMTP, sending.SMTP_POLICY)):
            random.seed(i)
            want = expected.as_bytes(policy=policy) if policy else expected.as_bytes()
            random.seed(i)
            got = built.as_bytes(policy=ours) if ours else built.as_bytes()
            assert got == want
        assert built["Subject"] == expected["Subject"] and built["To"] == expected["To"]
        assert built.get_body(("plain",)).get_content() == expected.get_body(("plain",)).get_content()
        assert built.get_body(("html",)).get_content() == expected.get_body(("html",)).get_content()


def test_a_newline_in_a_header_is_still_refused():
    settings = EmailSettings({**DEFAULTS, "from_address": "hello@teahouse.example", "reply_to": "a@b.c\nBcc: x@y.z"})
    message = SimpleNamespace(to_name="Ann", to_address="ann@example.com", subject="Hi",
                              created_at=datetime(2026, 5, 1, tzinfo=UTC), message_id="<x@y>", marketing=False,
                              unsubscribe_url=None, text_body="t", html_body="<p>h</p>")
    with pytest.raises(ValueError):
        _reference(message, settings)
    with pytest.raises(ValueError):
        sending.build(message, settings)
