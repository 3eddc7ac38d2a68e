"""Bring the English catalogue up to date with messages.pot; run by `make translations`.

English is the source language, so every msgstr is its msgid. Messages no longer in the
template are dropped. The creation and revision dates in both files are pinned, so running
`make translations` again without changing a string leaves every file byte for byte the same.
"""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

from babel.messages.catalog import Catalog
from babel.messages.pofile import read_po, write_po

HERE = Path(__file__).resolve().parent
TEMPLATE = HERE / "messages.pot"
ENGLISH = HERE / "en" / "LC_MESSAGES" / "messages.po"
PINNED_DATE = datetime(2026, 1, 1, tzinfo=UTC)


def _write(catalog: Catalog, path: Path, header: str) -> None:
    catalog.header_comment = header  # Babel's default names the current year
    catalog.creation_date = PINNED_DATE
    catalog.revision_date = PINNED_DATE
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("wb") as fh:
        write_po(fh, catalog, sort_output=True, ignore_obsolete=True)


def main() -> int:
    with TEMPLATE.open("rb") as fh:
        template = read_po(fh)
    _write(template, TEMPLATE, "# Translatable strings of Patrons. Regenerate: make translations")

    english = Catalog(
        locale="en",
        project=template.project,
        version=template.version,
        msgid_bugs_address=template.msgid_bugs_address,
        copyright_holder=template.copyright_holder,
        fuzzy=False,
    )
    english.update(template, no_fuzzy_matching=True)
    for message in english:
        if message.id:
            message.string = message.id  # a (singular, plural) tuple for plural forms
            message.flags.discard("fuzzy")
    english.obsolete.clear()
    english.fuzzy = False
    header = "# English messages of Patrons (msgstr = msgid). Regenerate: make translations"
    _write(english, ENGLISH, header)
    print(f"{ENGLISH.relative_to(HERE.parent.parent)}: {len(english)} messages")
    return 0


if __name__ == "__main__":
    sys.exit(main())
