"""Email: rendering and queueing N messages, beside the floor of building them with email.message alone.

    python -m bench.email_render                 # small scale: 200 messages
    python -m bench.email_render --messages 10000

The measured path is `crm.services.email.outbox.queue_messages` for N consenting contacts, 500 at a
time (the path the composer, the API and later newsletters share): the sandboxed template rendered to HTML (Markdown, nh3, css-inline)
and text, the suppression check, the stored row, the timeline entry, the audit entry and the
send job queued (Huey, SQLite), committed every 500. The floor builds the same N multipart
messages (headers, text and HTML parts) with str.format and email.message, and serialises them:
what any sender pays at least. The target (issue 18): 10,000 messages in under 20 s.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from email.headerregistry import Address
from email.message import EmailMessage
from pathlib import Path

TEMPLATE = "testimonial_request"
BATCH = 500


def floor(n: int) -> float:
    """Seconds to build and serialise n multipart messages with the standard library alone."""
    text = "Hello {name},\n\nYou have ordered from us {orders} times now.\n\nWarm regards,\nTea House\n"
    html = "<html><body><p>Hello {name},</p><p>You have ordered from us {orders} times now.</p></body></html>"
    started = time.perf_counter()
    for i in range(n):
        message = EmailMessage()
        message["From"] = Address("Tea House", addr_spec="hello@teahouse.example")
        message["To"] = Address(f"Customer {i}", addr_spec=f"customer{i}@example.com")
        message["Subject"] = f"Would you share a few words about Tea House, Customer {i}?"
        message["Message-ID"] = f"<bench.{i}@teahouse.example>"
        message["List-Unsubscribe"] = f"<https://crm.teahouse.example/u/{i}>"
        message.set_content(text.format(name=f"Customer {i}", orders=i % 7))
        message.add_alternative(html.format(name=f"Customer {i}", orders=i % 7), subtype="html")
        message.as_bytes()
    return time.perf_counter() - started


def measured(n: int, folder: Path) -> tuple[float, float]:
    """Seconds to render and queue n messages through the outbox, and to build their MIME form."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from crm import create_app
    from crm.extensions import db
    from crm.models import Contact, EmailMessage
    from crm.services.email import outbox, sending
    from crm.services.email.settings import effective

    app = create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.sqlite3'}", "SECRET_KEY": "bench",
                      "JOBS_SQLITE_PATH": str(folder / "jobs.sqlite3"), "SHOP_NAME": "Tea House",
                      "EMAIL_SMTP_HOST": "127.0.0.1", "EMAIL_FROM_ADDRESS": "hello@teahouse.example",
                      "EMAIL_FROM_NAME": "Tea House", "PUBLIC_URL": "https://crm.teahouse.example"})
    with app.app_context():
        upgrade()
        db.session.execute(insert(Contact), [
            {"email": f"customer{i}@example.com", "email_display": f"customer{i}@example.com", "first_name": "Customer",
             "last_name": str(i), "consent": True, "order_count": i % 7} for i in range(n)])
        db.session.commit()
        contacts = list(db.session.scalars(select(Contact).order_by(Contact.id)))
        settings = effective()
        started = time.perf_counter()
        for start in range(0, len(contacts), BATCH):
            outbox.queue_messages(contacts[start:start + BATCH], TEMPLATE, settings=settings)
            db.session.commit()
        queue_seconds = time.perf_counter() - started
        started = time.perf_counter()
        for message in db.session.scalars(select(EmailMessage)):
            sending.build(message, settings).as_bytes()
        build_seconds = time.perf_counter() - started
        assert db.session.query(EmailMessage).filter_by(status="queued").count() == n
    return queue_seconds, build_seconds


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--json", type=Path, help="Also write the result here.")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as folder:
        queue_seconds, build_seconds = measured(args.messages, Path(folder))
    floor_seconds = floor(args.messages)
    result = {
        "messages": args.messages,
        "render_and_queue_s": round(queue_seconds, 3),
        "build_mime_s": round(build_seconds, 3),
        "floor_email_message_s": round(floor_seconds, 3),
        "ratio_to_floor": round((queue_seconds + build_seconds) / floor_seconds, 1) if floor_seconds else None,
        "per_message_ms": round(1000 * queue_seconds / args.messages, 2),
        "projected_10000_s": round(10000 * queue_seconds / args.messages, 1),
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
