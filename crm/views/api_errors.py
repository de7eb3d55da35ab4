"""JSON error bodies for the API: {"error": {"code", "message", "fields"}}."""
from __future__ import annotations

from flask import jsonify
from flask_babel import gettext
from werkzeug.exceptions import HTTPException

from crm.services.shared.said import N_, Said

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


# HTTP errors as a person reads them: a name per status, and the words for the descriptions the
# libraries write (werkzeug's defaults, Flask-WTF's CSRF refusals), in the reader's language.
HTTP_NAMES = {400: N_("Bad request"), 401: N_("Not signed in"), 403: N_("Not allowed"), 404: N_("Not found"),
              405: N_("Not allowed here"), 409: N_("Conflict"), 410: N_("Gone"), 413: N_("Too large"),
              415: N_("Unsupported body"), 422: N_("Not accepted"), 429: N_("Too many requests"),
              500: N_("Something went wrong")}
HTTP_DESCRIPTIONS = {
    400: N_("The request could not be understood; nothing was changed."),
    401: N_("Sign in (or send an API token) to do this."),
    403: N_("You are not allowed to do this; nothing was changed."),
    404: N_("There is nothing at this address."),
    405: N_("This address does not take this kind of request."),
    410: N_("This is gone for good."),
    413: N_("The request is larger than this CRM accepts; nothing was saved."),
    415: N_("Send the body in a format this address takes."),
    429: N_("There were too many requests in a short time; wait a little and try again."),
    500: N_("Something went wrong on our side; the request changed nothing."),
}
CSRF_WORDS = {
    "The CSRF token is missing.": N_("The form's security token is missing: reload the page and try again."),
    "The CSRF session token is missing.": N_("Your session has no security token (cookies off, or the session "
                                            "ended): reload the page and try again."),
    "The CSRF token has expired.": N_("The form's security token has expired: reload the page and try again."),
    "The CSRF token is invalid.": N_("The form's security token is not valid: reload the page and try again."),
    "The CSRF tokens do not match.": N_("The form's security token does not match your session: reload the page "
                                        "and try again."),
}


def http_error_name(error: HTTPException) -> str:
    """An HTTP error's name in the reader's language ("Bad request", "Ongeldig verzoek")."""
    return gettext(HTTP_NAMES[error.code]) if error.code in HTTP_NAMES else str(error.name)


def http_error_words(error: HTTPException) -> str:
    """What went wrong, in the reader's language: ours as the view said it, the libraries' in our words."""
    description = error.description
    if isinstance(description, str) and description in CSRF_WORDS:
        return gettext(CSRF_WORDS[description])
    if not description or (description == type(error).description and error.code in HTTP_DESCRIPTIONS):
        return gettext(HTTP_DESCRIPTIONS.get(error.code, "")) if error.code in HTTP_DESCRIPTIONS else str(error.name)
    return in_reader_language(description)


def api_error_response(error):
    """Turn an HTTP exception (or an unexpected error) into the API's JSON error shape."""
    if isinstance(error, HTTPException):
        message = error.description or error.name
        if message in CSRF_WORDS or message == type(error).description:
            message = http_error_words(error)  # the library's words: ours, in the client's language
        if error.code == 429:
            message = Said(N_("Too many requests: the limit is %(limit)s. Wait the Retry-After seconds and try again."),
                           {"limit": message})
        response = api_error(error.code or 500, message)
        for name, value in error.get_response().headers.items():
            if name.lower() in ("retry-after", "www-authenticate", "allow") or name.lower().startswith("x-ratelimit"):
                response.headers[name] = value
        return response
    return api_error(500, N_("Something went wrong on our side; the request changed nothing."))
