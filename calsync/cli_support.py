"""The glue the commands share, kept out of `cli.py` so each command stays a few lines.

Time zones and day windows from flags, where the calendar is, the questions `calsync init`
asks in a terminal, and which calsync executable a scheduled job should run. Like `cli.py`,
this module imports click and nothing heavy at start-up.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import click

from .errors import ConfigError


@dataclass(frozen=True)
class Window:
    first: Any  # date
    last: Any  # date
    zone: Any  # tzinfo
    zone_name: str
    start: Any  # datetime: first 00:00 in zone
    end: Any  # datetime: the day after last, 00:00 in zone


def agenda_window(first: Any, last: Any, zone_name: str | None,
                   env: dict[str, str]) -> Window:
    from datetime import datetime, time, timedelta

    zone, name = resolve_zone(zone_name, env)
    day_one = first.date() if first else datetime.now(zone).date()
    day_last = last.date() if last else day_one + timedelta(days=6)
    if day_last < day_one:
        raise ConfigError(f"{day_last} is before --from {day_one}", key="--to")
    return Window(day_one, day_last, zone, name, datetime.combine(day_one, time(), zone),
                   datetime.combine(day_last + timedelta(days=1), time(), zone))


def resolve_zone(name: str | None, env: dict[str, str]) -> tuple[Any, str]:
    """The zone named by --tz, else the local one (TZ, then /etc/localtime, then the C
    library's idea of it)."""
    from zoneinfo import ZoneInfo

    candidates = [name] if name else [env.get("TZ", "").lstrip(":"), localtime_key()]
    for candidate in filter(None, candidates):
        try:
            return ZoneInfo(candidate), candidate
        except (ValueError, KeyError):  # ZoneInfoNotFoundError is a KeyError
            if name:
                raise ConfigError(f"unknown time zone {name!r}", key="--tz",
                                  hint="use an IANA name like America/New_York") from None
    from dateutil.tz import tzlocal  # type: ignore[import-untyped]

    return tzlocal(), "local time"


def localtime_key() -> str | None:
    target = os.path.realpath("/etc/localtime")
    marker = "/zoneinfo/"
    return target.split(marker, 1)[1] if marker in target else None


def calendar_location(location: str | None, settings: Any) -> str:
    from .backends import is_url

    chosen = location or settings.calendar.url
    if not chosen:
        raise ConfigError("no calendar given", key="--calendar",
                          hint="pass --calendar FILE|URL or set calendar.url in the config")
    if not is_url(chosen) and not Path(chosen).expanduser().is_file():
        raise ConfigError("no such file", path=chosen, key="--calendar")
    return str(chosen)


def with_username(settings: Any, username: str | None) -> Any:
    if not username:
        return settings
    calendar = settings.calendar.model_copy(update={"username": username})
    return settings.model_copy(update={"calendar": calendar})


@dataclass(frozen=True)
class InitAnswers:
    calendar: str | None
    username: str | None
    password_command: str | None
    store_password: bool
    logs: tuple[str, ...]
    projects: tuple[str, ...]

    def raw(self) -> dict[str, Any]:
        """The answers as config data: local paths made absolute, `~` expanded."""
        from .backends import is_url

        def absolute(path: str) -> str:
            return str(Path(path).expanduser().absolute())

        url = self.calendar
        calendar = {"url": url if not url or is_url(url) else absolute(url),
                    "username": self.username,
                    "password_command": self.password_command}
        projects = {}
        for flag in self.projects:
            name, sep, path = flag.partition("=")
            if not (sep and name.strip() and path.strip()):
                raise ConfigError(f"expected NAME=PATH, got {flag!r}", key="--project")
            projects[name.strip()] = {"path": absolute(path.strip())}
        return {"calendar": {k: v for k, v in calendar.items() if v},
                "usage": {"logs": [absolute(p) for p in self.logs]} if self.logs else {},
                "projects": projects}


def ask(question: str) -> str:
    return str(click.prompt(question, default="", show_default=False)).strip()


def ask_missing(answers: InitAnswers) -> InitAnswers:
    """In a terminal: ask for what the flags left out (a blank answer keeps the default)."""
    from .backends import is_url

    calendar = answers.calendar or ask("Calendar: a CalDAV URL or an .ics file "
                                        "(blank: the default file)") or None
    username, command, store = answers.username, answers.password_command, answers.store_password
    if calendar and is_url(calendar):
        username = username or ask("CalDAV username") or None
        if not (command or store):
            command = ask("Password command (blank: keep the password in the keyring)") or None
            store = command is None
    logs = answers.logs or tuple(filter(None, [ask("Claude Code logs directory "
                                                    "(blank: where Claude Code keeps them)")]))
    projects = answers.projects or tuple(iter(lambda: ask("Project as NAME=PATH to its git "
                                                           "repository (blank: done)"), ""))
    return replace(answers, calendar=calendar, username=username, password_command=command,
                   store_password=store, logs=logs, projects=projects)


def read_password(env: dict[str, str]) -> str:
    """CALSYNC_PASSWORD, else asked in a terminal, else one line of standard input."""
    if env.get("CALSYNC_PASSWORD"):
        return env["CALSYNC_PASSWORD"]
    if sys.stdin.isatty():
        return str(click.prompt("CalDAV password", hide_input=True, confirmation_prompt=True))
    password = sys.stdin.readline().rstrip("\r\n")
    if not password:
        raise ConfigError("no password to store: set CALSYNC_PASSWORD or pass it on standard "
                          "input", key="--store-password")
    return password


def calsync_command() -> tuple[str, ...]:
    """The absolute calsync executable that is running (or python -m calsync)."""
    import shutil

    argv0 = Path(sys.argv[0])
    for candidate in (argv0 if argv0.stem == "calsync" else None,
                      Path(sys.executable).parent / "calsync", shutil.which("calsync")):
        if candidate and Path(candidate).is_file():
            return (str(Path(candidate).absolute()),)
    return (str(Path(sys.executable).absolute()), "-m", "calsync")
