"""Voting on coverage, in one import: the rules the views, the staff pages and the tests call.

Each job has its module (all take a session and plain values, never commit, never read the
app or the request, and never build URLs):

- rules.py: the limits and statuses, `VotingError`;
- rounds.py: open, upcoming and closed rounds; staff saving and closing them;
- votes.py: backing and withdrawing (each vote records the payment behind it), and the voter
  lock that keeps one vote per topic and the per-round budget whatever runs at the same moment;
- participation.py: the one definition of a counted vote, the results (frozen at the first
  read after the close), a voter, the active patrons and turnout;
- proposals.py: staff topics, patrons' proposals and their moderation (approve, decline,
  merge);
- results.py: the topics a round's results list, the CSV rows;
- outcomes.py: chosen, in reporting, covered (the voters' mail), linked articles;
- pages.py: what each public page shows, gathered for its view.
"""

from __future__ import annotations

from patrons.voting.outcomes import (
    article_link,
    article_slug,
    link_article,
    round_link,
    set_topic_status,
)
from patrons.voting.proposals import (
    add_topic,
    approve_topic,
    decline_topic,
    declined_topics,
    merge_topic,
    own_proposals,
    proposals,
    propose_topic,
)
from patrons.voting.results import (
    Turnout,
    eligible_patrons,
    listed_topics,
    results,
    results_table,
    turnout,
    vote_counts,
)
from patrons.voting.rounds import (
    RoundDraft,
    all_rounds,
    close_round,
    closed_rounds,
    open_rounds,
    save_round,
    started_round,
    upcoming_round,
)
from patrons.voting.rules import (
    DESCRIPTION_MAX,
    LISTED,
    NEXT_STATUSES,
    OUTCOMES,
    REASON_MAX,
    TITLE_MAX,
    VOTES_PER_PATRON_MAX,
    WAITING_PROPOSALS_MAX,
    VotingError,
)
from patrons.voting.votes import (
    cast_vote,
    votes_of,
    withdraw_vote,
)

__all__ = [
    "DESCRIPTION_MAX",
    "LISTED",
    "NEXT_STATUSES",
    "OUTCOMES",
    "REASON_MAX",
    "TITLE_MAX",
    "VOTES_PER_PATRON_MAX",
    "WAITING_PROPOSALS_MAX",
    "RoundDraft",
    "Turnout",
    "VotingError",
    "add_topic",
    "all_rounds",
    "approve_topic",
    "article_link",
    "article_slug",
    "cast_vote",
    "close_round",
    "closed_rounds",
    "decline_topic",
    "declined_topics",
    "eligible_patrons",
    "link_article",
    "listed_topics",
    "merge_topic",
    "open_rounds",
    "own_proposals",
    "propose_topic",
    "proposals",
    "results",
    "results_table",
    "round_link",
    "save_round",
    "set_topic_status",
    "started_round",
    "turnout",
    "upcoming_round",
    "vote_counts",
    "votes_of",
    "withdraw_vote",
]
