"""Extension objects, created once and bound to the app in create_app()."""
import hashlib

import click
from flask import current_app, request
from flask_babel import Babel
from flask_htmx import HTMX
from flask_limiter import ApplicationLimit, Limiter
from flask_limiter.util import get_remote_address
from flask_login import LoginManager
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


class Migrations:
    """Flask-Migrate, bound to an app when a migration runs (`crm db …`, the first run's upgrade).

    Importing Flask-Migrate imports Alembic: 0.6 s of CPU, about 40% of starting the app, paid by
    every web worker, `crm worker` and `crm import` that never migrates. So `init_app` leaves a
    placeholder in `app.extensions["migrate"]` and a `db` command group that bind the real
    Flask-Migrate (with these options) the first time either is used."""

    OPTIONS = {"render_as_batch": True, "compare_type": True, "include_object": search_index.include_object}

    def init_app(self, app, db, directory: str) -> None:
        app.extensions["migrate"] = _UnboundMigrations(app, db, directory)
        app.cli.add_command(_DbCommands())


def bind_migrations(app):
    """Bind Flask-Migrate to `app` (once) and return its config, as `Migrate.init_app` leaves it."""
    config = app.extensions["migrate"]
    if isinstance(config, _UnboundMigrations):
        from flask_migrate import Migrate

        Migrate(**Migrations.OPTIONS).init_app(app, config.db, directory=config.directory)
        config = app.extensions["migrate"]
    return config


class _UnboundMigrations:
    """What `app.extensions["migrate"]` holds until Flask-Migrate is needed; any attribute but the
    directory and the database binds it (Flask-Migrate's commands and `upgrade()` read it there)."""

    def __init__(self, app, db, directory: str):
        self.app, self.db, self.directory = app, db, directory

    def __getattr__(self, name: str):
        return getattr(bind_migrations(self.app), name)


class _DbCommands(click.Command):
    """`crm db …`: Flask-Migrate's command group, imported and run with the words that follow."""

    def __init__(self):
        super().__init__("db", help="Perform database migrations.", add_help_option=False,
                         context_settings={"ignore_unknown_options": True, "allow_extra_args": True})

    def invoke(self, ctx):
        from flask.cli import ScriptInfo

        info = ctx.find_object(ScriptInfo) or ScriptInfo()
        bind_migrations(current_app._get_current_object() if current_app else info.load_app())
        from flask_migrate.cli import db as commands

        return commands.main(args=list(ctx.args), prog_name=ctx.command_path, standalone_mode=False, obj=info)


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


migrate = Migrations()
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
