"""The offline Stripe for `make run` and the tests: localstripe (GPL-3.0-or-later) in its own
process, started by `python -m patrons.fakestripe`. Nothing in the app imports it; it is a
development dependency only."""
