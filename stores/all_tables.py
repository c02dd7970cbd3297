"""Imports every table module so `create_all` sees the whole schema."""

from stores import tables  # noqa: F401
from stores.curation import tables as curation_tables  # noqa: F401
from stores.evaluation import tables as evaluation_tables  # noqa: F401
from stores.execution import tables as execution_tables  # noqa: F401
from stores.mining import tables as mining_tables  # noqa: F401
from stores.synthesis import tables as synthesis_tables  # noqa: F401
from stores.training import tables as training_tables  # noqa: F401
