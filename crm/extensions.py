"""Extension objects, created once and bound to the app in create_app()."""
import hashlib

from flask import current_app, request
from flask_babel import Babel
from flask_htmx import HTMX
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
from flask_migrate import Migrate
from flask_wtf.csrf import CSRFProtect

from crm.models import search_index
from crm.models.base import db

__all__ = ["babel", "csrf", "db", "htmx", "limiter", "login_manager", "migrate"]


def api_client_key() -> str:
    """Return who an API request counts against: a live token (hashed), else its address.

    A made-up or revoked token counts against its address, so inventing a new token for every
    request does not buy a fresh budget each time.
    """
    header = request.headers.get("Authorization", "")
    if header.startswith("Bearer ") and header[7:].strip():
        from crm.services.staff import api_tokens

        plain = header[7:].strip()
        if api_tokens.is_live(plain):
            return "token:" + hashlib.sha256(plain.encode()).hexdigest()[:32]
    return "ip:" + (get_remote_address() or "unknown")


def _api_rate_limit() -> str:
    return current_app.config["API_RATE_LIMIT"]


def _not_api_request() -> bool:
    return not request.path.startswith("/api/")


class ShopHTMX(HTMX):
    """flask-htmx's request details, except that a history restore is not a partial request.

    When Back returns to a URL an htmx swap pushed, htmx (no history cache: historyCacheSize 0)
    fetches that URL with HX-Request *and* HX-History-Restore-Request and puts the answer in
    place of the whole <body>; the views must then send the whole page, not the swapped part.
    """

    def __bool__(self) -> bool:
        return super().__bool__() and not self.history_restore_request

    @property
    def fragment(self) -> bool:
        """Whether to answer with the part of a page a swap replaces, not the whole page: an htmx
        request that is neither a boosted page load nor a history restore. Every view asks this."""
        return bool(self) and not self.boosted


migrate = Migrate(render_as_batch=True, compare_type=True, include_object=search_index.include_object)
login_manager = LoginManager()
babel = Babel()
csrf = CSRFProtect()
htmx = ShopHTMX()
# API_RATE_LIMIT covers every path under /api/ as one budget per token (or address),
# whichever blueprint serves it, checked before sign-in so token guessing counts too.
# RATELIMIT_STORAGE_URI=redis://... lets several workers share the counts.
limiter = Limiter(
    key_func=get_remote_address,
    default_limits=[],
    application_limits=[ApplicationLimit(_api_rate_limit, key_function=api_client_key, scope="api",
                                         exempt_when=_not_api_request)],
)
