"""Email: rendering and queueing N messages, beside the floor of building them with email.message alone.

    python -m bench.email_render                 # small scale: 200 messages
    python -m bench.email_render --messages 10000
    python -m bench.email_render --newsletter 100000 --messages 0   # issue 19's newsletter

The contacts are inserted and derived once (stage, score: the state the CRM keeps) before anything
is measured. The measured path is `crm.services.email.outbox.queue_messages` for N consenting contacts, 500 at a
time (the path the composer, the API and later newsletters share): the sandboxed template rendered to HTML (Markdown, nh3, css-inline)
and text, the suppression check, the stored row, the timeline entry, the audit entry and the
send job queued (Huey, SQLite), committed every 500. The floor builds the same N multipart
messages (headers, text and HTML parts) with str.format and email.message, and serialises them:
what any sender pays at least. The target (issue 18): 10,000 messages in under 20 s.

`--newsletter N` measures issue 19's path: a newsletter (the `stay_in_touch` template) to a saved
segment of N consenting contacts, queued by `crm.services.campaigns.sending.send` as the worker's
job does (members read from the segment, the cap and window judged per chunk, the outbox's
`queue_many` rendering each message, campaign_recipients rows, committed per chunk of 1,000),
then one worker's render of the stored rows into the MIME bytes it hands the SMTP server
(`sending.build`, on up to WORKER_SAMPLE of them). Targets: queued in under 60 s for 100,000,
and 300+ messages a second rendered by one worker; the floor is again email.message building the
same messages.
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
WORKER_SAMPLE = 10_000


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


def measured(n: int, folder: Path) -> tuple[float, float, float, float]:
    """Seconds (wall, then CPU) to render and queue n messages through the outbox, and to build their MIME form."""
    from flask_migrate import upgrade
    from sqlalchemy import insert, select

    from crm.extensions import db
    from crm.models import Contact, EmailMessage
    from crm.services.email import outbox, sending
    from crm.services.email.settings import effective

    app = _app(folder)
    with app.app_context():
        upgrade()
        db.session.execute(insert(Contact), [
            {"email": f"customer{i}@example.com", "email_display": f"customer{i}@example.com", "first_name": "Customer",
             "last_name": str(i), "consent": True, "order_count": i % 7} for i in range(n)])
        db.session.commit()
        _derive()
        contacts = list(db.session.scalars(select(Contact).order_by(Contact.id)))
        settings = effective()
        started, cpu = time.perf_counter(), time.process_time()
        for start in range(0, len(contacts), BATCH):
            outbox.queue_messages(contacts[start:start + BATCH], TEMPLATE, settings=settings)
            db.session.commit()
        queue_seconds, queue_cpu = time.perf_counter() - started, time.process_time() - cpu
        messages = list(db.session.scalars(select(EmailMessage)))
        started, cpu = time.perf_counter(), time.process_time()
        for message in messages:
            sending.build(message, settings).as_bytes()
        build_seconds, build_cpu = time.perf_counter() - started, time.process_time() - cpu
        assert db.session.query(EmailMessage).filter_by(status="queued").count() == n
    return queue_seconds, build_seconds, queue_cpu, build_cpu


def _derive() -> None:
    """Give the inserted contacts the stage and score the CRM keeps for every contact (as an import
    or the nightly refresh does), so that the measured path re-derives them as it would in a shop,
    not for the first time."""
    from crm.extensions import db
    from crm.services.rules import engine

    engine.apply(None)
    db.session.commit()


def _app(folder: Path):
    from crm import create_app

    return create_app({"SQLALCHEMY_DATABASE_URI": f"sqlite:///{folder / 'bench.sqlite3'}", "SECRET_KEY": "bench",
                       "JOBS_SQLITE_PATH": str(folder / "jobs.sqlite3"), "SHOP_NAME": "Tea House",
                       "EMAIL_SMTP_HOST": "127.0.0.1", "EMAIL_FROM_ADDRESS": "hello@teahouse.example",
                       "EMAIL_FROM_NAME": "Tea House", "PUBLIC_URL": "https://crm.teahouse.example"})


def newsletter(n: int, folder: Path) -> dict:
    """Seconds to queue a newsletter to a segment of n contacts, and one worker's render rate."""
    from flask_migrate import upgrade
    from sqlalchemy import func, insert, select

    from crm.extensions import db
    from crm.models import CampaignRecipient, Contact, EmailMessage
    from crm.services.campaigns import sending as campaign_sending
    from crm.services.campaigns import store as campaigns
    from crm.services.email import sending
    from crm.services.email.settings import effective
    from crm.services.flows import config as flow_config
    from crm.services.segments import store as segments

    app = _app(folder)
    with app.app_context():
        upgrade()
        for start in range(0, n, 10_000):
            db.session.execute(insert(Contact), [
                {"email": f"customer{i}@example.com", "email_display": f"customer{i}@example.com",
                 "first_name": "Customer", "last_name": str(i), "consent": True, "order_count": 1 + i % 7}
                for i in range(start, min(n, start + 10_000))])
        db.session.commit()
        _derive()
        # Any hour of the day, so the run does not wait for the sending window.
        flow_config.save_pacing({"cap": "2", "period_days": "7", "window_start": "00:00", "window_end": "23:59"}, None)
        segment = segments.create({"name": "Customers", "definition": {"match": "all", "conditions": [
            {"field": "order_count", "op": ">=", "value": 1}]}}, actor_id=None)
        campaign = campaigns.create({"name": "Spring teas", "segment_id": str(segment.id), "template_key": "stay_in_touch",
                                     "subject": "Spring at {{ shop.name }}",
                                     "body": "Hello {{ contact.first_name }}, see [the new teas](https://shop.example/spring)."},
                                    None)
        campaigns.schedule(campaign, None, None)
        db.session.commit()
        started, cpu = time.perf_counter(), time.process_time()
        status = campaign_sending.send(campaign.id)
        queue_seconds, queue_cpu = time.perf_counter() - started, time.process_time() - cpu
        assert status == "sent", status
        queued = db.session.scalar(select(func.count()).select_from(CampaignRecipient).where(
            CampaignRecipient.status == "queued"))
        assert queued == n, (queued, n)
        settings = effective()
        sample = list(db.session.scalars(select(EmailMessage).order_by(EmailMessage.id).limit(min(n, WORKER_SAMPLE))))
        started, cpu = time.perf_counter(), time.process_time()
        for message in sample:
            sending.build(message, settings).as_bytes()
        build_seconds, build_cpu = time.perf_counter() - started, time.process_time() - cpu
    cpu = time.process_time()
    floor_queue = floor(n)
    floor_cpu = time.process_time() - cpu
    return {
        "newsletter_contacts": n,
        "newsletter_queue_s": round(queue_seconds, 2),
        "newsletter_queue_per_s": round(n / queue_seconds),
        "newsletter_queue_ratio_to_floor": round(queue_seconds / floor_queue, 2) if floor_queue else None,
        "worker_render_sample": len(sample),
        "worker_render_per_s": round(len(sample) / build_seconds),
        "worker_render_ratio_to_floor": round(build_seconds / (floor_queue * len(sample) / n), 2) if floor_queue else None,
        "floor_email_message_per_s": round(n / floor_queue) if floor_queue else None,
        # CPU seconds of this process: what a machine shared with other work still tells apart.
        "newsletter_queue_cpu_s": round(queue_cpu, 2),
        "worker_render_cpu_per_s": round(len(sample) / build_cpu) if build_cpu else None,
        "floor_email_message_cpu_per_s": round(n / floor_cpu) if floor_cpu else None,
        "newsletter_queue_cpu_ratio_to_floor": round(queue_cpu / floor_cpu, 2) if floor_cpu else None,
        "worker_render_cpu_ratio_to_floor": round(build_cpu / (floor_cpu * len(sample) / n), 2) if floor_cpu else None,
    }


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=200)
    parser.add_argument("--newsletter", type=int, default=0, help="Also queue a newsletter to this many contacts.")
    parser.add_argument("--json", type=Path, help="Also write the result here.")
    args = parser.parse_args(argv)
    result: dict = {}
    if args.newsletter:
        with tempfile.TemporaryDirectory() as folder:
            result.update(newsletter(args.newsletter, Path(folder)))
    if args.messages:
        result.update(_messages(args.messages))
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    return result


def _messages(n: int) -> dict:
    with tempfile.TemporaryDirectory() as folder:
        queue_seconds, build_seconds, queue_cpu, build_cpu = measured(n, Path(folder))
    cpu = time.process_time()
    floor_seconds = floor(n)
    floor_cpu = time.process_time() - cpu
    return {
        "messages": n,
        "render_and_queue_s": round(queue_seconds, 3),
        "build_mime_s": round(build_seconds, 3),
        "floor_email_message_s": round(floor_seconds, 3),
        "ratio_to_floor": round((queue_seconds + build_seconds) / floor_seconds, 1) if floor_seconds else None,
        "queue_ratio_to_floor": round(queue_seconds / floor_seconds, 2) if floor_seconds else None,
        "per_message_ms": round(1000 * queue_seconds / n, 2),
        "projected_10000_s": round(10000 * queue_seconds / n, 1),
        # CPU seconds of this process: what a machine shared with other work still tells apart.
        "render_and_queue_cpu_s": round(queue_cpu, 3),
        "build_mime_cpu_s": round(build_cpu, 3),
        "floor_email_message_cpu_s": round(floor_cpu, 3),
        "queue_cpu_ratio_to_floor": round(queue_cpu / floor_cpu, 2) if floor_cpu else None,
    }


if __name__ == "__main__":
    main()
