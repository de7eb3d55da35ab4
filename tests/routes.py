"""Walking every route of the app with real ids: shared by the access matrix, the hostile-input
test and the property tests, so a route another area adds later is covered without changes."""
from __future__ import annotations

import hashlib
import re
from datetime import timedelta
from decimal import Decimal

from flask import Flask
from werkzeug.routing import Rule

from crm.extensions import db
from crm.models import (
    ApiToken, AuditEntry, Contact, ContactExternalId, ImportRejection, ImportRun, Interaction, Order, OrderLine,
    ScoreHistory, Segment, Setting, StageChange, Tag, Task, User, WebhookDelivery, utcnow,
)
from tests.helpers import CHEAP_PASSWORD_HASH, PASSWORD  # noqa: F401  (PASSWORD used by the route walkers)

ROLES = ("anonymous", "viewer", "support", "sales", "admin")
UNKNOWN_ID = 987_654
# A cheap hash so that a test can make many users; real users get Werkzeug's default.

# What a URL parameter names, from "<thing>_id", or "<id>" after a "/things/" segment.
KINDS = {
    "contact": "contact", "customer": "contact", "order": "order", "line": "order_line", "task": "task",
    "todo": "task", "interaction": "interaction", "user": "user", "import": "import_run",
    "run": "import_run", "import_run": "import_run", "rejection": "rejection", "token": "token",
    "api_token": "token", "delivery": "delivery", "webhook": "delivery", "webhook_delivery": "delivery",
    "tag": "tag", "audit": "audit_entry", "entry": "audit_entry", "audit_entry": "audit_entry",
    "stage_change": "stage_change", "score": "score", "segment": "segment",
}


def token_for(role: str) -> str:
    return f"crm_matrix-{role}-token-0123456789abcdef"


def make_role_users() -> dict[str, User]:
    """Return one active user per role, each with an API token (token_for(role))."""
    made = {}
    for role in ROLES[1:]:
        user = User(email=f"{role}@example.com", name=role.title(), role=role, password_hash=CHEAP_PASSWORD_HASH)
        db.session.add(user)
        db.session.flush()
        plain = token_for(role)
        db.session.add(ApiToken(user_id=user.id, name=f"{role} token", prefix=plain[:10],
                                token_hash=hashlib.sha256(plain.encode()).hexdigest()))
        made[role] = user
    db.session.commit()
    return made


def seed_records(**contact_fields) -> dict[str, int]:
    """Create one row of every kind a URL may name and return their ids by kind."""
    now = utcnow()
    owner = User(email="target@example.com", name="Target User", role="support", password_hash=CHEAP_PASSWORD_HASH)
    tag = Tag(name="vip")
    fields = {"email": "ada@example.com", "email_display": "Ada@Example.com", "first_name": "Ada",
              "last_name": "Lovelace", "company": "Analytical Engines", "phone": "+4930123456",
              "created_at": now - timedelta(days=2000)}
    contact = Contact(**{**fields, **contact_fields}, tags=[tag])
    db.session.add_all([owner, contact])
    db.session.flush()
    contact.external_ids.append(ContactExternalId(source="shopify", external_id="gid-7001"))
    order = Order(contact_id=contact.id, source="shopify", external_id="9001", number="#1001", placed_at=now - timedelta(days=10),
                  status="paid", total=Decimal("42.50"), subtotal=Decimal("42.50"),
                  lines=[OrderLine(sku="TEA-1", name="Sencha", quantity=2, unit_price=Decimal("21.25"))])
    interaction = Interaction(contact_id=contact.id, author_id=owner.id, kind="call", subject="Called about the order",
                              body="Wants a gift wrap", occurred_at=now - timedelta(days=1))
    task = Task(contact_id=contact.id, kind="call", title=f"Call {contact.first_name} back", assignee_id=owner.id,
                due_at=now + timedelta(days=1))
    run = ImportRun(kind="shopify-orders", filename="orders.csv", status="finished", counts={"orders": 1},
                    rejections=[ImportRejection(line=3, reason="no email, name or phone", raw={"Name": "#1002"})])
    delivery = WebhookDelivery(source="shopify", delivery_id="d-1", topic="orders/create", status="processed",
                               payload='{"id": 1}')
    stage = StageChange(contact_id=contact.id, from_stage="awareness", to_stage="conversion", reason="First paid order")
    score = ScoreHistory(contact_id=contact.id, score=40, breakdown=[{"rule": "value", "points": 40, "why": "one order"}])
    entry = AuditEntry(action="create", entity="contact", entity_id=contact.id, after={"first_name": contact.first_name},
                       at=now)
    token = ApiToken(user_id=owner.id, name="Zapier", prefix="crm_seedtok", token_hash="0" * 64)
    segment = Segment(name="Analytical customers", description="", definition={
        "match": "all", "conditions": [{"field": "company", "op": "contains", "value": "Analytical"}]})
    db.session.add_all([order, interaction, task, run, delivery, stage, score, entry, token, segment,
                        Setting(key="matrix.example", value={"on": True})])
    db.session.commit()
    return {
        "contact": contact.id, "order": order.id, "order_line": order.lines[0].id, "interaction": interaction.id,
        "task": task.id, "user": owner.id, "import_run": run.id, "rejection": run.rejections[0].id,
        "delivery": delivery.id, "tag": tag.id, "audit_entry": entry.id, "token": token.id,
        "stage_change": stage.id, "score": score.id, "segment": segment.id,
    }


def _singular(word: str) -> str:
    word = word.replace("-", "_")
    if word.endswith("ies"):
        return word[:-3] + "y"
    return word[:-1] if word.endswith("s") else word


def kind_of(rule: Rule, argument: str) -> str | None:
    """Return the kind of record a URL parameter names, or None when it names none we know."""
    base = argument[:-3] if argument.endswith("_id") else argument
    if base == "id":
        # /contacts/<int:id>/...: the segment before the parameter names the kind.
        match = re.search(rf"<(?:[^:>]+:)?{argument}>", rule.rule)
        segments = [s for s in rule.rule[:match.start()].split("/") if s and "<" not in s] if match else []
        base = segments[-1] if segments else ""
    return KINDS.get(base) or KINDS.get(_singular(base))


def url_for_rule(rule: Rule, ids: dict[str, int]) -> str:
    """Return a URL for the rule with each parameter filled by a real id, or an unknown one."""
    values = {}
    for argument in rule.arguments:
        converter = type(rule._converters[argument]).__name__ if argument in rule._converters else "UnicodeConverter"
        kind = kind_of(rule, argument)
        if kind in ids:
            values[argument] = ids[kind]
        elif converter in ("IntegerConverter", "NumberConverter", "IdConverter"):
            values[argument] = UNKNOWN_ID
        elif converter == "UUIDConverter":
            values[argument] = "00000000-0000-4000-8000-000000000000"
        elif converter == "AnyConverter":
            values[argument] = sorted(rule._converters[argument].items)[0]
        else:
            values[argument] = "unknown"
    values.update({k: v for k, v in (rule.defaults or {}).items() if k not in values})
    built = rule.build(values, append_unknown=False)
    return built[1] if built else rule.rule


def app_routes(app: Flask, methods=("GET", "POST")) -> list[tuple[Rule, str]]:
    """Return (rule, method) for every route but static files, in a stable order."""
    found = []
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: (r.rule, r.endpoint)):
        if rule.endpoint == "static":
            continue
        for method in methods:
            if method in (rule.methods or ()):
                found.append((rule, method))
    return found
