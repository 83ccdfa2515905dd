"""calsync: the calendar as the source of truth for Claude Code sessions.

The library API is what `__all__` names; everything else may change between releases. The
names are loaded when first used, so that `calsync usage` and the hooks start without the
calendar models.
"""

from __future__ import annotations

from importlib import import_module as _import_module
from typing import TYPE_CHECKING as _TYPE_CHECKING
from typing import Any as _Any

if _TYPE_CHECKING:
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


def __getattr__(name: str) -> _Any:
    if name in ("CalsyncError", "UserFacingError"):
        return getattr(_import_module("calsync.errors"), name)
    if name in __all__:
        return getattr(_import_module("calsync.model"), name)
    raise AttributeError(f"module 'calsync' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
