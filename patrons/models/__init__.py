"""All models, imported here so metadata is complete for Alembic and tests."""

from patrons.models.accounts import (
    AuditEvent,
    EmailToken,
    KnownDevice,
    RecoveryCode,
    User,
    UserSession,
)
from patrons.models.articles import Article, ArticleTag, CorrectionSuggestion, Tag
from patrons.models.events import BeaconSeen, DailyCount
from patrons.models.mail import OutboundEmail
from patrons.models.pledges import (
    BillingCustomer,
    Payment,
    PaymentChange,
    Pledge,
    PledgeStatusChange,
    StripeCallLease,
    StripeEvent,
)
from patrons.models.reports import ExchangeRate, ReportDay
from patrons.models.site import SiteSetting
from patrons.models.voting import Round, Topic, TopicArticle, Vote
from patrons.models.worker import ScheduledJob, WorkerHeartbeat

__all__ = [
    "Article",
    "AuditEvent",
    "BeaconSeen",
    "EmailToken",
    "KnownDevice",
    "RecoveryCode",
    "BillingCustomer",
    "ArticleTag",
    "CorrectionSuggestion",
    "DailyCount",
    "ExchangeRate",
    "OutboundEmail",
    "Payment",
    "PaymentChange",
    "Pledge",
    "PledgeStatusChange",
    "ReportDay",
    "Round",
    "ScheduledJob",
    "SiteSetting",
    "StripeCallLease",
    "StripeEvent",
    "Tag",
    "Topic",
    "TopicArticle",
    "User",
    "UserSession",
    "Vote",
    "WorkerHeartbeat",
]
