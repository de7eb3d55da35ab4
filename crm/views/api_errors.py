"""JSON error bodies for the API: {"error": {"code", "message", "fields"}}."""
from __future__ import annotations

from flask import jsonify
from flask_babel import gettext
from werkzeug.exceptions import HTTPException

from crm.services.shared.said import Said

CODES = {
    400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
    405: "method_not_allowed", 409: "conflict", 413: "too_large", 415: "unsupported_media_type",
    422: "invalid", 429: "rate_limited", 500: "server_error",
}


def api_error(status: int, message: str, fields: dict | None = None, code: str | None = None, **extra):
    """Return a JSON error response with a status, a message and per-field reasons.

    `extra` adds members to the error object, e.g. the id of the contact a duplicate names.
    """
    fields = {name: in_reader_language(reason) for name, reason in (fields or {}).items()}
    response = jsonify(error={"code": code or CODES.get(status, "error"), "message": in_reader_language(message),
                              "fields": fields, **extra})
    response.status_code = status
    return response


def in_reader_language(text):
    """A message in the language the client asked for (Accept-Language); codes stay English."""
    if not isinstance(text, str) or not text:
        return text
    if isinstance(text, Said):
        from crm.views.said import in_reader_language as said_in_reader_language

        return said_in_reader_language(text)
    return gettext(text)


def api_error_response(error):
    """Turn an HTTP exception (or an unexpected error) into the API's JSON error shape."""
    if isinstance(error, HTTPException):
        message = error.description or error.name
        if error.code == 429:
            message = f"Too many requests: the limit is {message}. Wait the Retry-After seconds and try again."
        response = api_error(error.code or 500, message)
        for name, value in error.get_response().headers.items():
            if name.lower() in ("retry-after", "www-authenticate", "allow") or name.lower().startswith("x-ratelimit"):
                response.headers[name] = value
        return response
    return api_error(500, "Something went wrong on our side; the request changed nothing.")
