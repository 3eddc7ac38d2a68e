"""The vocabulary and limits of voting, its one error, and finding a topic by id.

What a reader may write and how much, which statuses a round's page lists, and where staff
may move a topic next; every other voting module imports these from here.
"""

from __future__ import annotations

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from patrons.models import Topic
from patrons.models.voting import TOPIC_OUTCOMES

TITLE_MAX = 120  # a proposal's title (staff may use the column's 200)
DESCRIPTION_MAX = 600
REASON_MAX = 500
WAITING_PROPOSALS_MAX = 5  # proposals of one patron waiting for moderation at once
VOTES_PER_PATRON_MAX = 20
# topics a reader sees in a round (not the merged or declined ones)
LISTED = ("in_round", "chosen", "in_reporting", "covered")
OUTCOMES = TOPIC_OUTCOMES
# what staff may move a topic of a closed round to, from each status
NEXT_STATUSES: dict[str, tuple[str, ...]] = {
    "in_round": ("chosen",),
    "chosen": ("in_round", "in_reporting", "covered"),
    "in_reporting": ("chosen", "covered"),
    "covered": (),
}


class VotingError(Exception):
    """What went wrong, in words for the reader, and the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


def existing_topic(db: Session, topic_id: int) -> Topic:
    """The topic, or a VotingError with status 404."""
    topic = db.get(Topic, topic_id)
    if topic is None:
        raise VotingError(_("There is no such topic."), 404)
    return topic
