"""Voting on coverage: patrons back the topics the newsroom covers next (service.py holds the
rules; views.py the public pages; staff_views.py the staff pages on the staff blueprint)."""
