"""Click tracking: links in a marketing email go through a signed redirect naming the message and
the address (so the redirect can never send anyone elsewhere). No open pixel. The setting
`attribution.track_clicks` (on by default) switches it."""
from __future__ import annotations

import re
from html import escape, unescape

from itsdangerous import BadSignature, URLSafeSerializer

from crm.services.email import signing

SALT = "crm.email.click"
HREF = re.compile(r'href="(https?://[^"]+)"')
MARKDOWN_LINK = re.compile(r"\]\((https?://[^)\s]+)\)")


def make(secret_key: str, message_id: int, url: str) -> str:
    return signing.serializer(secret_key, SALT).dumps({"m": message_id, "u": url})


def read(secret_key: str, token: str) -> tuple[int, str] | None:
    """(message id, address) of a token, or None when it is forged or malformed."""
    try:
        data = URLSafeSerializer(secret_key, salt=SALT).loads(token)
    except BadSignature:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("m"), int) or not isinstance(data.get("u"), str):
        return None
    if not data["u"].startswith(("http://", "https://")):
        return None
    return data["m"], data["u"]


def rewrite(html: str, text: str, public_url: str, secret_key: str, message_id: int) -> tuple[str, str]:
    """Return the HTML and text parts with each outside link sent through the redirect; the
    unsubscribe and answer links stay as they are."""
    base = public_url.rstrip("/")
    own = (f"{base}/u/", f"{base}/a/", f"{base}/r/")

    made: dict[str, str] = {}  # a link in both parts is signed once

    def tracked(url: str) -> str:
        if url.startswith(own):
            return url
        if url not in made:
            made[url] = f"{base}/r/{make(secret_key, message_id, url)}"
        return made[url]

    html = HREF.sub(lambda m: f'href="{escape(tracked(unescape(m.group(1))))}"', html)
    text = MARKDOWN_LINK.sub(lambda m: f"]({tracked(m.group(1))})", text)
    return html, text
