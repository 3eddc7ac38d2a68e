"""The pledge pages' blueprint, `pledges`: the support page and the card steps
(start_views.py), the pledge page and its changes (managing_views.py), on the one blueprint
of view_helpers.py, which `register(app)` registers. Importing the two modules adds their
routes to it; endpoint names stay `pledges.<view>`.
"""

from __future__ import annotations

from patrons.pledges import managing_views, start_views
from patrons.pledges.view_helpers import bp

__all__ = ["bp", "managing_views", "start_views"]
