"""Personal-data detection: columns that look like they hold e-mail addresses, phone numbers, card
numbers, names in free text, or are named like personal data.

The scan reads a sample of the data, never the whole table; a hit is a flag for a person to check
consent, retention and access, and one evidence line against data availability.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import pandas as pd

__all__ = [
    "PersonalData",
    "find_personal_data",
]


@dataclass(frozen=True)
class PersonalData:
    """A column that looks like it holds personal data, and why."""

    column: str
    kind: str  # e-mail, phone, card number, name, identifier
    share: float  # share of sampled values that matched (1.0 for a name-based match)
    example: str  # a masked example

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready view."""
        return dict(self.__dict__)


_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_PHONE = re.compile(
    r"(?<![\w.])(?:\+?\d{1,3}[\s.-]?)?(?:\(\d{2,4}\)[\s.-]?)?\d{3,4}[\s.-]\d{3,4}(?:[\s.-]\d{2,4})?(?![\w.])"
)
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){13,19}(?!\d)")
_NAME_IN_TEXT = re.compile(
    r"\b(?:Mr|Mrs|Ms|Miss|Dr|Prof)\.?\s+[A-Z][a-z]+|\b(?:my name is|I am|I'm)\s+[A-Z][a-z]+"
)
_SENSITIVE_NAMES = re.compile(
    r"(^|_)(e?mail|phone|mobile|ssn|passport|iban|card(_?number)?|first_?name|last_?name|surname|"
    r"full_?name|address|dob|birth_?date|date_of_birth)($|_)",
    re.IGNORECASE,
)


def _luhn(digits: str) -> bool:
    total, odd = 0, True
    for ch in reversed(digits):
        d = int(ch)
        if not odd:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
        odd = not odd
    return total % 10 == 0


def _mask(value: str) -> str:
    keep = value[:2]
    return keep + "•" * max(0, min(len(value), 12) - 2)


def find_personal_data(
    frame: pd.DataFrame, *, sample: int = 2000, threshold: float = 0.05
) -> list[PersonalData]:
    """Columns that look like personal data: by their values (e-mail addresses, phone numbers,
    Luhn-valid card numbers, names after titles in free text) or by their name.

    A column is flagged when at least ``threshold`` of its sampled non-empty values match.

    Examples
    --------
    >>> frame = pd.DataFrame({"contact": ["ann@example.com", "bob@example.org"], "x": [1, 2]})
    >>> [(p.column, p.kind) for p in find_personal_data(frame)]
    [('contact', 'e-mail')]
    """
    out: list[PersonalData] = []
    rows = frame.head(sample)
    for column in frame.columns:
        name = str(column)
        values = rows[column].dropna()
        text = values.astype(str)
        found: PersonalData | None = None
        if len(text) and not pd.api.types.is_float_dtype(values):
            checks = (
                ("e-mail", lambda s: bool(_EMAIL.search(s))),
                ("card number", lambda s: any(_luhn(re.sub(r"\D", "", m)) for m in _CARD.findall(s))),
                ("phone", lambda s: bool(_PHONE.search(s))),
                ("name in free text", lambda s: bool(_NAME_IN_TEXT.search(s))),
            )
            for kind, check in checks:
                hits = text[text.map(check)]
                share = len(hits) / len(text)
                if share >= threshold:
                    found = PersonalData(name, kind, float(share), _mask(str(hits.iloc[0])))
                    break
        if found is None and _SENSITIVE_NAMES.search(name):
            found = PersonalData(name, "named like personal data", 1.0, "")
        if found is not None:
            out.append(found)
    return out
