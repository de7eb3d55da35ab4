"""Who may do what: every view declares its rule, and one hook enforces it.

A route without a declared rule is refused (403), so a new view cannot be
reachable by accident; the access matrix test lists every route's rule.
"""
from __future__ import annotations

from flask import abort, current_app, jsonify, redirect, request, url_for
from flask_babel import gettext
from flask_login import current_user

from crm.extensions import htmx

# Which roles each rule lets in; "public" needs no sign-in.
RULES: dict[str, frozenset[str] | None] = {
    "public": None,
    "read": frozenset({"admin", "sales", "support", "viewer"}),
    "write": frozenset({"admin", "sales", "support"}),
    "admin": frozenset({"admin"}),
}


def access(rule: str, **per_method: str):
    """Declare the access rule of a view, optionally a different one per HTTP method.

    `@access("read", post="write")` lets every role read and only writers post.
    """
    for name in (rule, *per_method.values()):
        if name not in RULES:
            raise ValueError(f"unknown access rule {name!r}")

    def decorate(view):
        view.access_rules = {"*": rule, **{m.upper(): r for m, r in per_method.items()}}
        return view

    return decorate


def narrowed(who: str):
    """Declare that the view lets in only some of the users its rule allows, e.g. "its author or an admin".

    The view itself refuses the others with 403; the access matrix accepts that refusal (and checks
    that nothing changed) instead of reporting the role as wrongly shut out.
    """

    def decorate(view):
        view.narrowed_to = who
        return view

    return decorate


def rule_for(view, method: str) -> str | None:
    """Return the rule a view declared for a method, or None when it declared none."""
    rules = getattr(view, "access_rules", None)
    if rules is None:
        return None
    return rules.get(method.upper(), rules["*"])


def can(rule: str, user=None) -> bool:
    """Return whether a user (the current one by default) passes a rule."""
    user = user if user is not None else current_user
    roles = RULES[rule]
    if roles is None:
        return True
    return bool(user and user.is_authenticated and user.role in roles)


def is_api_request() -> bool:
    return request.path.startswith("/api/")


def enforce_access():
    """Refuse the request unless the current user passes the view's rule (before_request)."""
    if request.endpoint is None or request.endpoint == "static":
        return None
    view = current_app.view_functions.get(request.endpoint)
    method = "GET" if request.method in ("HEAD", "OPTIONS") else request.method
    rule = rule_for(view, method)
    if rule is None:
        abort(403)
    if rule == "public":
        return None
    if not current_user.is_authenticated:
        return unauthenticated()
    if not can(rule):
        abort(403)
    return None


def unauthenticated():
    """Answer a request that needs a signed-in user: JSON 401, an htmx redirect, or the login page."""
    if is_api_request():
        response = jsonify(error={"code": "unauthorized", "message": gettext("A valid API token is required."),
                                  "fields": {}})
        response.status_code = 401
        response.headers["WWW-Authenticate"] = 'Bearer realm="crm"'
        return response
    login_url = url_for("auth.login", next=request.full_path.rstrip("?"))
    if htmx.fragment:
        response = current_app.response_class(status=204)
        response.headers["HX-Redirect"] = login_url
        return response
    return redirect(login_url)

