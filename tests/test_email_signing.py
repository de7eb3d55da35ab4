"""The email links' tokens made through the kept serializers are itsdangerous's tokens."""
from __future__ import annotations

import random

from itsdangerous import URLSafeSerializer

from crm.services.email import answer_links, clicks, signing, tokens


def test_the_kept_serializer_makes_and_reads_the_same_tokens():
    rng = random.Random(3)
    for secret in ("secret", "another secret", b"bytes secret"):
        for salt in (tokens.SALT, clicks.SALT, answer_links.SALT):
            for _ in range(50):
                payload = {"c": rng.randrange(10**9), "m": rng.choice([None, rng.randrange(10**9)]),
                           "u": "https://shop.example/" + "x" * rng.randrange(200)}
                made = signing.serializer(secret, salt).dumps(payload)
                assert made == URLSafeSerializer(secret, salt=salt).dumps(payload)
                assert URLSafeSerializer(secret, salt=salt).loads(made) == payload
                assert signing.serializer(secret, salt).loads(made) == payload


def test_the_modules_tokens_read_back():
    assert tokens.read("s", tokens.make("s", 7, 9)) == tokens.UnsubscribeToken(7, 9)
    assert tokens.read("t", tokens.make("s", 7, 9)) is None
    assert clicks.read("s", clicks.make("s", 5, "https://shop.example/a")) == (5, "https://shop.example/a")
    assert answer_links.read("s", answer_links.make("s", 1, 2, "survey")).kind == "survey"
