"""To-dos: working them (complete, snooze, reassign, dismiss), making them by hand, and the lists.

Rule to-dos are made and closed as moot by the engine; a person completes one with an
outcome (which is logged on the contact's timeline as an interaction linked to the to-do),
snoozes it to a later day, hands it to someone else, or dismisses it with a reason. Every
change is audited; bad input raises ValidationError naming the field.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import joinedload

from crm.extensions import db
from crm.models import SENTIMENTS, TASK_STATUSES, Contact, Interaction, Task, User, utcnow
from crm.services.people import interactions
from crm.services.shared.bounds import latest_moment
from crm.services.shared.errors import N_, Message, ValidationError
from crm.services.shop.clock import shop_day_bounds, shop_today, start_of_shop_day
from crm.services.trust import audit

# Every kind of to-do, with the words people see. Rule kinds come from crm.services.rules.retention.
KIND_LABELS = {
    "call": N_("Call"),
    "email": N_("Email"),
    "meeting": N_("Meeting"),
    "other": N_("Other"),
    "followup_call": N_("Satisfaction call"),
    "testimonial_request": N_("Testimonial request"),
    "winback": N_("Win-back"),
    "birthday": N_("Birthday greeting"),
    "cart_followup": N_("Abandoned cart"),
    "replenishment": N_("Replenishment reminder"),
    "survey": N_("Survey"),
    "hot_lead": N_("Hot lead"),
    "problem_followup": N_("Problem call"),
    "stay_in_touch": N_("Stay in touch"),
    "data_request": N_("Data request"),
}
MANUAL_KINDS = ("call", "email", "meeting", "other")
# The interaction a completed to-do leaves on the timeline.
CALL_KINDS = frozenset({"call", "followup_call", "hot_lead", "problem_followup"})
EMAIL_KINDS = frozenset({"email", "testimonial_request", "survey", "birthday", "cart_followup", "replenishment"})
AUDITED = ("status", "assignee_id", "due_at", "snoozed_until", "closed_at", "close_reason", "outcome")
TEXT_LIMIT = 300


def interaction_kind(task_kind: str) -> str:
    """Return the interaction kind that records a completed to-do of this kind."""
    if task_kind in CALL_KINDS:
        return "call"
    if task_kind in EMAIL_KINDS:
        return "email"
    return "note"


class TaskNotOpen(ValidationError):
    """The to-do is already done, dismissed or closed, so it cannot change state."""


def _require_open(task: Task, field_name: str) -> None:
    if task.status != "open":
        raise TaskNotOpen(f"This to-do is already {task.status}.", fields={field_name: f"This to-do is already {task.status}."})


def _text(value: Any, field_name: str, what: str, limit: int = TEXT_LIMIT) -> str:
    text = str(value or "").strip()
    if not text:
        raise ValidationError(fields={field_name: what})
    if len(text) > limit:
        raise ValidationError(fields={field_name: Message(N_("Keep it under %(limit)s characters."), limit=limit)})
    return text


def _changed(task: Task, action: str, before: dict, actor_id: int | None) -> None:
    db.session.flush()
    audit.record(action, "task", task.id, user_id=actor_id, before=before, after=audit.snapshot(task, AUDITED))


def assignable_user(user_id: Any, field_name: str = "assignee_id") -> User:
    """Return the active, non-viewer user with this id, or raise ValidationError."""
    try:
        user = db.session.get(User, int(user_id))
    except (TypeError, ValueError):
        user = None
    if user is None:
        raise ValidationError(fields={field_name: N_("Choose someone from the list.")})
    if not user.active or user.role == "viewer":
        raise ValidationError(fields={field_name: Message(N_("%(name)s cannot work to-dos."), name=user.name)})
    return user


def complete_task(task: Task, outcome: str, actor_id: int | None, now: datetime | None = None,
                  sentiment: str | None = None) -> Interaction:
    """Mark a to-do done with its outcome and log that on the contact's timeline; return the interaction."""
    now = now or utcnow()
    _require_open(task, "outcome")
    outcome = _text(outcome, "outcome", "Say how it went.")
    sentiment = sentiment or None
    if sentiment not in (None, *SENTIMENTS):
        raise ValidationError(fields={"sentiment": N_("Sentiment must be negative, neutral or positive.")})
    before = audit.snapshot(task, AUDITED)
    # Done before the interaction is logged, so the engine does not close it as moot meanwhile.
    task.status, task.outcome, task.closed_at = "done", outcome, now
    _changed(task, "complete", before, actor_id)
    kind = interaction_kind(task.kind)
    return interactions.log_interaction(
        db.session.get(Contact, task.contact_id),
        {"kind": kind, "direction": "internal" if kind == "note" else "outbound", "subject": task.title,
         "outcome": outcome, "sentiment": sentiment},
        author_id=actor_id, task_id=task.id, now=now,
    )


def dismiss_task(task: Task, reason: str, actor_id: int | None, now: datetime | None = None) -> None:
    """Close a to-do nobody will do, with the reason (flushed, audited)."""
    now = now or utcnow()
    _require_open(task, "reason")
    reason = _text(reason, "reason", "Say why it will not be done.")
    before = audit.snapshot(task, AUDITED)
    task.status, task.close_reason, task.closed_at = "dismissed", reason, now
    _changed(task, "dismiss", before, actor_id)


def snooze_task(task: Task, until: date | datetime | str, actor_id: int | None, now: datetime | None = None) -> None:
    """Hide a to-do from its assignee's list until a later day (the start of that shop day).

    The to-do falls due then too, if it was due earlier.
    """
    now = now or utcnow()
    _require_open(task, "until")
    if isinstance(until, str):
        try:
            until = date.fromisoformat(until.strip())
        except ValueError:
            raise ValidationError(fields={"until": N_("Give a date such as 2026-05-31.")}) from None
    if isinstance(until, datetime):
        moment = until if until.tzinfo else until.replace(tzinfo=timezone.utc)
    elif isinstance(until, date):
        moment = start_of_shop_day(until)
    else:
        raise ValidationError(fields={"until": N_("Give a date such as 2026-05-31.")})
    if moment <= now:
        raise ValidationError(fields={"until": N_("Pick a day after today.")})
    if moment > latest_moment(now):
        raise ValidationError(fields={"until": Message(N_("Pick a day before %(day)s."), day=latest_moment(now).date().isoformat())})
    before = audit.snapshot(task, AUDITED)
    task.snoozed_until = moment
    if task.due_at < moment:
        task.due_at = moment
    _changed(task, "snooze", before, actor_id)


def reassign_task(task: Task, user_id: int, actor_id: int | None, now: datetime | None = None) -> User:
    """Hand a to-do to another person who can work to-dos; return that person."""
    _require_open(task, "assignee_id")
    user = assignable_user(user_id)
    if task.assignee_id == user.id:
        return user
    before = audit.snapshot(task, AUDITED)
    task.assignee_id = user.id
    _changed(task, "reassign", before, actor_id)
    return user


def create_task(contact: Contact, values: dict[str, Any], actor_id: int | None, now: datetime | None = None) -> Task:
    """Make a to-do by hand for a contact (assigned to the maker unless someone else is named)."""
    now = now or utcnow()
    errors: dict[str, str] = {}
    title = (values.get("title") or "").strip()
    if not title:
        errors["title"] = "Say what needs doing."
    elif len(title) > TEXT_LIMIT:
        errors["title"] = f"Keep it under {TEXT_LIMIT} characters."
    kind = values.get("kind") or "call"
    if kind not in MANUAL_KINDS:
        errors["kind"] = f"Choose one of {', '.join(MANUAL_KINDS)}."
    reason = (values.get("reason") or "").strip()
    if len(reason) > 500:
        errors["reason"] = "Keep it under 500 characters."
    due = values.get("due_at")
    if isinstance(due, str):
        try:
            due = date.fromisoformat(due.strip()) if due.strip() else None
        except ValueError:
            errors["due_at"] = "Give a date such as 2026-05-31."
            due = None
    if isinstance(due, datetime):
        due_at = due if due.tzinfo else due.replace(tzinfo=timezone.utc)
    elif isinstance(due, date):
        due_at = start_of_shop_day(due)
        if due < shop_today(now):
            errors["due_at"] = "Pick today or a later day."
    else:
        due_at = now
    assignee_id = values.get("assignee_id") or actor_id
    try:
        assignee = assignable_user(assignee_id)
    except ValidationError as error:
        errors.update(error.fields)
        assignee = None
    if errors:
        raise ValidationError(fields=errors)
    task = Task(contact_id=contact.id, kind=kind, rule_key=None, title=title, reason=reason, due_at=due_at,
                status="open", assignee_id=assignee.id, created_at=now)
    db.session.add(task)
    db.session.flush()
    audit.record("create", "task", task.id, user_id=actor_id,
                 after={"contact_id": contact.id, "kind": kind, "title": title, **audit.snapshot(task, AUDITED)})
    return task


def create_rule_task(contact_id: int, kind: str, title: str, *, reason: str = "", due_at: datetime,
                     rule_key: str, assignee_id: int | None = None, actor_id: int | None = None) -> Task:
    """Return the open to-do the system made for an occasion (a webhook's data request, say),
    making it (flushed) unless one with this `rule_key` exists for the contact already."""
    existing = db.session.scalar(select(Task).where(Task.contact_id == contact_id, Task.rule_key == rule_key))
    if existing is not None:
        return existing
    task = Task(contact_id=contact_id, kind=kind[:40], rule_key=rule_key, title=title[:TEXT_LIMIT], reason=reason[:500],
                due_at=due_at, status="open", assignee_id=assignee_id)
    db.session.add(task)
    db.session.flush()
    audit.record("create", "task", task.id, user_id=actor_id,
                 after={"contact_id": contact_id, "kind": task.kind, "title": task.title, **audit.snapshot(task, AUDITED)})
    return task


# -- lists -----------------------------------------------------------------------------------


def _with_people(query):
    return query.options(joinedload(Task.contact), joinedload(Task.assignee))


def is_overdue(task: Task, today: date) -> bool:
    """The one overdue rule (the to-do lists, a to-do's row): an open to-do due before the shop's
    day `today` began."""
    return task.status == "open" and task.due_at < start_of_shop_day(today)


@dataclass
class MyTasks:
    """One page of a person's open to-dos, by when they are due in the shop's days."""

    overdue: list[Task] = field(default_factory=list)
    today: list[Task] = field(default_factory=list)
    upcoming: list[Task] = field(default_factory=list)
    total: int = 0  # every open to-do on their list, on all pages
    next_cursor: str | None = None
    prev_cursor: str | None = None

    @property
    def count(self) -> int:
        """The to-dos on this page."""
        return len(self.overdue) + len(self.today) + len(self.upcoming)


# -- keyset pages: (due_at, id) ascending, the order of both lists and of their indexes ----------

PER_PAGE = 50
_CURSOR_FORMAT = "%Y%m%dT%H%M%S.%f"


def cursor_for(task: Task) -> str:
    """Return the opaque cursor that points at this to-do in the lists' order."""
    return f"{task.due_at.astimezone(timezone.utc).strftime(_CURSOR_FORMAT)}-{task.id}"


def parse_cursor(text: str | None) -> tuple[datetime, int] | None:
    """Return (due_at, id) from a cursor, or None when it is missing or not one of ours."""
    if not text or len(text) > 40:
        return None
    moment, _, task_id = text.partition("-")
    try:
        due_at = datetime.strptime(moment, _CURSOR_FORMAT).replace(tzinfo=timezone.utc)
    except ValueError:
        return None
    return (due_at, int(task_id)) if task_id.isdigit() and len(task_id) < 19 else None


@dataclass
class Keyset:
    tasks: list[Task]
    next_cursor: str | None
    prev_cursor: str | None


def _keyset(conditions, after: str | None, before: str | None, per_page: int) -> Keyset:
    """Return the page of to-dos after (or before) a cursor, soonest due first, in one query;
    a bad cursor gives the first page."""
    backwards, key = (True, parse_cursor(before)) if before else (False, parse_cursor(after))
    query = select(Task).where(*conditions)
    if key is not None:
        due_at, task_id = key
        later = or_(Task.due_at > due_at, (Task.due_at == due_at) & (Task.id > task_id))
        earlier = or_(Task.due_at < due_at, (Task.due_at == due_at) & (Task.id < task_id))
        query = query.where(earlier if backwards else later)
    else:
        backwards = False
    order = (Task.due_at.desc(), Task.id.desc()) if backwards else (Task.due_at, Task.id)
    rows = list(db.session.scalars(_with_people(query.order_by(*order).limit(per_page + 1))))
    more = len(rows) > per_page
    rows = rows[:per_page]
    if backwards:
        rows.reverse()
    has_next, has_prev = (key is not None, more) if backwards else (more, key is not None)
    return Keyset(rows, cursor_for(rows[-1]) if rows and has_next else None,
                  cursor_for(rows[0]) if rows and has_prev else None)


def my_tasks(user_id: int, now: datetime | None = None, *, after: str | None = None,
             before: str | None = None, per_page: int = PER_PAGE) -> MyTasks:
    """Return a page of the user's open to-dos, snoozed ones hidden until their day, soonest due
    first, in two queries on the (assignee, status, due) index."""
    now = now or utcnow()
    visible = (Task.status == "open", Task.assignee_id == user_id,
               or_(Task.snoozed_until.is_(None), Task.snoozed_until <= now))
    page = _keyset(visible, after, before, per_page)
    mine = MyTasks(total=db.session.scalar(select(func.count()).select_from(Task).where(*visible)) or 0,
                   next_cursor=page.next_cursor, prev_cursor=page.prev_cursor)
    today = shop_today(now)
    _start, end = shop_day_bounds(today)
    for task in page.tasks:
        if is_overdue(task, today):
            mine.overdue.append(task)
        elif task.due_at < end:
            mine.today.append(task)
        else:
            mine.upcoming.append(task)
    return mine


@dataclass
class TaskFilters:
    status: str | None = "open"  # None: any status
    kind: str | None = None
    assignee: int | str | None = None  # a user id, or "none" for unassigned
    due_from: date | None = None  # shop days, inclusive
    due_to: date | None = None


@dataclass
class TaskPage:
    tasks: list[Task]
    total: int
    next_cursor: str | None = None
    prev_cursor: str | None = None


def _conditions(filters: TaskFilters) -> list:
    conditions = []
    if filters.status:
        if filters.status not in TASK_STATUSES:
            raise ValidationError(fields={"status": f"Choose one of {', '.join(TASK_STATUSES)}."})
        conditions.append(Task.status == filters.status)
    if filters.kind:
        conditions.append(Task.kind == filters.kind)
    if filters.assignee == "none":
        conditions.append(Task.assignee_id.is_(None))
    elif filters.assignee is not None:
        conditions.append(Task.assignee_id == int(filters.assignee))
    if filters.due_from:
        conditions.append(Task.due_at >= start_of_shop_day(filters.due_from))
    if filters.due_to:
        conditions.append(Task.due_at < start_of_shop_day(filters.due_to + timedelta(days=1)))
    return conditions


def task_page(filters: TaskFilters, *, after: str | None = None, before: str | None = None,
              per_page: int = PER_PAGE) -> TaskPage:
    """Return one keyset page of to-dos matching the filters, soonest due first, in two queries."""
    conditions = _conditions(filters)
    total = db.session.scalar(select(func.count()).select_from(Task).where(*conditions)) or 0
    page = _keyset(conditions, after, before, per_page)
    return TaskPage(page.tasks, total, page.next_cursor, page.prev_cursor)


def assignable_users() -> list[User]:
    """Return the people to-dos can be handed to, by name."""
    return list(db.session.scalars(
        select(User).where(User.active.is_(True), User.role != "viewer").order_by(User.name, User.id)))


def open_tasks_for(contact_id: int) -> list[Task]:
    """Return a contact's open to-dos, soonest due first."""
    return list(db.session.scalars(_with_people(
        select(Task).where(Task.contact_id == contact_id, Task.status == "open").order_by(Task.due_at, Task.id))))


# -- many at once ------------------------------------------------------------------------------

BULK_ACTIONS = ("complete", "dismiss", "reassign", "snooze")
BULK_LIMIT = 5000
_BULK_FIELD = {"complete": "outcome", "dismiss": "reason", "reassign": "assignee_id", "snooze": "until"}


@dataclass
class BulkResult:
    action: str
    changed: int
    skipped: int  # named or matching, but no longer open

    def __str__(self) -> str:
        verb = {"complete": "marked done", "dismiss": "dismissed", "reassign": "reassigned",
                "snooze": "snoozed"}[self.action]
        text = f"{self.changed:,} to-do{'' if self.changed == 1 else 's'} {verb}"
        if self.skipped:
            text += f"; {self.skipped:,} {'was' if self.skipped == 1 else 'were'} no longer open"
        return text + "."


def bulk_task_ids(task_ids: list[int] | None = None, filters: TaskFilters | None = None) -> list[int]:
    """Return the ids of the ticked to-dos, or of every open to-do matching the filters."""
    if task_ids is not None:
        return sorted({int(i) for i in task_ids})[:BULK_LIMIT]
    filters = filters or TaskFilters()
    conditions = _conditions(TaskFilters(status="open", kind=filters.kind, assignee=filters.assignee,
                                         due_from=filters.due_from, due_to=filters.due_to))
    return list(db.session.scalars(select(Task.id).where(*conditions).order_by(Task.id).limit(BULK_LIMIT)))


def bulk_act(action: str, task_ids: list[int], value: Any, actor_id: int | None,
             now: datetime | None = None) -> BulkResult:
    """Do one action (complete, dismiss, reassign, snooze) to many to-dos with the same value,
    through the same per-to-do functions (so each is checked and audited); return the counts.

    A to-do that is no longer open is skipped and counted; a bad value raises ValidationError
    before anything changes.
    """
    now = now or utcnow()
    if action not in BULK_ACTIONS:
        raise ValidationError(fields={"action": f"Choose one of {', '.join(BULK_ACTIONS)}."})
    if not task_ids:
        raise ValidationError(N_("Tick at least one to-do, or choose all that match the filters."),
                              fields={"scope": N_("Tick at least one to-do.")})
    field_name = _BULK_FIELD[action]
    if action == "complete":
        value = _text(value, field_name, "Say how it went.")
    elif action == "dismiss":
        value = _text(value, field_name, "Say why they will not be done.")
    elif action == "reassign":
        value = assignable_user(value).id
    elif value in (None, ""):
        raise ValidationError(fields={field_name: N_("Pick the day they should come back.")})
    result = BulkResult(action, 0, 0)
    tasks = {t.id: t for t in db.session.scalars(select(Task).where(Task.id.in_(task_ids)))}
    for task_id in task_ids:
        task = tasks.get(task_id)
        if task is None or task.status != "open":
            result.skipped += 1
            continue
        if action == "complete":
            complete_task(task, value, actor_id, now)
        elif action == "dismiss":
            dismiss_task(task, value, actor_id, now)
        elif action == "reassign":
            reassign_task(task, value, actor_id, now)
        else:
            snooze_task(task, value, actor_id, now)
        result.changed += 1
    return result


# -- a rule switched off ---------------------------------------------------------------------


def _rule_condition(rule: str):
    from crm.services.rules.retention import RULE_KEY_PREFIXES

    if rule not in RULE_KEY_PREFIXES:
        raise ValidationError(f"Unknown to-do rule {rule!r}.")
    return Task.rule_key.like(f"{RULE_KEY_PREFIXES[rule]}:%")


def open_rule_task_count(rule: str) -> int:
    """Return how many open to-dos this retention rule made."""
    return db.session.scalar(select(func.count()).select_from(Task)
                             .where(Task.status == "open", _rule_condition(rule))) or 0


def close_rule_tasks(rule: str, reason: str, actor_id: int | None, now: datetime | None = None) -> int:
    """Close every open to-do this retention rule made, with the reason (one set-based update,
    one audit entry); return how many."""
    now = now or utcnow()
    reason = _text(reason, "reason", "Say why they are closed.")
    closed = db.session.execute(
        update(Task).where(Task.status == "open", _rule_condition(rule))
        .values(status="closed", close_reason=reason, closed_at=now)
        .execution_options(synchronize_session=False)).rowcount or 0
    if closed:
        audit.record("close", "task_rule", None, user_id=actor_id,
                     after={"rule": rule, "closed": closed, "close_reason": reason})
    for obj in list(db.session.identity_map.values()):
        if isinstance(obj, Task) and obj.status == "open":
            db.session.expire(obj)
    return closed


# -- people join: the work follows --------------------------------------------------------------


def _rule_roles() -> dict[str, str]:
    """Return {rule key prefix: the role its to-dos go to}, from the shop's retention settings."""
    from crm.services.rules import settings as rule_settings
    from crm.services.rules.retention import RULE_KEY_PREFIXES

    retention = rule_settings.load("retention")
    return {prefix: retention[rule]["role"] for rule, prefix in RULE_KEY_PREFIXES.items() if rule in retention}


def balance_role_tasks(user: User, actor_id: int | None = None) -> int:
    """When `user` joins (or comes back to) a role, share that role's rule to-dos that nobody of
    the role holds (unassigned, or with an admin standing in) among the role's active members,
    fewest open to-dos first; return how many went to `user` (flushed, audited).

    An admin joining takes the unassigned rule to-dos of roles that have nobody (as the rules
    would have given them), e.g. those a demo shop made before anyone signed up.
    """
    if not user.active or user.role == "viewer":
        return 0
    roles = _rule_roles()
    members = list(db.session.scalars(select(User).where(User.active.is_(True), User.role == user.role)))
    active_roles = set(db.session.scalars(select(User.role).where(User.active.is_(True)).distinct()))
    if user.role == "admin":
        prefixes = [p for p, role in roles.items() if role not in active_roles or role == "admin"]
        held = Task.assignee_id.is_(None)
    else:
        prefixes = [p for p, role in roles.items() if role == user.role]
        admin_ids = select(User.id).where(User.role == "admin")
        held = or_(Task.assignee_id.is_(None), Task.assignee_id.in_(admin_ids))
    if not prefixes or not members:
        return 0
    waiting = list(db.session.scalars(
        select(Task).where(Task.status == "open", held, or_(*[Task.rule_key.like(f"{p}:%") for p in prefixes]))
        .order_by(Task.due_at, Task.id)))
    if not waiting:
        return 0
    ids = [m.id for m in members]
    load = dict.fromkeys(ids, 0)
    load.update(db.session.execute(select(Task.assignee_id, func.count()).where(
        Task.status == "open", Task.assignee_id.in_(ids)).group_by(Task.assignee_id)).all())
    given = 0
    for task in waiting:
        chosen = min(ids, key=lambda uid: (load[uid], uid != user.id, uid))
        load[chosen] += 1
        if task.assignee_id != chosen:
            task.assignee_id = chosen
            given += chosen == user.id
    db.session.flush()
    if given:
        audit.record("balance", "task", None, user_id=actor_id,
                     after={"to_user_id": user.id, "role": user.role, "tasks": given})
    return given
