"""The one-click answer links a survey or testimonial email carries: a signed token naming the
contact, the message and what is asked (a 0-10 score or a testimonial). Opening a link records
nothing; the page it opens records the answer by a POST."""
from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from crm.services.email import signing

SALT = "crm.email.answer"
KINDS = ("survey", "testimonial")


@dataclass(frozen=True)
class AnswerToken:
    contact_id: int
    message_id: int | None
    kind: str


def make(secret_key: str, contact_id: int, message_id: int | None, kind: str) -> str:
    return signing.serializer(secret_key, SALT).dumps({"c": contact_id, "m": message_id, "k": kind})


def read(secret_key: str, token: str) -> AnswerToken | None:
    """What a token names, or None when it is forged, altered or malformed."""
    try:
        data = URLSafeSerializer(secret_key, salt=SALT).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), int) or data.get("k") not in KINDS:
        return None
    message_id = data.get("m")
    return AnswerToken(data["c"], message_id if isinstance(message_id, int) else None, data["k"])


def links(public_url: str, secret_key: str, contact_id: int, message_id: int | None) -> dict:
    """The template variables `links.scores` (eleven URLs, 0 to 10) and `links.testimonial`."""
    return links_with(public_url, make(secret_key, contact_id, message_id, "survey"),
                      make(secret_key, contact_id, message_id, "testimonial"))


def links_with(public_url: str, survey: str, testimonial: str) -> dict:
    """The same variables from tokens already made."""
    base = public_url.rstrip("/")
    return {"scores": [f"{base}/a/{survey}?score={n}" for n in range(11)], "testimonial": f"{base}/a/{testimonial}"}
