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
from .paths import APP_NAME, config_file


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class CalendarSettings(_Section):
    url: str | None = Field(
        default=None, description="a local .ics path or a CalDAV collection URL",
        examples=["https://dav.example.com/calendars/me/sessions/"],
    )
    calendar_name: str | None = Field(
        default=None, description="with a server URL: the display name of the calendar to use",
        examples=["Claude sessions"],
    )
    username: str | None = Field(default=None, description="CalDAV username", examples=["me"])
    password_command: str | None = Field(
        default=None, description="a command whose first output line is the password (no shell)",
        examples=["pass show dav.example.com"],
    )
    auth: Literal["auto", "basic", "digest"] = Field(
        default="auto", description="HTTP auth scheme: auto, basic or digest"
    )
    verify_tls: bool = Field(default=True, description="verify the server's TLS certificate")
    timeout_seconds: float = Field(default=30.0, gt=0, description="per-request timeout")


class UsageSettings(_Section):
    logs: tuple[Path, ...] = Field(
        default=(), description="Claude Code config or projects dirs; default: like Claude Code",
        examples=[("~/.claude",)],
    )
    timezone: str | None = Field(
        default=None, description="zone for days in reports; default: local",
        examples=["Europe/Berlin"],
    )
    count_cache_reads: bool = Field(
        default=False, description="count cache reads against the budget (the spec says no)"
    )


class ProjectSettings(_Section):
    path: Path | None = Field(
        default=None, description="the project's git repository (commits and lines per session)",
        examples=["~/src/NAME"],
    )
    paths: tuple[str, ...] = Field(
        default=(), description="working directories whose usage belongs to this project "
        "(instead of matching the directory name)", examples=[("~/src/NAME", "~/work/NAME")],
    )


class SyncSettings(_Section):
    window_days: int = Field(default=14, ge=1, description="default window: this many days back")


class Settings(_Section):
    calendar: CalendarSettings = CalendarSettings()
    usage: UsageSettings = UsageSettings()
    sync: SyncSettings = SyncSettings()
    projects: dict[str, ProjectSettings] = Field(default_factory=dict)
    prices: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="per model id: rates overriding the shipped table"
    )
    state_dir: Path | None = Field(
        default=None, description="where the state database lives",
        examples=["~/.local/state/calsync"],
    )


_HEADER = re.compile(r"^\s*\[\[?([^\]]+)\]\]?\s*(?:#.*)?$")
_PART = r"""(?:[\w-]+|"[^"]*"|'[^']*')"""
_KEY = re.compile(rf"^\s*({_PART}(?:\s*\.\s*{_PART})*)\s*=")
_KEY_PART = re.compile(r""""([^"]*)"|'([^']*)'|([\w-]+)""")


def _key_parts(dotted: str) -> tuple[str, ...]:
    return tuple(next(g for g in m.groups() if g is not None) for m in _KEY_PART.finditer(dotted))


def _line_of(text: str, loc: tuple[str, ...]) -> int | None:
    """The line that sets (or opens the table of) the longest known prefix of `loc`."""
    best, best_len = None, 0
    table: tuple[str, ...] = ()
    for number, line in enumerate(text.splitlines(), 1):
        if header := _HEADER.match(line):
            table = path = _key_parts(header.group(1))
        elif key := _KEY.match(line):
            path = table + _key_parts(key.group(1))
        else:
            continue
        if len(path) > best_len and path == loc[: len(path)]:
            best, best_len = number, len(path)
    return best


def _dotted(loc: tuple[str, ...]) -> str:
    return ".".join(p if re.fullmatch(r"[\w-]+", p) else f'"{p}"' for p in loc)


def validate_settings(
    raw: Mapping[str, Any], *, text: str = "", path: str = "<config>"
) -> Settings:
    """Settings from parsed TOML (or flags); one ConfigError naming every invalid key.

    With the file's `text`, each problem is located as `path:line`.
    """
    try:
        return Settings.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = tuple(str(p) for p in err["loc"])
            line = _line_of(text, loc) if text else None
            message = "unknown key" if err["type"] == "extra_forbidden" else err["msg"]
            problems.append(f"{f'{path}:{line}' if line else path}: {_dotted(loc)}: {message}")
        raise ConfigError("; ".join(problems)) from None


def parse_config(text: str, path: str = "<config>") -> Settings:
    """Settings from TOML text; raises one ConfigError listing every problem."""
    try:
        raw = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        message = str(exc)
        at = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if at:
            where = f"{path}:{at.group(1)}"
            message = f"{message[: at.start()]} (column {at.group(2)})"
        raise ConfigError(f"not valid TOML: {message}", path=where if at else path) from None
    return validate_settings(raw, text=text, path=path)


def _expand_home(value: str, home: str | None) -> str:
    if home and (value == "~" or value.startswith(("~/", "~\\"))):
        return home + value[1:]
    return value


def expand_home(settings: Settings, home: str | None) -> Settings:
    """`~` in the paths of the settings replaced by `home` (the file says ~/src, git needs /)."""
    def path(p: Path | None) -> Path | None:
        return None if p is None else Path(_expand_home(str(p), home))

    url = settings.calendar.url
    projects = {
        name: project.model_copy(update={
            "path": path(project.path),
            "paths": tuple(_expand_home(p, home) for p in project.paths)})
        for name, project in settings.projects.items()
    }
    return settings.model_copy(update={
        "calendar": settings.calendar.model_copy(
            update={"url": _expand_home(url, home) if url else url}),
        "usage": settings.usage.model_copy(
            update={"logs": tuple(Path(_expand_home(str(p), home)) for p in settings.usage.logs)}),
        "projects": projects,
        "state_dir": path(settings.state_dir),
    })


def load_config(path: Path | None, env: Mapping[str, str]) -> Settings:
    """Read the config file (see the module docstring for which one); defaults if absent.

    An explicitly named file (`path` or CALSYNC_CONFIG) must exist. A leading `~` in the
    file's paths stands for HOME.
    """
    file, explicit = config_file(path, env)
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        if explicit:
            raise ConfigError("no such file", path=str(file)) from None
        return Settings()
    except OSError as exc:
        raise ConfigError(f"cannot read: {exc.strerror}", path=str(file)) from None
    return expand_home(parse_config(text, str(file)), env.get("HOME") or env.get("USERPROFILE"))


# --- writing a config (calsync init) ---

_HEADER_LINES = (
    "# calsync configuration, written by `calsync init`: edit freely.",
    "# Precedence: command-line flags > CALSYNC_* environment > this file > defaults.",
    "# A commented line shows a default or an example. A leading ~ in a path means your home.",
    "# The password never goes here: calsync reads it from the keyring (service \"calsync\"),",
    "# from password_command, or from the CALSYNC_PASSWORD environment variable.",
)
_PROJECTS_HELP = (
    "# Projects: usage in a working directory named like X-CLAUDE-PROJECT counts for that",
    "# project. `path` (its git repository) adds commits, files and lines to each session;",
    "# `paths` maps other working directories to it.",
)
_PRICES_HELP = (
    "# Prices: USD per million tokens, for a model missing from (or priced differently in)",
    "# the table calsync ships. Example:",
    "# [prices.my-model]",
    "# input = 3.0",
    "# output = 15.0",
    "# cache_write_5m = 3.75",
    "# cache_write_1h = 6.0",
    "# cache_read = 0.3",
)


def _toml_string(text: str) -> str:
    """A TOML basic string: quotes, backslashes and control characters escaped."""
    escaped = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + re.sub(r"[\x00-\x1f\x7f]", lambda m: f"\\u{ord(m.group()):04x}", escaped) + '"'


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else _toml_string(key)


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    return _toml_string(str(value))


def _render_fields(model: BaseModel, names: tuple[str, ...] | None = None) -> list[str]:
    """One commented block per field: set when it differs from the default."""
    lines: list[str] = []
    for name, info in type(model).model_fields.items():
        if names is not None and name not in names:
            continue
        value, default = getattr(model, name), info.get_default(call_default_factory=True)
        lines.append(f"# {info.description}")
        if value != default:
            lines.append(f"{name} = {_toml_value(value)}")
        elif default not in (None, ()):
            lines.append(f"# {name} = {_toml_value(default)}")
        elif info.examples:
            lines.append(f"# {name} = {_toml_value(info.examples[0])}")
    return lines


def _render_table(header: tuple[str, ...], table: Mapping[str, Any]) -> list[str]:
    lines = ["[" + ".".join(_toml_key(k) for k in header) + "]"]
    nested = {k: v for k, v in table.items() if isinstance(v, Mapping)}
    lines += [f"{_toml_key(k)} = {_toml_value(v)}" for k, v in table.items() if k not in nested]
    for key, sub in nested.items():
        lines += ["", *_render_table((*header, key), sub)]
    return lines


def render_config(settings: Settings) -> str:
    """A commented TOML config that `parse_config` reads back as `settings`."""
    lines = [*_HEADER_LINES, "", *_render_fields(settings, ("state_dir",))]
    for section in ("calendar", "usage", "sync"):
        lines += ["", f"[{section}]", *_render_fields(getattr(settings, section))]
    lines += ["", *_PROJECTS_HELP]
    if not settings.projects:
        lines += ["# [projects.NAME]", *_render_fields(ProjectSettings())]
    for name, project in settings.projects.items():
        lines += ["", f"[projects.{_toml_key(name)}]", *_render_fields(project)]
    lines += ["", *_PRICES_HELP]
    for model_id, rates in settings.prices.items():
        lines += ["", *_render_table(("prices", model_id), rates)]
    return "\n".join(lines) + "\n"


def refuse_overwrite(path: Path, *, force: bool) -> None:
    if path.exists() and not force:
        raise ConfigError("a config file is already there", path=str(path),
                          hint="pass --force to replace it")


def write_config(path: Path, text: str, *, force: bool) -> None:
    """Write a config file atomically (owner-only); an existing one only with `force`."""
    from .files import write_atomic

    refuse_overwrite(path, force=force)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, text.encode("utf-8"), mode=0o600)
    except OSError as exc:
        raise ConfigError(f"cannot write: {exc.strerror}", path=str(path)) from None


def store_password(username: str, password: str) -> None:
    """Keep the CalDAV password in the keyring (service `calsync`), and check it stayed."""
    import keyring

    try:
        keyring.set_password(APP_NAME, username, password)
        kept = keyring.get_password(APP_NAME, username) == password
    except Exception as exc:  # keyring backends raise their own types (D-Bus, macOS, ...)
        raise ConfigError(f"the keyring refused the password: {type(exc).__name__}: {exc}",
                          hint="use password_command or CALSYNC_PASSWORD instead") from None
    if not kept:
        raise ConfigError(f"the keyring ({type(keyring.get_keyring()).__name__}) did not keep "
                          "the password", hint="use password_command or CALSYNC_PASSWORD instead")
