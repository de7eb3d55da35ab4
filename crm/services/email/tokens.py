"""The signed unsubscribe token: names the contact and the message, never expires."""
from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer

from crm.services.email import signing

SALT = "crm.email.unsubscribe"


@dataclass(frozen=True)
class UnsubscribeToken:
    contact_id: int
    message_id: int | None


def _serializer(secret_key: str) -> URLSafeSerializer:
    return signing.serializer(secret_key, SALT)


def make(secret_key: str, contact_id: int, message_id: int | None) -> str:
    return _serializer(secret_key).dumps({"c": contact_id, "m": message_id})


def read(secret_key: str, token: str) -> UnsubscribeToken | None:
    """Return what a token names, or None when it is forged, altered or malformed."""
    try:
        data = _serializer(secret_key).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("c"), int):
        return None
    message_id = data.get("m")
    return UnsubscribeToken(data["c"], message_id if isinstance(message_id, int) else None)


def url(public_url: str, secret_key: str, contact_id: int, message_id: int | None) -> str:
    return f"{public_url.rstrip('/')}/u/{make(secret_key, contact_id, message_id)}"
