"""calsync: the calendar as the source of truth for Claude Code sessions.

The library API is what `__all__` names; everything else may change between releases.
"""

from calsync.errors import CalsyncError, UserFacingError
from calsync.model import (
    Actuals,
    Budget,
    CalendarObject,
    Family,
    GitStats,
    Goal,
    Occurrence,
    SessionPlan,
    Status,
    UsageRecord,
)

__version__ = "0.1.0"

__all__ = [
    "Actuals",
    "Budget",
    "CalendarObject",
    "CalsyncError",
    "Family",
    "GitStats",
    "Goal",
    "Occurrence",
    "SessionPlan",
    "Status",
    "UsageRecord",
    "UserFacingError",
    "__version__",
]
