"""Garbage-collector settings for the interactive front ends."""

from __future__ import annotations

import gc

# Textual allocates tens of thousands of short-lived objects per frame (strips, segments, styles).
# With CPython's default of a young collection every 700 allocations, objects that live for one
# frame survive two collections and reach the oldest generation, whose full passes over every
# object (0.1-0.3 s with 10,000 commit rows loaded) then stall a key press every few dozen presses.
# Young collections every 10,000 allocations let them die young; the older generations keep their
# default ratios.
YOUNG_COLLECTION_THRESHOLD = 10_000


def relax_young_collections() -> None:
    """Collect the youngest generation every YOUNG_COLLECTION_THRESHOLD allocations (process-wide)."""
    _young, middle, old = gc.get_threshold()
    if _young < YOUNG_COLLECTION_THRESHOLD:
        gc.set_threshold(YOUNG_COLLECTION_THRESHOLD, middle, old)
