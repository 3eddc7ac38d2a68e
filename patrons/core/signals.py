"""What one feature announces and another reacts to, so neither imports the other.

The sender is the SQLAlchemy session of the transaction the news belongs to: a receiver
writes through it, and its writes commit or roll back with the sender's
(docs/architecture.md, "Reacting across features"). Receivers connect in their feature's
`register(app)`.
"""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

#: Money a patron paid was taken back (a full refund or a dispute), sent by
#: pledges.records.apply_charge with `user_id` and `now`. Voting withdraws the votes.
payment_taken_back = _signals.signal("payment-taken-back")
