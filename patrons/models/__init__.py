"""All models, imported here so metadata is complete for Alembic and tests."""

from patrons.models.accounts import User, UserSession
from patrons.models.articles import Article, ArticleTag, CorrectionSuggestion, Tag
from patrons.models.events import DailyCount
from patrons.models.mail import OutboundEmail
from patrons.models.pledges import Payment, Pledge
from patrons.models.site import SiteSetting
from patrons.models.voting import Round, Topic

__all__ = [
    "Article",
    "ArticleTag",
    "CorrectionSuggestion",
    "DailyCount",
    "OutboundEmail",
    "Payment",
    "Pledge",
    "Round",
    "SiteSetting",
    "Tag",
    "Topic",
    "User",
    "UserSession",
]
