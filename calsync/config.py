"""Configuration: one schema, validated once, every problem reported with its key.

Precedence, highest first:

1. command-line flags (applied by the CLI with `Settings.model_copy(update=...)`);
2. `CALSYNC_*` environment variables: `CALSYNC_CONFIG` (which file), `CALSYNC_STATE_DIR`
   (where the state database lives), `CALSYNC_PASSWORD` (the CalDAV password);
3. the config file: `--config FILE`, else `CALSYNC_CONFIG`, else `config.toml` in the
   platformdirs user config dir for "calsync";
4. the defaults below.

A missing config file is not an error: every setting has a default, and the embedded
default calendar is a local .ics file. Secrets never live in the file: the password comes
from the keyring (service `calsync`), `password_command`, or `CALSYNC_PASSWORD`.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import ConfigError

APP_NAME = "calsync"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CalendarSettings(_Section):
    url: str | None = Field(None, description="a local .ics path or a CalDAV collection URL")
    calendar_name: str | None = Field(
        None, description="with a server URL: the display name of the calendar to use"
    )
    username: str | None = Field(None, description="CalDAV username")
    password_command: str | None = Field(
        None, description="a command whose first output line is the password (no shell)"
    )
    auth: Literal["auto", "basic", "digest"] = Field("auto", description="HTTP auth scheme")
    verify_tls: bool = Field(True, description="verify the server's TLS certificate")
    timeout_seconds: float = Field(30.0, gt=0, description="per-request timeout")


class UsageSettings(_Section):
    logs: tuple[Path, ...] = Field(
        (), description="Claude Code config or projects dirs; default: like Claude Code"
    )
    timezone: str | None = Field(None, description="zone for days in reports; default: local")
    count_cache_reads: bool = Field(
        False, description="count cache reads against the budget (the spec says no)"
    )


class ProjectSettings(_Section):
    path: Path | None = Field(None, description="the project's git repository")
    paths: tuple[str, ...] = Field(
        (), description="working directories whose usage belongs to this project"
    )


class SyncSettings(_Section):
    window_days: int = Field(14, ge=1, description="default window: this many days back")


class Settings(_Section):
    calendar: CalendarSettings = CalendarSettings()
    usage: UsageSettings = UsageSettings()
    sync: SyncSettings = SyncSettings()
    projects: dict[str, ProjectSettings] = Field(default_factory=dict)
    prices: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per model id: rates overriding the shipped table"
    )
    state_dir: Path | None = Field(None, description="where the state database lives")


def default_config_path(env: Mapping[str, str]) -> Path:
    if env.get("CALSYNC_CONFIG"):
        return Path(env["CALSYNC_CONFIG"]).expanduser()
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / "config.toml"


def default_state_dir(settings: Settings, env: Mapping[str, str]) -> Path:
    if env.get("CALSYNC_STATE_DIR"):
        return Path(env["CALSYNC_STATE_DIR"]).expanduser()
    if settings.state_dir:
        return settings.state_dir.expanduser()
    from platformdirs import user_state_path

    return user_state_path(APP_NAME)


def _line_of(text: str, key: str) -> int | None:
    """The first line where `key` (the last part of a dotted path) is set or opened."""
    pattern = re.compile(rf"^\s*(\[+[^\]]*\b{re.escape(key)}\b[^\]]*\]+|\"?{re.escape(key)}\"?\s*=)")
    for number, line in enumerate(text.splitlines(), 1):
        if pattern.search(line):
            return number
    return None


def parse_config(text: str, path: str = "<config>") -> Settings:
    """Settings from TOML text; raises one ConfigError listing every problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"not valid TOML: {exc}", path=path) from None
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            key = ".".join(str(p) for p in err["loc"])
            line = _line_of(text, str(err["loc"][-1])) if err["loc"] else None
            where = f"{path}:{line}" if line else path
            problems.append(f"{where}: {key}: {err['msg']}")
        raise ConfigError("; ".join(problems)) from None


def load_config(path: Path | None, env: Mapping[str, str]) -> Settings:
    """Read the config file (see the module docstring for which one); defaults if absent.

    An explicitly named file (`path` or CALSYNC_CONFIG) must exist.
    """
    explicit = path is not None or bool(env.get("CALSYNC_CONFIG"))
    file = path.expanduser() if path is not None else default_config_path(env)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError("no such file", path=str(file)) from None
        return Settings()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(file)) from None
    return parse_config(text, str(file))
