"""The usage record and the words it needs, without pydantic.

Part of the glossary in `calsync.model` (which re-exports all of it): the scanner, the usage
ledger and `calsync usage` import this module and never load the calendar models.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum


class Family(StrEnum):
    """A model family, from the model id: a name containing opus, sonnet or haiku."""

    OPUS = "opus"
    SONNET = "sonnet"
    HAIKU = "haiku"
    OTHER = "other"

    @classmethod
    def of(cls, model: str | None) -> Family:
        name = (model or "").lower()
        for family in (cls.OPUS, cls.SONNET, cls.HAIKU):
            if family.value in name:
                return family
        return cls.OTHER


@dataclass(frozen=True, slots=True)
class UsageRecord:
    """One de-duplicated Claude Code assistant message.

    A dataclass rather than a pydantic model: a year of logs holds millions of these and
    they are built in the scanner's hot loop. `timestamp` is UTC-aware.
    """

    timestamp: datetime
    session_id: str
    cwd: str | None
    git_branch: str | None
    model: str
    input_tokens: int = 0
    output_tokens: int = 0
    cache_creation_5m_tokens: int = 0
    cache_creation_1h_tokens: int = 0
    cache_read_tokens: int = 0
    cost_usd: float | None = None
    message_id: str | None = None   # as read from a line; the ledger keeps ids only as keys,
    request_id: str | None = None   # so records read back from it carry None
    manual: bool = False
    note: str | None = None

    @property
    def family(self) -> Family:
        return Family.of(self.model)

    @property
    def cache_creation_tokens(self) -> int:
        return self.cache_creation_5m_tokens + self.cache_creation_1h_tokens

    @property
    def total_tokens(self) -> int:
        """All four counts, as ccusage's `totalTokens`."""
        return (self.input_tokens + self.output_tokens + self.cache_creation_tokens
                + self.cache_read_tokens)

    @property
    def project(self) -> str | None:
        """The last path component of the working directory."""
        return (project_dir(self.cwd) or None) if self.cwd else None


def normal_path(path: str) -> str:
    """A working directory as compared everywhere: forward slashes, no trailing one."""
    return path.replace("\\", "/").rstrip("/")


def project_dir(cwd: str) -> str:
    """The project a working directory names by default: its last path component."""
    return normal_path(cwd).rsplit("/", 1)[-1]


def path_under(path: str, prefix: str) -> bool:
    """Whether normal path `path` is `prefix` or inside it."""
    return bool(prefix) and (path == prefix or path.startswith(prefix + "/"))
