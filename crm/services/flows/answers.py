"""Survey and testimonial answers from the one-click links in email.

`record` stores the answer (a 0-10 score and/or a comment), puts it on the timeline as an
inbound survey (sentiment from the score) or testimonial, so the journey reads it (a testimonial,
or a 9-10 from a repeat customer, is advocacy evidence), makes a satisfaction-call to-do for a
0-6, and re-derives the contact. `nps` gives the shop's Net Promoter Score per month.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import func, select

from crm.extensions import db
from crm.models import Contact, Interaction, SurveyAnswer, utcnow
from crm.services.people import tasks
from crm.services.shared import signals
from crm.services.shared.errors import ValidationError
from crm.services.trust import audit

COMMENT_LIMIT = 5000


def record(contact: Contact, kind: str, score: int | None, comment: str, message_id: int | None,
           now: datetime | None = None) -> SurveyAnswer:
    """Store one answer (flushed); a ValidationError names the bad field."""
    now = now or utcnow()
    comment = str(comment or "").strip()
    if kind == "survey":
        if score is None or not 0 <= score <= 10:
            raise ValidationError(fields={"score": "Choose a number from 0 to 10."})
    elif not comment:
        raise ValidationError(fields={"comment": "Write a few words."})
    if len(comment) > COMMENT_LIMIT:
        raise ValidationError(fields={"comment": f"Keep it under {COMMENT_LIMIT:,} characters."})
    if kind == "survey":
        sentiment = "positive" if score >= 9 else "negative" if score <= 6 else "neutral"
        subject = f"Would recommend us: {score} out of 10"
    else:
        sentiment, subject = "positive", "Testimonial"
    interaction = Interaction(contact_id=contact.id, kind=kind, direction="inbound", channel="email answer",
                              subject=subject, body=comment, sentiment=sentiment, occurred_at=now, created_at=now,
                              updated_at=now)
    db.session.add(interaction)
    if contact.last_interaction_at is None or now > contact.last_interaction_at:
        contact.last_interaction_at = now
    db.session.flush()
    answer = SurveyAnswer(contact_id=contact.id, message_id=message_id, kind=kind, score=score, comment=comment,
                          interaction_id=interaction.id, answered_at=now)
    db.session.add(answer)
    db.session.flush()
    if kind == "survey" and score <= 6:
        tasks.create_rule_task(contact.id, "satisfaction_call", "Satisfaction call: unhappy survey answer",
                               reason=f"scored {score} out of 10" + (f": “{comment[:200]}”" if comment else ""),
                               due_at=now, rule_key=f"nps:{answer.id}")
    audit.record("create", "survey_answer", answer.id, after={"contact_id": contact.id, "kind": kind, "score": score})
    signals.after_contacts_changed([contact.id], now=now)
    return answer


@dataclass
class NpsMonth:
    month: str
    answers: int
    promoters: int
    detractors: int

    @property
    def score(self) -> int:
        return round(100 * (self.promoters - self.detractors) / self.answers) if self.answers else 0


def nps(now: datetime | None = None, months: int = 6) -> list[NpsMonth]:
    """NPS per calendar month (UTC), oldest first, for the months with answers."""
    now = now or utcnow()
    since = (now - timedelta(days=31 * months)).replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    rows: dict[str, NpsMonth] = {}
    for score, answered_at in db.session.execute(select(SurveyAnswer.score, SurveyAnswer.answered_at).where(
            SurveyAnswer.kind == "survey", SurveyAnswer.answered_at >= since)):
        key = answered_at.strftime("%Y-%m")
        month = rows.setdefault(key, NpsMonth(key, 0, 0, 0))
        month.answers += 1
        month.promoters += score >= 9
        month.detractors += score <= 6
    return [rows[k] for k in sorted(rows)]


def latest_comments(limit: int = 5) -> list[tuple[SurveyAnswer, Contact]]:
    return list(db.session.execute(select(SurveyAnswer, Contact).join(Contact, Contact.id == SurveyAnswer.contact_id)
                                   .where(SurveyAnswer.comment != "", Contact.erased_at.is_(None))
                                   .order_by(SurveyAnswer.answered_at.desc()).limit(limit)).tuples())


def count() -> int:
    return db.session.scalar(select(func.count()).select_from(SurveyAnswer)) or 0
