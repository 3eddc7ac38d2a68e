"""Signals a lower layer sends and an upper one may listen to, neither importing the other."""

from __future__ import annotations

from blinker import Namespace

_signals = Namespace()

# POST /stripe/webhook answered (pledges/webhooks.py): keyword arguments `type` (the event's
# type if it is one this app handles, "other" for any other, "unknown" before it was read)
# and `outcome` (received, duplicate, ignored, too_large, not_configured, bad_signature,
# unreadable, wrong_mode). patrons/metrics.py counts them.
webhook_handled = _signals.signal("webhook-handled")
