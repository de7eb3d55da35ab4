"""The signed tokens of email links (unsubscribe, answers, clicks), made quickly.

`itsdangerous.URLSafeSerializer(secret, salt=...)` makes a new signer, and derives its key again,
for every token. A newsletter signs two or three tokens per message, so the serializer and its
signer's derived key are kept per (secret, salt) here. The tokens are the same strings, and read
the same way (tests/test_email_signing.py).
"""
from __future__ import annotations

from functools import lru_cache
from typing import Any

from itsdangerous import Signer, URLSafeSerializer


class _Signer(Signer):
    """A Signer that derives its own key once (a key given explicitly, when unsigning, is derived as before)."""

    def derive_key(self, secret_key: str | bytes | None = None) -> bytes:
        if secret_key is not None:
            return super().derive_key(secret_key)
        key = self.__dict__.get("_derived")
        if key is None:
            key = self.__dict__["_derived"] = super().derive_key()
        return key


class _Serializer(URLSafeSerializer):
    """A URLSafeSerializer that keeps its signer."""

    def make_signer(self, salt: str | bytes | None = None) -> Signer:
        if salt is not None and salt != self.salt:
            return super().make_signer(salt)
        signer = self.__dict__.get("_signer")
        if signer is None:
            signer = self.__dict__["_signer"] = _Signer(self.secret_keys, salt=self.salt, **self.signer_kwargs)
        return signer


@lru_cache(maxsize=32)
def serializer(secret_key: Any, salt: str) -> URLSafeSerializer:
    """The serializer for a secret and a salt, made once."""
    return _Serializer(secret_key, salt=salt)
