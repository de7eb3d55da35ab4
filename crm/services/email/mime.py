"""Building the worker's MIME messages quickly, byte for byte as `email.message` builds them.

`EmailMessage.set_content(text)` + `add_alternative(html, subtype="html")` spends most of its time
making and parsing headers: the standard `HeaderRegistry` creates a new header class for every
header it makes, every `Content-Type` is parsed twice (once bare, once with its charset), and every
header is folded again when the message is written. Here:

- the policy's header registry makes each header class once (`_Registry`);
- the headers many messages share (From, Reply-To, a newsletter's Subject and Date, the parts'
  Content-Type, Content-Transfer-Encoding and MIME-Version) are parsed once (`shared`) and folded
  once per policy (`_Policy.fold_binary` keeps the folded bytes on the header object);
- `alternative` assembles the same tree `set_content` + `add_alternative` leave behind (the same
  headers in the same order, the parts' bodies encoded by the standard library's own
  `contentmanager._encode_text`) without the intermediate steps.

`tests/test_email_mime.py` compares the bytes with the standard library's for many messages.
"""
from __future__ import annotations

from email import contentmanager
from email.headerregistry import Address, HeaderRegistry
from email.message import EmailMessage
from email.policy import EmailPolicy
from functools import lru_cache
from typing import Any

_FOLDED = "_crm_folded"


class _Registry(HeaderRegistry):
    """The standard header classes, each made once instead of once per header."""

    def __init__(self) -> None:
        super().__init__()
        self._made: dict[str, type] = {}

    def __getitem__(self, name: str) -> type:
        key = name.lower()
        made = self._made.get(key)
        if made is None:
            made = self._made[key] = super().__getitem__(name)
        return made


class _Policy(EmailPolicy):
    """`email.policy.default` (or SMTP), folding a shared header once instead of on every message."""

    def fold_binary(self, name: str, value: Any) -> bytes:
        folded = getattr(value, _FOLDED, None)
        if folded is None:
            return super().fold_binary(name, value)
        key = (name, self.linesep, self.max_line_length, self.utf8, self.cte_type, self.refold_source)
        found = folded.get(key)
        if found is None:
            found = folded[key] = super().fold_binary(name, value)
        return found


POLICY = _Policy(header_factory=_Registry())  # what email.policy.default is, with the caches
SMTP_POLICY = POLICY.clone(linesep="\r\n")  # what email.policy.SMTP is, with the caches


@lru_cache(maxsize=1024)
def shared(name: str, value: str) -> Any:
    """The header object for a value many messages carry, parsed once (raises as setting it would)."""
    header = POLICY.header_store_parse(name, value)[1]
    setattr(header, _FOLDED, {})
    return header


@lru_cache(maxsize=64)
def sender_header(display_name: str, addr_spec: str) -> Any:
    """The From header for the settings' sender (an Address, as `EmailSettings.sender` gives it)."""
    header = POLICY.header_store_parse("From", Address(display_name=display_name, addr_spec=addr_spec))[1]
    setattr(header, _FOLDED, {})
    return header


def _part(text: str, subtype: str, mime_version: bool) -> EmailMessage:
    """What `set_content(text, subtype=...)` leaves: Content-Type with the charset, the transfer
    encoding the standard library's heuristics choose, and MIME-Version on a part made by add_alternative."""
    part = EmailMessage(policy=POLICY)
    cte, payload = contentmanager._encode_text(text, "utf-8", None, POLICY)
    part._headers = [("Content-Type", shared("Content-Type", f'text/{subtype}; charset="utf-8"')),
                     ("Content-Transfer-Encoding", shared("Content-Transfer-Encoding", cte))]
    if mime_version:
        part._headers.append(("MIME-Version", shared("MIME-Version", "1.0")))
    part._payload = payload
    return part


def alternative(headers: list[tuple[str, Any]], text: str, html: str) -> EmailMessage:
    """A multipart/alternative message with these headers (in order), a plain-text and an HTML part:
    the message `m[name] = value` for each header, `m.set_content(text)` and
    `m.add_alternative(html, subtype="html")` make, built without the steps between."""
    message = EmailMessage(policy=POLICY)
    for name, value in headers:
        message[name] = value  # header objects from `shared` are taken as they are
    message._headers.append(("MIME-Version", shared("MIME-Version", "1.0")))
    message._headers.append(("Content-Type", shared("Content-Type", "multipart/alternative")))
    message._payload = [_part(text, "plain", False), _part(html, "html", True)]
    return message
