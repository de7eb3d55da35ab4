"""The OpenAPI 3 description of the JSON API (crm/views/api.py), written by hand to match it.

tests/test_api_schema.py runs schemathesis against it, so a difference between what the API
does and what this says fails the tests.
"""
from __future__ import annotations

from typing import Any

from crm.services.segments.definition import FIELDS as SEGMENT_FIELDS
from crm.services.segments.definition import EVENT_OPTIONS, MAX_CONDITIONS, MAX_LIST, OPERATOR_LABELS, catalog
from crm.models import DIRECTIONS, INTERACTION_KINDS, ORDER_STATUSES, SENTIMENTS, STAGES, TASK_STATUSES
from crm.services.email.suppression import REASONS as EMAIL_STATUS_REASONS

MAX_ID = 2**31 - 1


def _ref(name: str) -> dict:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict) -> dict:
    return {**schema, "nullable": True}


STRING = {"type": "string"}
TIME = _nullable({"type": "string", "format": "date-time"})
DECIMAL = {"type": "string", "pattern": r"^-?\d+\.\d{2}$", "description": "An amount as a decimal string, e.g. \"12.50\"."}
AMOUNT_IN = {"oneOf": [{"type": "string", "maxLength": 40, "pattern": r"^-?[0-9][0-9.,' ]*$"}, {"type": "number"}],
             "description": "An amount: a number or text such as \"12.50\" or \"1.234,50\"."}
ID = {"type": "integer", "minimum": 1, "maximum": MAX_ID}
ORDER_STATUS_SYNONYMS = ["completed", "complete", "shipped", "delivered", "processing", "canceled", "voided",
                         "failed", "on_hold", "authorized"]

ERRORS = {
    400: "The body is not valid JSON or not a JSON object.",
    401: "No token, or a token that is unknown or revoked.",
    403: "The token's role may not do this.",
    404: "No such record.",
    409: "The request conflicts with the current state.",
    410: "The contact's personal data was erased; nothing can be added to it or changed.",
    413: "The body is too large.",
    415: "The body is not sent as application/json.",
    422: "A field (or query parameter) is invalid; `fields` says which and why.",
    429: "Too many requests; wait for the time in Retry-After.",
}


def _errors(*codes: int) -> dict[str, Any]:
    return {str(code): {"description": ERRORS[code], "content": {"application/json": {"schema": _ref("Error")}}}
            for code in codes}


def _ok(code: int, description: str, schema: str) -> dict[str, Any]:
    return {str(code): {"description": description, "content": {"application/json": {"schema": _ref(schema)}}}}


def _body(schema: str) -> dict[str, Any]:
    return {"required": True, "content": {"application/json": {"schema": _ref(schema)}}}


def _query(name: str, schema: dict, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "schema": schema, "description": description}


def _path(name: str) -> dict[str, Any]:
    return {"name": name, "in": "path", "required": True, "schema": ID}


PAGE_PARAMETERS = [
    _query("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, "Items per page (1 to 200)."),
    _query("cursor", {"type": "string", "maxLength": 200}, "The `next` value of the previous page."),
]
READ_ERRORS = (401, 403, 422, 429)
WRITE_ERRORS = (400, 401, 403, 413, 415, 422, 429)

CONTACT_INPUT_PROPERTIES = {
    "email": _nullable({"type": "string", "format": "email", "maxLength": 320}),
    "first_name": _nullable({"type": "string", "maxLength": 120}),
    "last_name": _nullable({"type": "string", "maxLength": 120}),
    "phone": _nullable({"type": "string", "maxLength": 40, "description": "With the country code; stored as E.164."}),
    "company": _nullable({"type": "string", "maxLength": 200}),
    "title": _nullable({"type": "string", "maxLength": 200}),
    "birthday": _nullable({"type": "string", "format": "date"}),
    "address": _nullable({"type": "string", "maxLength": 400}),
    "city": _nullable({"type": "string", "maxLength": 120}),
    "country": _nullable({"type": "string", "pattern": "^[A-Za-z]{2}$", "description": "ISO 3166-1 alpha-2."}),
    "owner_id": _nullable(ID),
    "consent": {"type": "boolean"},
    "do_not_contact": {"type": "boolean"},
    "stay_in_touch_days": _nullable({"type": "integer", "minimum": 1, "maximum": 3650}),
    "language": _nullable({"type": "string", "maxLength": 35,
                           "description": "ISO 639-1 (en, nl, ...): the language emails to the contact are written in; null for the shop's."}),
    "tags": {"type": "array", "maxItems": 50, "items": {"type": "string", "minLength": 1, "maxLength": 80}},
}

SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object", "required": ["error"],
        "properties": {"error": {
            "type": "object", "required": ["code", "message", "fields"],
            "properties": {
                "code": {"type": "string", "example": "invalid"},
                "message": STRING,
                "fields": {"type": "object", "additionalProperties": STRING,
                           "description": "Field or parameter name → why it was refused."},
                "existing_id": {"type": "integer", "description": "On 409 for a duplicate email: the contact that has it."},
            },
        }},
    },
    "ScoreLine": {
        "type": "object", "required": ["rule", "points", "why"],
        "properties": {"rule": STRING, "points": {"type": "integer"}, "why": STRING},
    },
    "ExternalId": {
        "type": "object", "required": ["source", "id"],
        "properties": {"source": STRING, "id": STRING},
        "description": "How a shop (Shopify, WooCommerce ...) knows this contact.",
    },
    "Contact": {
        "type": "object",
        "required": ["id", "email", "first_name", "last_name", "phone", "company", "tags", "stage", "stage_reason",
                     "health", "lead_score", "score_breakdown", "order_count", "total_spent", "first_order_at",
                     "last_order_at", "external_ids", "created_at"],
        "properties": {
            "id": {"type": "integer"},
            "email": _nullable({"type": "string", "description": "Normalised (lower-case) for matching."}),
            "email_display": _nullable(STRING),
            "first_name": STRING, "last_name": STRING,
            "phone": _nullable(STRING), "company": _nullable(STRING), "title": _nullable(STRING),
            "birthday": _nullable({"type": "string", "format": "date"}),
            "address": _nullable(STRING), "city": _nullable(STRING), "country": _nullable(STRING),
            "source": STRING, "owner_id": _nullable({"type": "integer"}),
            "consent": {"type": "boolean"}, "do_not_contact": {"type": "boolean"},
            "email_status": {"type": "string", "enum": list(EMAIL_STATUS_REASONS),
                             "description": "Whether marketing email can go to the contact, or the first reason why not "
                                            "(`no_consent` still allows personal and order messages)."},
            "stay_in_touch_days": _nullable({"type": "integer"}),
            "language": _nullable(STRING),
            "tags": {"type": "array", "items": STRING},
            "stage": {"type": "string", "enum": list(STAGES)},
            "stage_reason": STRING,
            "stage_pinned": {"type": "boolean"},
            "health": _nullable({"type": "string", "enum": ["active", "at_risk", "lapsed", None]}),
            "lead_score": {"type": "integer"},
            "score_breakdown": {"type": "array", "items": _ref("ScoreLine")},
            "order_count": {"type": "integer"},
            "total_spent": DECIMAL,
            "first_order_at": TIME, "last_order_at": TIME, "last_interaction_at": TIME,
            "external_ids": {"type": "array", "items": _ref("ExternalId")},
            "created_at": TIME, "updated_at": TIME,
        },
    },
    "ContactInput": {
        "type": "object", "additionalProperties": False, "properties": CONTACT_INPUT_PROPERTIES,
        "description": "A new contact needs at least a name, an email or a phone. Unknown fields are refused (422).",
    },
    "ContactChange": {
        "type": "object", "additionalProperties": False, "properties": CONTACT_INPUT_PROPERTIES,
        "description": "Only the fields given change; `tags` replaces the contact's tags.",
    },
    "ContactPage": {
        "type": "object", "required": ["items", "next"],
        "properties": {"items": {"type": "array", "items": _ref("Contact")},
                       "next": _nullable({"type": "string", "description": "Pass as `cursor` for the next page."})},
    },
    "OrderLineInput": {
        "type": "object", "additionalProperties": False, "required": ["unit_price"],
        "properties": {
            "sku": _nullable({"type": "string", "maxLength": 120}),
            "name": {"type": "string", "maxLength": 300},
            "quantity": {"type": "integer", "minimum": 1, "maximum": 1_000_000, "default": 1},
            "unit_price": AMOUNT_IN,
        },
    },
    "OrderInput": {
        "type": "object", "additionalProperties": False,
        "required": ["order_id", "placed_at", "total"],
        "anyOf": [{"required": ["email"]}, {"required": ["customer_id"]}],
        "description": ("The fields of the generic orders file, checked the same way, plus `source` and `lines`. "
                        "A customer needs `customer_id` or `email`. Sending the same (source, order_id) again updates "
                        "that order (200) instead of adding one."),
        "properties": {
            "order_id": {"oneOf": [{"type": "string", "minLength": 1, "maxLength": 120}, {"type": "integer"}]},
            "source": {"type": "string", "minLength": 1, "maxLength": 40, "default": "api"},
            "customer_id": _nullable({"oneOf": [{"type": "string", "maxLength": 120}, {"type": "integer"}]}),
            "email": _nullable({"type": "string", "format": "email", "maxLength": 320}),
            "first_name": _nullable({"type": "string", "maxLength": 120}),
            "last_name": _nullable({"type": "string", "maxLength": 120}),
            "phone": _nullable({"type": "string", "maxLength": 40}),
            "placed_at": {"anyOf": [{"type": "string", "format": "date"}, {"type": "string", "format": "date-time"}],
                          "description": "A date or a timestamp (ISO 8601; UTC when no offset)."},
            "total": AMOUNT_IN,
            "subtotal": _nullable(AMOUNT_IN), "discount": _nullable(AMOUNT_IN),
            "shipping": _nullable(AMOUNT_IN), "tax": _nullable(AMOUNT_IN),
            "currency": _nullable({"type": "string", "pattern": "^[A-Za-z]{3}$",
                                   "description": "ISO 4217, e.g. EUR; the shop's currency when left out."}),
            "status": _nullable({"type": "string", "enum": [*ORDER_STATUSES, *ORDER_STATUS_SYNONYMS],
                                 "description": "Paid when left out; shop words such as completed or shipped are read "
                                                "as our statuses."}),
            "number": _nullable({"type": "string", "maxLength": 60}),
            "lines": {"type": "array", "maxItems": 500, "items": _ref("OrderLineInput")},
        },
    },
    "OrderLine": {
        "type": "object", "required": ["sku", "name", "quantity", "unit_price"],
        "properties": {"sku": _nullable(STRING), "name": STRING, "quantity": {"type": "integer"}, "unit_price": DECIMAL},
    },
    "Order": {
        "type": "object",
        "required": ["id", "contact_id", "source", "external_id", "number", "placed_at", "status", "currency",
                     "subtotal", "discount", "shipping", "tax", "total", "refunded", "lines"],
        "properties": {
            "id": {"type": "integer"}, "contact_id": {"type": "integer"}, "source": STRING, "external_id": STRING,
            "number": STRING, "placed_at": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": list(ORDER_STATUSES)}, "currency": STRING,
            "subtotal": DECIMAL, "discount": DECIMAL, "shipping": DECIMAL, "tax": DECIMAL, "total": DECIMAL,
            "refunded": DECIMAL,
            "lines": {"type": "array", "items": _ref("OrderLine")},
            "result": {"type": "string", "enum": ["created", "updated", "unchanged"]},
        },
    },
    "InteractionInput": {
        "type": "object", "additionalProperties": False, "required": ["kind"],
        "properties": {
            "kind": {"type": "string", "enum": list(INTERACTION_KINDS)},
            "direction": {"type": "string", "enum": list(DIRECTIONS), "default": "outbound"},
            "channel": _nullable({"type": "string", "maxLength": 40}),
            "subject": {"type": "string", "maxLength": 300},
            "body": {"type": "string", "maxLength": 20000},
            "outcome": _nullable({"type": "string", "maxLength": 300}),
            "sentiment": _nullable({"type": "string", "enum": [*SENTIMENTS, None]}),
            "occurred_at": _nullable({"type": "string", "format": "date-time", "description": "Now when left out; not in the future."}),
        },
    },
    "Interaction": {
        "type": "object",
        "required": ["id", "contact_id", "author_id", "kind", "direction", "subject", "body", "occurred_at"],
        "properties": {
            "id": {"type": "integer"}, "contact_id": {"type": "integer"}, "author_id": _nullable({"type": "integer"}),
            "kind": STRING, "direction": STRING, "channel": _nullable(STRING), "subject": STRING, "body": STRING,
            "outcome": _nullable(STRING), "sentiment": _nullable(STRING),
            "occurred_at": {"type": "string", "format": "date-time"}, "task_id": _nullable({"type": "integer"}),
        },
    },
    "Task": {
        "type": "object",
        "required": ["id", "contact_id", "kind", "title", "reason", "due_at", "status", "assignee_id", "snoozed_until"],
        "properties": {
            "id": {"type": "integer"}, "contact_id": {"type": "integer"}, "kind": STRING, "title": STRING,
            "reason": STRING, "due_at": {"type": "string", "format": "date-time"},
            "status": {"type": "string", "enum": list(TASK_STATUSES)},
            "assignee_id": _nullable({"type": "integer"}), "snoozed_until": TIME, "created_at": TIME,
            "closed_at": TIME, "close_reason": _nullable(STRING), "outcome": _nullable(STRING),
        },
    },
    "TaskChange": {
        "type": "object", "additionalProperties": False, "minProperties": 1,
        "description": ("Done with an `outcome` (records an interaction linked to the to-do), dismissed with a "
                        "`reason`, snoozed until a time (null wakes it), or given to a user (null: nobody). "
                        "A to-do that is no longer open answers 409."),
        "properties": {
            "status": {"type": "string", "enum": ["done", "dismissed"]},
            "outcome": {"type": "string", "minLength": 1, "maxLength": 300},
            "reason": {"type": "string", "minLength": 1, "maxLength": 300},
            "snoozed_until": _nullable({"type": "string", "format": "date-time"}),
            "assignee_id": _nullable(ID),
        },
    },
    "EmailInput": {
        "type": "object", "additionalProperties": False,
        "properties": {
            "template": {"type": "string", "maxLength": 60,
                         "description": "A template key, e.g. testimonial_request, winback, welcome, order_thanks, personal."},
            "subject": {"type": "string", "maxLength": 300, "description": "Replaces the template's subject."},
            "body": {"type": "string", "maxLength": 50000,
                     "description": "Markdown with the template variables; without `template`, a personal message."},
        },
    },
    "Email": {
        "type": "object", "required": ["id", "contact_id", "template", "status", "reason", "smtp_answer", "subject",
                                       "message_id", "attempts", "created_at", "finished_at"],
        "properties": {
            "id": {"type": "integer"}, "contact_id": _nullable({"type": "integer"}), "template": _nullable(STRING),
            "status": {"type": "string", "enum": ["queued", "sending", "sent", "failed", "suppressed"]},
            "reason": _nullable({"type": "string", "description": "Why it was suppressed or failed, as a key "
                                 "(unsubscribed, bounced, no_consent, do_not_contact, no_address, erased, temporary, ...)."}),
            "reason_text": {"type": "string"},
            "smtp_answer": _nullable({"type": "string", "description": "The mail server's last answer, verbatim."}),
            "subject": STRING, "message_id": STRING, "attempts": {"type": "integer"},
            "created_at": TIME, "finished_at": TIME,
        },
    },
    "TaskPage": {
        "type": "object", "required": ["items", "next"],
        "properties": {"items": {"type": "array", "items": _ref("Task")}, "next": _nullable(STRING)},
    },
}

def _field_table() -> str:
    lines = ["| field | kind | operators |", "|---|---|---|"]
    for name, field in SEGMENT_FIELDS.items():
        extra = f" (choices: {', '.join(field.choices)})" if field.choices else ""
        if name in EVENT_OPTIONS:
            extra = f" (value: an object with {', '.join(EVENT_OPTIONS[name])})"
        lines.append(f"| `{name}` | {field.kind}{extra} | {', '.join(f'`{op}`' for op in field.operators)} |")
    return "\n".join(lines)


SEGMENT_CONDITION = {
    "type": "object", "required": ["field", "op"],
    "properties": {
        "field": {"type": "string", "enum": list(SEGMENT_FIELDS)},
        "op": {"type": "string", "enum": list(OPERATOR_LABELS)},
        "value": {"description": "As the field and operator need: a text, number, true/false, YYYY-MM-DD date "
                                 "(the shop's calendar), a list for `in` and `between`, a number of days, or an "
                                 "event's options; none for `is_set` and `is_not_set`."},
    },
}
SCHEMAS["SegmentCondition"] = SEGMENT_CONDITION
SCHEMAS["SegmentGroup"] = {
    "type": "object", "required": ["conditions"],
    "properties": {"match": {"type": "string", "enum": ["all", "any"], "default": "all"},
                   "conditions": {"type": "array", "maxItems": MAX_CONDITIONS, "items": _ref("SegmentCondition")}},
}
SCHEMAS["SegmentDefinition"] = {
    "type": "object", "required": ["conditions"],
    "description": ("Conditions combined with `match` (all or any); a condition may be a group of conditions, one "
                    f"level deep. At most {MAX_CONDITIONS} conditions in all and {MAX_LIST} values in a list. "
                    "`!=`, `not_within_last_days` and `has_not` match exactly the contacts that `=`, "
                    "`within_last_days` and `has` do not (a contact without a value is \"not equal\"). "
                    "`within_last_days: N` means one of the last N shop days, today included. Erased contacts "
                    "never belong to a segment. Fields and their operators:\n\n" + _field_table()),
    "properties": {"match": {"type": "string", "enum": ["all", "any"], "default": "all"},
                   "conditions": {"type": "array", "maxItems": MAX_CONDITIONS,
                                  "items": {"anyOf": [_ref("SegmentCondition"), _ref("SegmentGroup")]}}},
    "x-fields": catalog()["fields"],
}
SCHEMAS["Segment"] = {
    "type": "object", "required": ["id", "name", "description", "definition", "created_at", "updated_at"],
    "properties": {"id": {"type": "integer"}, "name": STRING, "description": STRING,
                   "definition": _ref("SegmentDefinition"), "created_at": TIME, "updated_at": TIME,
                   "count": {"type": "integer", "description": "How many contacts match now."}},
}
SCHEMAS["SegmentInput"] = {
    "type": "object", "required": ["name", "definition"], "additionalProperties": False,
    "properties": {"name": {"type": "string", "minLength": 1, "maxLength": 120},
                   "description": _nullable({"type": "string", "maxLength": 1000}),
                   "definition": _ref("SegmentDefinition")},
}
SCHEMAS["SegmentChange"] = {**SCHEMAS["SegmentInput"], "required": []}
SCHEMAS["SegmentPage"] = {
    "type": "object", "required": ["items", "next"],
    "properties": {"items": {"type": "array", "items": _ref("Segment")}, "next": _nullable(STRING)},
}
SCHEMAS["Figures"] = {
    "type": "object", "required": ["sent", "failed", "bounced", "unsubscribed", "clicked", "orders", "revenue"],
    "properties": {"sent": {"type": "integer"}, "failed": {"type": "integer"}, "bounced": {"type": "integer"},
                   "clicked": {"type": "integer", "description": "Messages with at least one click on a link."},
                   "unsubscribed": {"type": "integer"}, "orders": {"type": "integer", "description":
                   "Paid orders attributed (within the click window after a click or the send window after an email; each order counted once)."},
                   "revenue": DECIMAL},
}
SCHEMAS["Campaign"] = {
    "type": "object", "required": ["id", "name", "status", "segment_id", "template", "subject", "scheduled_at",
                                   "started_at", "finished_at", "figures"],
    "properties": {"id": {"type": "integer"}, "name": STRING, "status": {"type": "string", "enum": [
        "draft", "scheduled", "sending", "sent", "cancelled"]}, "segment_id": _nullable({"type": "integer"}),
        "template": STRING, "subject": STRING, "scheduled_at": TIME, "started_at": TIME, "finished_at": TIME,
        "figures": _ref("Figures")},
}
SCHEMAS["CampaignList"] = {"type": "object", "required": ["items"],
                           "properties": {"items": {"type": "array", "items": _ref("Campaign")}}}
SCHEMAS["Flow"] = {
    "type": "object", "required": ["rule", "action", "segment_id", "figures"],
    "properties": {"rule": STRING, "action": {"type": "string", "enum": ["todo", "email", "both"]},
                   "segment_id": _nullable({"type": "integer"}), "figures": _ref("Figures")},
}
SCHEMAS["FlowList"] = {"type": "object", "required": ["items"],
                       "properties": {"items": {"type": "array", "items": _ref("Flow")}}}
SCHEMAS["SegmentPreviewInput"] = {
    "type": "object", "required": ["definition"], "additionalProperties": False,
    "properties": {"definition": _ref("SegmentDefinition")},
}
SCHEMAS["SegmentPreview"] = {
    "type": "object", "required": ["count", "sample"],
    "properties": {"count": {"type": "integer"}, "sample": {"type": "array", "items": _ref("Contact")}},
}

PATHS: dict[str, Any] = {
    "/contacts": {
        "get": {
            "operationId": "listContacts", "summary": "Search contacts, a page at a time (ordered by id).",
            "parameters": [
                _query("q", {"type": "string", "maxLength": 200},
                       "Matches the name, email, phone or company, or a shop's customer id exactly."),
                _query("stage", {"type": "string", "enum": list(STAGES)}, "Only contacts in this journey stage."),
                *PAGE_PARAMETERS,
            ],
            "responses": {**_ok(200, "A page of contacts.", "ContactPage"), **_errors(*READ_ERRORS)},
        },
        "post": {
            "operationId": "createContact", "summary": "Create a contact.",
            "requestBody": _body("ContactInput"),
            "responses": {**_ok(201, "The new contact.", "Contact"), **_errors(*WRITE_ERRORS, 409)},
        },
    },
    "/contacts/{contact_id}": {
        "parameters": [_path("contact_id")],
        "get": {
            "operationId": "getContact", "summary": "One contact, with its stage, score breakdown and order figures.",
            "responses": {**_ok(200, "The contact.", "Contact"), **_errors(*READ_ERRORS, 404)},
        },
        "patch": {
            "operationId": "updateContact", "summary": "Change some of a contact's fields.",
            "requestBody": _body("ContactChange"),
            "responses": {**_ok(200, "The contact after the change.", "Contact"), **_errors(*WRITE_ERRORS, 404, 409, 410)},
        },
    },
    "/contacts/{contact_id}/interactions": {
        "parameters": [_path("contact_id")],
        "post": {
            "operationId": "logInteraction", "summary": "Log a call, email, chat, note ... with a contact.",
            "requestBody": _body("InteractionInput"),
            "responses": {**_ok(201, "The interaction.", "Interaction"), **_errors(*WRITE_ERRORS, 404, 410)},
        },
    },
    "/contacts/{contact_id}/emails": {
        "parameters": [_path("contact_id")],
        "post": {
            "operationId": "sendEmail",
            "summary": "Queue an email from a template (or a personal subject and body); the worker sends it.",
            "requestBody": _body("EmailInput"),
            "responses": {**_ok(202, "Queued, or stored as suppressed with the reason.", "Email"),
                          **_errors(*WRITE_ERRORS, 404)},
        },
    },
    "/campaigns": {
        "get": {
            "operationId": "listCampaigns", "summary": "Every newsletter with what it earned, newest first.",
            "responses": {**_ok(200, "The newsletters.", "CampaignList"), **_errors(*READ_ERRORS)},
        },
    },
    "/campaigns/{campaign_id}": {
        "parameters": [_path("campaign_id")],
        "get": {
            "operationId": "getCampaign", "summary": "One newsletter with its figures.",
            "responses": {**_ok(200, "The newsletter.", "Campaign"), **_errors(*READ_ERRORS, 404)},
        },
    },
    "/flows": {
        "get": {
            "operationId": "listFlows", "summary": "Each retention rule's flow with what its emails earned.",
            "responses": {**_ok(200, "The flows.", "FlowList"), **_errors(*READ_ERRORS)},
        },
    },
    "/emails/{message_id}": {
        "parameters": [_path("message_id")],
        "get": {
            "operationId": "getEmail", "summary": "A message's status and the mail server's answer.",
            "responses": {**_ok(200, "The message.", "Email"), **_errors(*READ_ERRORS, 404)},
        },
    },
    "/orders": {
        "post": {
            "operationId": "recordOrder",
            "summary": "Record an order; the customer is matched by customer_id, then email, or created.",
            "requestBody": _body("OrderInput"),
            "responses": {
                **_ok(201, "A new order.", "Order"),
                **_ok(200, "That source's order id was recorded before: updated or unchanged (see `result`).", "Order"),
                **_errors(*WRITE_ERRORS),
            },
        },
    },
    "/tasks": {
        "get": {
            "operationId": "listTasks", "summary": "List to-dos, a page at a time (ordered by id).",
            "parameters": [
                _query("status", {"type": "string", "enum": list(TASK_STATUSES)}, "Only to-dos with this status."),
                _query("contact_id", ID, "Only this contact's to-dos."),
                *PAGE_PARAMETERS,
            ],
            "responses": {**_ok(200, "A page of to-dos.", "TaskPage"), **_errors(*READ_ERRORS)},
        },
    },
    "/tasks/{task_id}": {
        "parameters": [_path("task_id")],
        "patch": {
            "operationId": "updateTask", "summary": "Complete, dismiss, snooze or reassign a to-do.",
            "requestBody": _body("TaskChange"),
            "responses": {**_ok(200, "The to-do after the change.", "Task"), **_errors(*WRITE_ERRORS, 404, 409)},
        },
    },
    "/segments": {
        "get": {
            "operationId": "listSegments", "summary": "The saved segments, a page at a time (ordered by id).",
            "parameters": PAGE_PARAMETERS,
            "responses": {**_ok(200, "A page of segments.", "SegmentPage"), **_errors(*READ_ERRORS)},
        },
        "post": {
            "operationId": "createSegment", "summary": "Save a segment (an audience); answers with its id and count.",
            "requestBody": _body("SegmentInput"),
            "responses": {**_ok(201, "The new segment, with its count.", "Segment"), **_errors(*WRITE_ERRORS)},
        },
    },
    "/segments/preview": {
        "post": {
            "operationId": "previewSegment", "summary": "Count a definition and show its first members; nothing is saved.",
            "requestBody": _body("SegmentPreviewInput"),
            "responses": {**_ok(200, "The count and up to 10 members.", "SegmentPreview"), **_errors(*WRITE_ERRORS)},
        },
    },
    "/segments/{segment_id}": {
        "parameters": [_path("segment_id")],
        "get": {
            "operationId": "getSegment", "summary": "One segment, with how many contacts match now.",
            "responses": {**_ok(200, "The segment.", "Segment"), **_errors(*READ_ERRORS, 404)},
        },
        "patch": {
            "operationId": "updateSegment", "summary": "Change a segment's name, description or definition.",
            "requestBody": _body("SegmentChange"),
            "responses": {**_ok(200, "The segment after the change.", "Segment"), **_errors(*WRITE_ERRORS, 404)},
        },
        "delete": {
            "operationId": "deleteSegment", "summary": "Delete a segment (admins).",
            "responses": {"204": {"description": "Deleted."}, **_errors(401, 403, 404, 429)},
        },
    },
    "/segments/{segment_id}/contacts": {
        "parameters": [_path("segment_id")],
        "get": {
            "operationId": "listSegmentContacts", "summary": "A segment's members, a page at a time (ordered by id).",
            "parameters": PAGE_PARAMETERS,
            "responses": {**_ok(200, "A page of contacts.", "ContactPage"), **_errors(*READ_ERRORS, 404)},
        },
    },
}


def spec(server_url: str = "/api/v1") -> dict[str, Any]:
    """Return the OpenAPI document, with the server URL the API is reached at."""
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "Shop CRM API", "version": "1",
            "description": ("Contacts, orders, interactions, to-dos and segments. Send `Authorization: Bearer <token>` "
                            "(make a token on Settings → API tokens or with `crm api-token create`); the token acts "
                            "with its user's role: viewers read, support and sales write. Errors are "
                            "`{\"error\": {\"code\", \"message\", \"fields\"}}`."),
        },
        "servers": [{"url": server_url}],
        "security": [{"bearerAuth": []}],
        "paths": PATHS,
        "components": {
            "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                               "description": "An API token, starting with crm_."}},
            "schemas": SCHEMAS,
        },
    }
