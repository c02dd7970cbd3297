"""Author dates of commits as instants.

Git stores a date as seconds since the Unix epoch (UTC) followed by the author's offset, and takes
any offset, even one far outside +-24 h (Documentation/date-formats.txt, "Git internal format").
The offset only says how the author's clock read; the instant is the seconds alone, so offsets are
never parsed here. An instant outside what `datetime` holds (years 1 to 9999) has no record date.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

EPOCH = datetime(1970, 1, 1, tzinfo=timezone.utc)
_INTEGER = re.compile(rb"[+-]?[0-9]+")


def instant(seconds: int) -> datetime | None:
    """The UTC instant `seconds` after the epoch, or None when it falls outside years 1 to 9999."""
    try:
        return EPOCH + timedelta(seconds=seconds)
    except OverflowError:
        return None


def instant_from_log(token: str) -> datetime | None:
    """The instant of a `%at` field of `git log` (empty or not a number when git could not read the date)."""
    if not token.isascii() or not token.isdigit():
        return None
    return instant(int(token))


def author_instant(raw_commit: bytes) -> datetime | None:
    """The author date of a raw commit object (`git cat-file commit`), read from its `author` header.

    Reads what git's own parser refuses but still names an instant (a negative timestamp, an
    offset that is not a number); None when the header has no whole number of seconds.
    """
    header_end = raw_commit.find(b"\n\n")
    header = raw_commit if header_end < 0 else raw_commit[:header_end]
    for line in header.split(b"\n"):
        if line.startswith(b"author "):
            after_email = line[line.rfind(b">") + 1:].split()
            if after_email and _INTEGER.fullmatch(after_email[0]):
                return instant(int(after_email[0]))
            return None
    return None
