"""One pass of the flows at `now`: each due occasion of a rule whose flow sends email is
re-checked, paced and queued through the email outbox (never a second sending path).

For each rule to-do of a sending flow that is due and has no flow row yet (and every waiting
row whose time has come):
1. the contact is re-derived at `now` (the engine closes a to-do the facts have overtaken:
   an abandoned cart after an order, a win-back after a new order ...);
2. a to-do that no longer applies, or a contact who may not receive marketing email, is
   skipped with the reason on the timeline;
3. the pacing rule (`pacing.earliest`) says send now, wait (the to-do is snoozed until then) or
   skip (past the point where it is still relevant);
4. the message is queued: "email" completes the to-do; "both" snoozes it for the follow-up days
   and a later pass closes it if the contact replied or ordered, else it comes back.
The (contact, rule key) unique row makes each occasion happen at most once.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import and_, or_, select

from crm.extensions import db
from crm.models import Contact, EmailMessage, FlowSend, Interaction, Order, Task, utcnow
from crm.models.order import PAID_STATUSES
from crm.services.email import outbox, suppression
from crm.services.flows import config, pacing
from crm.services.shared import signals
from crm.services.shared.said import N_, Said, said
from crm.services.shared.wording import format_date

TITLES = {
    "followup_first_order": "After the first order", "testimonial_request": "Testimonial request",
    "winback": "Win-back", "birthday": "Birthday greeting", "abandoned_cart": "Abandoned cart",
    "replenishment": "Replenishment reminder", "survey": "Survey", "stay_in_touch": "Stay in touch",
}
PATIENCE = timedelta(days=7)  # a paced message still relevant this long after its occasion fell due
BATCH = 500


@dataclass
class Summary:
    sent: int = 0
    waiting: int = 0
    skipped: int = 0
    todo: int = 0
    followed_up: int = 0
    reasons: list[str] = field(default_factory=list)

    def __str__(self) -> str:
        return (f"{self.sent} sent, {self.waiting} waiting, {self.skipped} skipped, {self.todo} left as to-dos, "
                f"{self.followed_up} follow-ups")

    def said(self) -> Said:
        """The same words as a Said (the jobs page shows them in the reader's language)."""
        return said(N_("%(sent)s sent, %(waiting)s waiting, %(skipped)s skipped, %(todo)s left as to-dos, "
                       "%(followed_up)s follow-ups"), sent=self.sent, waiting=self.waiting, skipped=self.skipped,
                    todo=self.todo, followed_up=self.followed_up)


def marketing_history(contact_ids: list[int]) -> dict[int, list[datetime]]:
    """When each contact was sent (or has queued) a marketing email: the pacing's input."""
    found: dict[int, list[datetime]] = {}
    for start in range(0, len(contact_ids), BATCH):
        rows = db.session.execute(select(EmailMessage.contact_id, EmailMessage.created_at).where(
            EmailMessage.contact_id.in_(contact_ids[start:start + BATCH]), EmailMessage.marketing.is_(True),
            EmailMessage.status.in_(("queued", "sending", "sent"))))
        for contact_id, created_at in rows:
            found.setdefault(contact_id, []).append(created_at)
    return found


def _note(contact: Contact, flow: config.Flow, text: str, now: datetime) -> None:
    """Put what the flow did (when it did not send) on the contact's timeline."""
    db.session.add(Interaction(contact_id=contact.id, kind="note", direction="internal", channel="flow",
                               subject=f"{TITLES[flow.rule]} email not sent"[:300], body=text,
                               outcome=f"skipped: {text}"[:300], occurred_at=now, created_at=now, updated_at=now))


def _want(flow: config.Flow, task: Task, contact: Contact, now: datetime, pace: pacing.Pacing) -> tuple[datetime, datetime]:
    """When the message would like to go and until when it is relevant."""
    if flow.rule == "birthday" and contact.birthday is not None:
        from crm.services.rules.retention import birthday_in

        year = int(task.rule_key.partition(":")[2] or now.year)
        day = birthday_in(contact.birthday, year)
        opening = datetime.combine(day, pace.window_start, tzinfo=pace.zone).astimezone(UTC)
        closing = datetime.combine(day, pace.window_end, tzinfo=pace.zone).astimezone(UTC)
        return max(opening, now) if now <= closing else now, closing
    return now, task.due_at + PATIENCE


def _due_tasks(flows: dict[str, config.Flow], now: datetime) -> list[Task]:
    """Rule to-dos of sending flows, made since the flow was switched on, due (a birthday's as soon
    as it exists: the greeting waits for the day), with no flow row yet."""
    kinds = {flow.kind: flow for flow in flows.values() if flow.sends}
    if not kinds:
        return []
    made_since = or_(*[(Task.kind == kind) & (Task.created_at >= flow.since) if flow.since else (Task.kind == kind)
                       for kind, flow in kinds.items()])
    return list(db.session.scalars(
        select(Task).outerjoin(FlowSend, and_(FlowSend.contact_id == Task.contact_id, FlowSend.rule_key == Task.rule_key))
        .where(made_since, Task.rule_key.is_not(None), FlowSend.id.is_(None), Task.status.in_(("open", "closed")),
               or_(Task.kind == "birthday", Task.due_at <= now))
        .order_by(Task.id).limit(5000)))


def run(now: datetime | None = None) -> Summary:
    """Run every sending flow once at `now` (flushed; the caller commits). Safe to run again."""
    now = now or utcnow()
    summary = Summary()
    flows = config.flows()
    by_kind = {flow.kind: flow for flow in flows.values()}
    _follow_up(now, summary)
    tasks = _due_tasks(flows, now)
    waiting = list(db.session.scalars(select(FlowSend).where(FlowSend.status == "waiting", FlowSend.due_at <= now)))
    contact_ids = sorted({t.contact_id for t in tasks} | {w.contact_id for w in waiting})
    if not contact_ids:
        return summary
    signals.after_contacts_changed(contact_ids, now=now)  # re-check the rules at send time
    db.session.flush()
    for task in tasks:
        db.session.refresh(task)
    pace = config.pacing()
    history = marketing_history(contact_ids)
    members = _segment_members(flows, contact_ids)
    rows = [(task, FlowSend(contact_id=task.contact_id, task_id=task.id, flow=by_kind[task.kind].rule,
                            rule_key=task.rule_key, action=by_kind[task.kind].action, created_at=now)) for task in tasks]
    for row in waiting:
        task = db.session.get(Task, row.task_id) if row.task_id else None
        if task is not None:
            db.session.refresh(task)
        rows.append((task, row))
    for task, row in rows:
        if row.id is None:
            db.session.add(row)
        flow = flows[row.flow]
        contact = db.session.get(Contact, row.contact_id)
        _decide(flow, task, row, contact, now, pace, history, members, summary)
    db.session.flush()
    return summary


def _segment_members(flows: dict[str, config.Flow], contact_ids: list[int]) -> dict[int, set[int]]:
    from crm.services.segments import store as segments

    found: dict[int, set[int]] = {}
    for segment_id in {f.segment_id for f in flows.values() if f.sends and f.segment_id}:
        found[segment_id] = set()
        for start in range(0, len(contact_ids), BATCH):
            found[segment_id] |= set(db.session.scalars(select(Contact.id).where(
                Contact.id.in_(contact_ids[start:start + BATCH]), segments.segment_condition(segment_id))))
    return found


def _skip(row: FlowSend, contact: Contact | None, flow: config.Flow, reason: str, now: datetime, summary: Summary,
          task: Task | None = None, close: bool = False) -> None:
    row.status, row.reason, row.due_at = "skipped", reason[:300], None
    if contact is not None:
        _note(contact, flow, reason, now)
    if close and task is not None and task.status == "open":
        task.status, task.closed_at, task.close_reason = "closed", now, f"email not sent: {reason}"[:300]
    summary.skipped += 1
    summary.reasons.append(reason)


def _decide(flow: config.Flow, task: Task | None, row: FlowSend, contact: Contact | None, now: datetime,
            pace: pacing.Pacing, history: dict[int, list[datetime]], members: dict[int, set[int]],
            summary: Summary) -> None:
    if contact is None or contact.erased_at is not None:
        _skip(row, None, flow, "the contact was erased", now, summary)
        return
    if task is None:
        _skip(row, contact, flow, "the to-do was deleted", now, summary)
        return
    if task.status == "closed":
        _skip(row, contact, flow, f"no longer applies: {task.close_reason or 'the rule no longer holds'}", now, summary)
        return
    if task.status != "open":
        _skip(row, contact, flow, "a person already dealt with the to-do", now, summary)
        return
    if not flow.sends:
        row.status, row.reason = "todo", "the flow was switched to a to-do"
        task.snoozed_until = None
        summary.todo += 1
        return
    if flow.segment_id and contact.id not in members.get(flow.segment_id, set()):
        row.status, row.reason = "todo", "not in the flow's segment: left as a to-do"
        task.snoozed_until = None
        summary.todo += 1
        return
    eligibility = suppression.eligibility(contact, True)
    if not eligibility.ok:
        reason = suppression.REASONS.get(eligibility.status, eligibility.status)
        _skip(row, contact, flow, reason, now, summary, task, close=flow.action == "email")
        return
    want, relevant_until = _want(flow, task, contact, now, pace)
    moment = pacing.earliest(history.get(contact.id, []), want, pace, relevant_until)
    if moment is None:
        _skip(row, contact, flow, f"over the cap of {pace.cap} marketing emails in {pace.period_days} days "
              "(or outside the sending window) until it no longer applied", now, summary, task, close=flow.action == "email")
        return
    if moment > now:
        row.status, row.due_at = "waiting", moment
        row.reason = "waiting for the sending window or the cap"
        task.snoozed_until = moment  # the to-do stays out of the lists while the email waits
        summary.waiting += 1
        return
    message = outbox.queue_message(contact, row.flow, task=task if flow.action == "email" else None, now=now)
    history.setdefault(contact.id, []).append(now)
    row.status, row.message_id, row.sent_at, row.due_at, row.reason = "sent", message.id, now, None, ""
    if message.status != "queued":
        row.status, row.reason = "skipped", suppression.REASONS.get(message.reason or "", message.reason or "")[:300]
        summary.skipped += 1
        return
    if flow.action == "both":
        row.followup_at = now + timedelta(days=flow.followup_days)
        task.snoozed_until = row.followup_at
    summary.sent += 1


def _follow_up(now: datetime, summary: Summary) -> None:
    """"Both": after the follow-up days, close the to-do if the contact replied or ordered, else let it show."""
    rows = db.session.scalars(select(FlowSend).where(FlowSend.status == "sent", FlowSend.action == "both",
                                                     FlowSend.followup.is_(None), FlowSend.followup_at <= now))
    for row in rows:
        task = db.session.get(Task, row.task_id) if row.task_id else None
        since = row.sent_at or row.created_at
        replied = db.session.scalar(select(Interaction.occurred_at).where(
            Interaction.contact_id == row.contact_id, Interaction.direction == "inbound",
            Interaction.occurred_at > since).order_by(Interaction.occurred_at).limit(1))
        ordered = db.session.scalar(select(Order.placed_at).where(
            Order.contact_id == row.contact_id, Order.status.in_(PAID_STATUSES), Order.placed_at > since)
            .order_by(Order.placed_at).limit(1))
        if replied or ordered:
            row.followup = f"replied on {format_date(replied)}" if replied else f"ordered on {format_date(ordered)}"
            if task is not None and task.status == "open":
                task.status, task.closed_at, task.close_reason = "closed", now, f"after the email: {row.followup}"[:300]
        else:
            row.followup = "no reply or order: the to-do is back"
            if task is not None:
                task.snoozed_until = None
        summary.followed_up += 1
