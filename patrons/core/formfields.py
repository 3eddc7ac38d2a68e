"""Form fields shared by the blueprints."""

from __future__ import annotations

import re
from typing import Any

from flask_babel import lazy_gettext as _l
from wtforms import IntegerField

LIMIT = 10**12  # far beyond any count, day or id a form asks for
_WHOLE_NUMBER = re.compile(r"[+-]?[0-9]+")  # not int()'s "٥", "５" or "1_0"


class SmallIntegerField(IntegerField):
    """An IntegerField that refuses numbers of more than twelve digits when it reads them.

    WTForms' NumberRange checks `math.isnan(data)`, which raises OverflowError for an int
    past a float's range (309 digits or more): a 500 instead of a message. Here such input
    is a field error, like any other number out of range. Only ASCII digits are a number."""

    def process_formdata(self, valuelist: list[Any]) -> None:
        text = valuelist[0].strip() if valuelist and isinstance(valuelist[0], str) else ""
        if text and not _WHOLE_NUMBER.fullmatch(text):
            self.data = None
            raise ValueError(_l("Enter a whole number with the digits 0 to 9."))
        super().process_formdata(valuelist)
        if self.data is not None and abs(self.data) >= LIMIT:
            self.data = None
            raise ValueError(_l("That number is too large."))
