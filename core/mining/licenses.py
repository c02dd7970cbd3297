"""Detect a repository's license as an SPDX id from its LICENSE file text."""

from __future__ import annotations

import re

LICENSE_FILE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENSE.rst", "COPYING", "COPYING.txt",
                      "LICENCE", "LICENCE.txt", "LICENCE.md", "LICENSE-MIT", "LICENSE-APACHE")
PERMISSIVE = ("MIT", "Apache-2.0", "BSD-2-Clause", "BSD-3-Clause", "ISC", "0BSD", "Unlicense")

_SPDX_LINE = re.compile(r"SPDX-License-Identifier:\s*([A-Za-z0-9.+-]+)")

# Ordered: more specific texts first (LGPL/AGPL mention "GNU General Public License" too).
_SIGNATURES: list[tuple[str, tuple[str, ...]]] = [
    ("AGPL-3.0", ("gnu affero general public license",)),
    ("LGPL-3.0", ("gnu lesser general public license", "version 3")),
    ("LGPL-2.1", ("gnu lesser general public license", "version 2.1")),
    ("GPL-3.0", ("gnu general public license", "version 3")),
    ("GPL-2.0", ("gnu general public license", "version 2")),
    ("Apache-2.0", ("apache license", "version 2.0")),
    ("MPL-2.0", ("mozilla public license", "2.0")),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms", "neither the name")),
    ("BSD-3-Clause", ("redistribution and use in source and binary forms", "names of its contributors")),
    ("BSD-2-Clause", ("redistribution and use in source and binary forms",)),
    ("MIT", ("permission is hereby granted, free of charge",)),
    ("ISC", ("permission to use, copy, modify, and/or distribute this software for any purpose",)),
    ("Unlicense", ("this is free and unencumbered software released into the public domain",)),
]


def detect_license(text: str) -> str | None:
    """Return the SPDX id the text is, or None when it is not recognised."""
    spdx = _SPDX_LINE.search(text[:2000])
    if spdx:
        return spdx.group(1)
    normalized = " ".join(text.lower().split())
    for spdx_id, phrases in _SIGNATURES:
        if all(phrase in normalized for phrase in phrases):
            return spdx_id
    return None


def normalize_allow_list(names: list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """Expand `permissive` into the permissive SPDX ids; keep other ids as given."""
    allowed: list[str] = []
    for name in names:
        allowed.extend(PERMISSIVE if name.lower() == "permissive" else [name])
    return tuple(dict.fromkeys(allowed))
