"""Demo articles and topics, written for this demo."""

ARTICLES = [
    (1, dict(
        slug="river-ferry-returns",
        title="The river ferry returns, and with it a town's morning routine",
        summary="After two winters without it, the ferry is back.",
        body_source="The ferry is back.\n\nPeople are glad.",
        author_name="Demo Reporter",
        editor_name="Demo Editor",
        tags=("Regions", "Transport"),
    )),
]

ROUND = {
    "title": "What should we cover this winter?",
    "introduction": "Back up to three topics.",
}

TOPICS = [
    ("Heating in apartment blocks", "Who fixes the boilers, and who pays."),
]
