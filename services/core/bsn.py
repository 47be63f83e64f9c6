"""The burgerservicenummer and its 11-proef: the one place that knows what a BSN looks like."""

from __future__ import annotations

import re

_NINE_DIGITS = re.compile(r"[0-9]{9}")  # ASCII only: \d also matches other scripts' digits
# A 9-digit run standing alone in free text (not part of a longer number or identifier).
BSN_IN_TEXT = re.compile(r"(?<![0-9A-Za-z])[0-9]{9}(?![0-9A-Za-z])")


def is_valid_bsn(value: str) -> bool:
    """True when ``value`` is nine digits passing the 11-proef (weights 9..2 and -1)."""
    if not isinstance(value, str) or not _NINE_DIGITS.fullmatch(value):
        return False
    digits = [int(c) for c in value]
    total = sum(d * w for d, w in zip(digits[:8], range(9, 1, -1))) - digits[8]
    return total % 11 == 0 and value != "000000000"
