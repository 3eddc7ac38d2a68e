"""The shared core every layer may use: settings, database, clock, money and formatting,
vocabulary, security headers, URLs, CSV, form fields and the Flask extensions.

It imports nothing else from patrons (docs/architecture.md)."""
