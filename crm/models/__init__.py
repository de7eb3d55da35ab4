"""All models, re-exported so Alembic and the app see every table."""
from crm.models.audit import AuditEntry
from crm.models.base import Base, Money, UTCDateTime, utcnow
from crm.models.campaign import CAMPAIGN_STATUSES, Campaign, CampaignRecipient
from crm.models.contact import HEALTHS, STAGES, Contact, ContactExternalId, ErasedEmail, Tag, contact_tags
from crm.models.email import EMAIL_STATUSES, ConsentEvent, EmailMessage, EmailSuppression, EmailTemplate
from crm.models.flow import FLOW_SEND_STATUSES, EmailClick, FlowSend, SurveyAnswer
from crm.models.integration import ImportRejection, ImportRun, WebhookDelivery
from crm.models.interaction import DIRECTIONS, INTERACTION_KINDS, SENTIMENTS, Interaction
from crm.models.job import JOB_STATUSES, JobRun
from crm.models.journey import ScoreHistory, StageChange
from crm.models.order import ORDER_STATUSES, PAID_STATUSES, Order, OrderLine
from crm.models.segment import Segment, SegmentSize
from crm.models.setting import Setting
from crm.models.summary import (
    SummaryCohortMonth,
    SummaryContactMonth,
    SummaryContactStage,
    SummaryStageMonth,
    SummaryState,
)
from crm.models.task import TASK_STATUSES, Task
from crm.models.user import ROLES, ApiToken, User

__all__ = [
    "ApiToken", "AuditEntry", "EmailClick", "Base", "CAMPAIGN_STATUSES", "Campaign", "CampaignRecipient", "ConsentEvent", "Contact", "ContactExternalId", "DIRECTIONS", "EMAIL_STATUSES",
    "EmailMessage", "EmailSuppression", "EmailTemplate", "ErasedEmail", "FLOW_SEND_STATUSES", "FlowSend",
    "HEALTHS", "INTERACTION_KINDS", "ImportRejection", "ImportRun", "Interaction", "JOB_STATUSES", "JobRun", "Money",
    "ORDER_STATUSES", "Order", "OrderLine", "PAID_STATUSES", "ROLES", "SENTIMENTS", "STAGES",
    "ScoreHistory", "Segment", "SegmentSize", "Setting", "StageChange", "SummaryCohortMonth", "SummaryContactMonth", "SummaryContactStage", "SummaryStageMonth", "SummaryState", "SurveyAnswer", "TASK_STATUSES", "Tag", "Task", "UTCDateTime",
    "User", "WebhookDelivery", "contact_tags", "utcnow",
]
