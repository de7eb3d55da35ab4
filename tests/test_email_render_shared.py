"""Messages whose HTML comes from a shared document are exactly the messages rendered alone."""
from __future__ import annotations

import random
from datetime import date
from decimal import Decimal

import pytest

from crm.services.email import render, templates

NAMES = ["Ann", "Ann", "Ann", "Ann", "javascript", "data", "", "Ann Lee", "O'Brien", "José", "Zoë-Marie", "Ann  Lee", "1. Ann", "*Ann*", "_Ann_", "Ann_",
         "amp", "Ann & Bob", "<b>Ann</b>", "Ann\u00a0Lee", "Ann.", "-Ann", "Ann Lee ", "[Ann]", "Ann|Lee",
         "李小龙", "ann@example.com", "x" * 60, "A", "Q", "lt", "Ann\\", "Ann`s", "Mc#Ann", "Ann2", "2Ann"]
EMAILS = ["ann@example.com", "a_b@example.com", "ann.lee+tag@example.org", "x@y", "Ann@Example.COM"]
SUBJECT_WORDS = ["News", "from", "Tea & Co", "<b>", "“quotes”", "it's", "a\u00a0b", "café", "=?x?=", "`tick`", "#1"]
TOKENS = ["eyJjIjoxLCJtIjoyfQ.AbC-dEf_gh", "eyJjIjoxMCwibSI6MjB9.zzz", "abc.def", "Zm9v_", "-x-"]

EXTRA = [
    "Hello {{ contact.first_name }}!\n\n*{{ contact.first_name }}* and _{{ contact.last_name }}_ and **{{ contact.name }}**",
    "{{ contact.first_name }}\n\n{{ contact.name }}\n===\n\n- {{ contact.last_name }}\n1. {{ contact.city }}",
    "[{{ contact.first_name }}](https://shop.example/p/{{ contact.first_name }}?x={{ contact.last_name }})",
    "[{{ contact.first_name }}]\n\n[Ann]: https://shop.example/ann",
    "&{{ contact.first_name }}; &a{{ contact.last_name }}; `{{ contact.name }}`",
    "<{{ links.testimonial }}> and {{ links.testimonial }} and [go]({{ links.testimonial }} \"{{ contact.name }}\")",
    "![{{ contact.first_name }}](https://shop.example/i/{{ contact.first_name }}.png)",
    "| a | b |\n|---|---|\n| {{ contact.first_name }} | {{ contact.email }} |",
    "{{ contact.first_name|upper }} {{ contact.first_name[:2] }} {% if contact.first_name == 'Ann' %}yes{% endif %}",
    "    {{ contact.first_name }} code\n\n> {{ contact.name }}\n\n{{ contact.email }}",
    "{% for url in links.scores %}[{{ loop.index0 }}]({{ url }}) {% endfor %}",
    "[j]({{ contact.first_name }}:alert(1)) [x]({{ contact.first_name }}) [y](mailto:{{ contact.email }}) [z](https://{{ contact.first_name }}.example/)",
    "Hi {{ contact.first_name }}{{ contact.last_name }}\\\nnext  \nline {{ contact.company }}",
]


def _context(rng: random.Random, tokens: tuple[str, str, str]) -> dict:
    first, last = rng.choice(NAMES), rng.choice(NAMES)
    base = "https://crm.teahouse.example"
    return {
        "contact": {"first_name": first, "last_name": last, "name": f"{first} {last}".strip(),
                    "email": rng.choice(EMAILS), "company": rng.choice(["", "Tea Ltd", "A&B"]),
                    "city": rng.choice(["Utrecht", "", "Den Haag"]), "country": "NL", "birthday": date(1990, 1, 2),
                    "order_count": rng.randrange(4), "total_spent": Decimal("12.50")},
        "order": {"number": rng.choice(["#1002", "1002", ""]), "placed_at": None, "total": Decimal("0"),
                  "currency": "", "lines": [{"name": "Sencha", "sku": "T", "quantity": 2, "unit_price": Decimal("1")}]},
        "shop": {"name": "Tea House", "url": "https://shop.example", "address": "1 High Street"},
        "sender": {"name": ""},
        "links": {"scores": [f"{base}/a/{tokens[1]}?score={n}" for n in range(11)],
                  "testimonial": f"{base}/a/{tokens[2]}"},
    }


def _sources() -> list[tuple[str, str]]:
    found = [(subject, body) for _name, subject, body in templates.DEFAULTS.values()]
    for language in templates.TRANSLATED.values():
        found.extend(language.values())
    found.extend(("Hello {{ contact.first_name }}", body) for body in EXTRA)
    return [(subject or "Hi {{ contact.first_name }}", body) for subject, body in found]


@pytest.mark.parametrize("seed", range(4))
def test_shared_html_is_the_html_rendered_alone(seed, monkeypatch):
    rng = random.Random(seed)
    shared = 0
    for subject, body in _sources():
        for _ in range(12):
            tokens = (rng.choice(TOKENS), rng.choice(TOKENS), rng.choice(TOKENS))
            context = _context(rng, tokens)
            subject_now = subject + " " + rng.choice(SUBJECT_WORDS)
            footer_html = f'Tea House<br><a href="https://crm.teahouse.example/u/{tokens[0]}">Unsubscribe</a>'
            try:
                got = render.render(subject_now, body, context, footer_text="f", footer_html=footer_html,
                                    language=rng.choice(["en", "nl"]), tokens=tokens)
            except render.TemplateProblem:
                continue
            alone = render._document(got.text[:-1].split("\n\n-- \n")[0], got.subject, footer_html,
                                     rng.choice(["en"]) if False else _language_of(got.html))
            assert got.html == alone, (subject_now, body, context["contact"])
            shared += 1
    assert shared > 200
    info = render._shared_document.cache_info()
    assert info.hits > 100  # the shared documents were used, not only the messages alone


def _language_of(html: str) -> str:
    return html.split('lang="', 1)[1].split('"', 1)[0]
