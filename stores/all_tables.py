"""Imports every table module so `create_all` sees the whole schema."""

from stores import tables  # noqa: F401
from stores import eval_tables  # noqa: F401
from stores import curation_tables  # noqa: F401
from stores import training_tables  # noqa: F401
from stores import synthesis_tables  # noqa: F401
