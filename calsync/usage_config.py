"""What `calsync usage` needs of the configuration, found without pydantic when it can be.

`calsync usage` runs from cron and from Claude Code's hooks, where importing pydantic (0.1 s
here) is a third of a warm run. What the ledger and its report need of the settings is
`UsageConfig`: five values. `cli.Context.usage_config` gets them:

- no config file: the defaults (they are `config.Settings()`'s: a test checks);
- a config file this calsync validated before, with the same bytes, at the same path, with
  the same HOME: the values it found then, kept in the platform's cache dir (`SNAPSHOT`);
- otherwise the file is validated (`config.load_config`, pydantic) and its values are kept
  for next time. A file that does not validate is never kept: its error shows every time.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from . import __version__

if TYPE_CHECKING:
    from .config import Settings

SNAPSHOT = "usage-config.json"     # in `paths.cache_dir()`
SNAPSHOT_FORMAT = 1                # bumped whenever UsageConfig changes


@dataclass(frozen=True)
class UsageConfig:
    """What the ledger and `calsync usage` need of the settings (`of(settings)`); the
    defaults are those of `config.Settings()`."""

    logs: tuple[Path, ...] = ()                              # usage.logs
    timezone: str | None = None                              # usage.timezone
    prices: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    project_paths: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    state_dir: Path | None = None

    @classmethod
    def of(cls, settings: Settings) -> UsageConfig:
        return cls(logs=settings.usage.logs, timezone=settings.usage.timezone,
                   prices=settings.prices, state_dir=settings.state_dir,
                   project_paths={name: p.paths for name, p in settings.projects.items()
                                  if p.paths})

    def to_json(self) -> dict[str, Any]:
        return {"logs": [str(p) for p in self.logs], "timezone": self.timezone,
                "prices": self.prices, "project_paths": self.project_paths,
                "state_dir": None if self.state_dir is None else str(self.state_dir)}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> UsageConfig:
        state_dir = data["state_dir"]
        return cls(logs=tuple(Path(p) for p in data["logs"]), timezone=data["timezone"],
                   prices=data["prices"],
                   project_paths={k: tuple(v) for k, v in data["project_paths"].items()},
                   state_dir=None if state_dir is None else Path(state_dir))


def kept(text: bytes, path: Path, env: Mapping[str, str],
         validate: Callable[[], UsageConfig]) -> UsageConfig:
    """The values of the config file `path`, whose bytes are `text`: those kept from when it
    was last validated, else `validate()`'s, kept for next time."""
    from .paths import cache_dir

    key = snapshot_key(text, path, env)
    found = read_snapshot(cache_dir(), key)
    if found is None:
        found = validate()
        write_snapshot(cache_dir(), key, found)
    return found


def snapshot_key(text: bytes, path: Path, env: Mapping[str, str]) -> str:
    """What a kept snapshot must match: the config file's bytes and path, the home its `~`
    stands for, this calsync and the snapshot's format."""
    home = env.get("HOME") or env.get("USERPROFILE") or ""
    salt = f"{SNAPSHOT_FORMAT}\0{__version__}\0{path}\0{home}\0".encode()
    return hashlib.blake2b(salt + text, digest_size=16).hexdigest()


def read_snapshot(directory: Path, key: str) -> UsageConfig | None:
    """The values kept under `key`; None when there are none, or they cannot be read."""
    import orjson

    try:
        data = orjson.loads((directory / SNAPSHOT).read_bytes())
        return UsageConfig.from_json(data["config"]) if data["key"] == key else None
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


def write_snapshot(directory: Path, key: str, config: UsageConfig) -> None:
    """Keep the values for the next run (atomically; a cache: a failure only costs time)."""
    import orjson

    from .files import write_atomic

    try:
        directory.mkdir(parents=True, exist_ok=True)
        write_atomic(directory / SNAPSHOT,
                     orjson.dumps({"key": key, "config": config.to_json()}))
    except OSError:
        pass
