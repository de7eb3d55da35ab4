"""The web layer: blueprints, request hooks, error pages and template helpers."""
from __future__ import annotations

from flask import Flask, g, render_template, request
from flask.sessions import SecureCookieSessionInterface
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_login import current_user
from werkzeug.exceptions import Gone, HTTPException, NotFound
from werkzeug.middleware.proxy_fix import ProxyFix

from crm.database import write_intent
from crm.extensions import db, login_manager
from crm.services.shared import errors
from crm.views import access, formatting, languages, params, said
from crm.views.api_errors import api_error_response, http_error_name, http_error_words

CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; base-uri 'self'; frame-ancestors 'none'; object-src 'none'"
)


class SessionInterface(SecureCookieSessionInterface):
    """Marks the session cookie Secure whenever the request came over HTTPS."""

    def get_cookie_secure(self, app):
        return bool(app.config.get("SESSION_COOKIE_SECURE")) or request.is_secure


def init_app(app: Flask) -> None:
    """Bind hooks, loaders, error handlers and blueprints to the app."""
    # Every <int:...> in a route is a row id: bounded, so 2^63 is a 404 and never an OverflowError.
    app.url_map.converters["int"] = params.IdConverter
    if app.config.get("PROXY_FIX"):
        hops = int(app.config["PROXY_FIX"])
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops, x_port=hops)
    app.session_interface = SessionInterface()
    _init_login(app)
    formatting.init_app(app)
    languages.init_app(app)
    said.init_app(app)

    @app.before_request
    def _begin_request():
        # Reads begin deferred on SQLite; anything that may write takes the lock first, unless its
        # view takes the lock itself just before it writes (crm.database.writes_later).
        may_write = request.method not in ("GET", "HEAD", "OPTIONS")
        if may_write and getattr(app.view_functions.get(request.endpoint), "crm_writes_later", False):
            may_write = False
        g._write_intent_token = write_intent.set(may_write)
        return access.enforce_access()

    @app.teardown_request
    def _end_request(_exc):
        token = g.pop("_write_intent_token", None)
        if token is not None:
            write_intent.reset(token)

    @app.after_request
    def _security_headers(response):
        headers = response.headers
        headers.setdefault("Content-Security-Policy", CONTENT_SECURITY_POLICY)
        headers.setdefault("X-Content-Type-Options", "nosniff")
        headers.setdefault("X-Frame-Options", "DENY")
        headers.setdefault("Referrer-Policy", "same-origin")
        headers.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.is_secure:
            headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
        headers.add("Vary", "HX-Request")
        if response.mimetype == "text/html" and current_user.is_authenticated:  # JSON: no user read again
            headers.setdefault("Cache-Control", "no-store")
        return response

    app.add_template_global(http_error_name, "http_error_name")
    app.add_template_global(http_error_words, "http_error_words")

    @app.errorhandler(HTTPException)
    def _http_error(error: HTTPException):
        if error.code == 413:
            error.description = _too_large_message(app)
        if access.is_api_request():
            return api_error_response(error)
        response = error.get_response()
        if error.code in (400, 403, 404, 405, 410, 413, 429):
            template = f"errors/{error.code}.html" if error.code in (403, 404, 413, 429) else "errors/error.html"
            response.set_data(render_template(template, error=error))
            response.mimetype = "text/html"
        return response

    @app.errorhandler(errors.NotFound)
    def _record_not_found(error: errors.NotFound):
        db.session.rollback()
        return _http_error(NotFound(error.args[0] if error.args else None))

    @app.errorhandler(errors.Erased)
    def _contact_erased(error: errors.Erased):
        """Writing to an erased contact: 410 Gone, as a page or as the API's JSON."""
        db.session.rollback()
        return _http_error(Gone(error.args[0]))

    @app.errorhandler(500)
    def _server_error(error):
        db.session.rollback()
        if access.is_api_request():
            return api_error_response(error)
        return render_template("errors/500.html"), 500

    from crm.views import (
        answers,
        api,
        audit,
        auth,
        campaigns,
        contacts,
        email,
        flows,
        imports,
        insight,
        jobs,
        journey,
        leads,
        main,
        orders,
        privacy,
        rules,
        segments,
        settings,
        tasks,
        tokens,
        users,
        webhooks,
    )

    # One line per area; keep the list sorted so parallel additions merge cleanly.
    for blueprint in (
        answers.bp,
        api.bp,
        audit.bp,
        auth.bp,
        campaigns.bp,
        contacts.bp,
        email.bp,
        flows.bp,
        imports.bp,
        insight.bp,
        jobs.bp,
        journey.bp,
        leads.bp,
        main.bp,
        orders.bp,
        privacy.bp,
        rules.bp,
        segments.bp,
        settings.bp,
        tasks.bp,
        tokens.bp,
        users.bp,
        webhooks.bp,
    ):
        app.register_blueprint(blueprint)


def _too_large_message(app: Flask) -> str:
    limit = formatting.human_size(int(app.config.get("MAX_CONTENT_LENGTH") or 0))
    return _("The upload is larger than the %(limit)s this CRM accepts; nothing was saved.", limit=limit)


def _init_login(app: Flask) -> None:
    login_manager.login_view = "auth.login"
    login_manager.login_message = _l("Please sign in to see that page.")
    login_manager.localize_callback = str  # in the reader's language when it is flashed
    login_manager.login_message_category = "info"
    login_manager.session_protection = "basic"

    @login_manager.user_loader
    def _load_user(session_id: str):
        from crm.services.staff import users

        if request.path.startswith("/api/"):
            return None  # the API takes bearer tokens only, so a cookie cannot be used for CSRF

        return users.user_for_session(session_id)

    @login_manager.request_loader
    def _load_token_user(req):
        # Bearer tokens work on the API only; pages keep to the session cookie and CSRF.
        if not req.path.startswith("/api/"):
            return None
        header = req.headers.get("Authorization", "")
        if not header.startswith("Bearer "):
            return None
        from crm.services.staff import api_tokens

        return api_tokens.authenticate(header[len("Bearer "):].strip())
