"""The CalDAV password: found at run time, never stored, printed, logged or written.

Where it comes from, first match wins:

1. `CALSYNC_PASSWORD` in the environment;
2. `calendar.password_command` from the config: run without a shell (split like a POSIX
   shell line), the first line of its standard output is the password;
3. the system keyring: service `calsync`, the configured `calendar.username`.

A keyring that is missing or broken (common under cron, in containers, over SSH) counts
as "no password", so a run can still go on without one or fail later with a clear
AuthError. A password command that fails is a ConfigError naming the command, never
showing what it printed (that could be the password).
"""

from __future__ import annotations

import shlex
import subprocess
from collections.abc import Callable, Mapping
from typing import Any

from .config import Settings
from .errors import ConfigError

KEYRING_SERVICE = "calsync"
COMMAND_TIMEOUT_SECONDS = 60.0
_KEY = "calendar.password_command"


def get_password(
    settings: Settings, env: Mapping[str, str], *,
    run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> str | None:
    """The password for `settings.calendar.username`, or None if none is configured."""
    if env.get("CALSYNC_PASSWORD"):
        return env["CALSYNC_PASSWORD"]
    command = settings.calendar.password_command
    if command:
        return run_password_command(command, run=run)
    if settings.calendar.username:
        return _from_keyring(settings.calendar.username)
    return None


def run_password_command(
    command: str, *, run: Callable[..., subprocess.CompletedProcess[str]] = subprocess.run,
) -> str:
    """The first stdout line of `command` (no shell); ConfigError if it fails."""
    try:
        argv = shlex.split(command)
    except ValueError as exc:
        raise ConfigError(f"cannot split the command {command}: {exc}", key=_KEY) from None
    if not argv:
        raise ConfigError("is empty", key=_KEY)
    try:
        result = run(argv, capture_output=True, text=True, check=False,
                     timeout=COMMAND_TIMEOUT_SECONDS)
    except FileNotFoundError:
        raise ConfigError(f"no such program {argv[0]!r}", key=_KEY) from None
    except subprocess.TimeoutExpired:
        problem = f"did not finish within {COMMAND_TIMEOUT_SECONDS:g} s"
    except OSError as exc:
        problem = f"cannot run: {exc.strerror}"
    else:
        lines = (result.stdout or "").splitlines()
        if result.returncode == 0 and lines and lines[0]:
            return lines[0]
        problem = (f"failed with exit status {result.returncode}" if result.returncode
                   else "printed no password on its first line")
    # never what it printed: that may be the password
    raise ConfigError(f"the command {command} {problem}", key=_KEY,
                      hint="run it yourself to see why")


def _from_keyring(username: str) -> str | None:
    try:
        import keyring

        password: Any = keyring.get_password(KEYRING_SERVICE, username)
    except Exception:  # no backend, locked, no D-Bus session: all mean "not from here"
        return None
    return password if isinstance(password, str) and password else None
