"""Compatibility only: patrons/accounts/views.py still imports these three names from here.

The pledge services now live by job: choice.py (the amount chosen), starting.py (becoming a
patron), managing.py (an existing pledge), simulations.py (offline renewals), queries.py and
errors.py. Remove this module once accounts imports from those.
"""

from __future__ import annotations

from patrons.pledges.errors import PledgeError
from patrons.pledges.managing import end_for_erasure
from patrons.pledges.queries import open_pledge

__all__ = ["PledgeError", "end_for_erasure", "open_pledge"]
