"""Every error calsync raises on purpose.

This module imports nothing from calsync (pip's rule): any module may import it.

    CalsyncError                      base; anything else escaping is a bug
    ├── SyncTokenInvalid              a server refused a sync token: list() instead (href)
    └── UserFacingError               one line for a person, a hint, exit code `exit_code`
        ├── ConfigError               a config file or a flag (key, path)
        │   └── TemplateError         a preset or a schedule file (path, key)
        ├── CalendarParseError        an .ics text, an event or a property (path, uid, property)
        │   └── PlanError             a session plan that makes no sense (uid, property)
        ├── LogLineError              a transcript line (path, line)   [reported, never fatal]
        ├── NoLogsError               no Claude Code logs anywhere (the places looked at)
        ├── AuthError                 a server refused the credentials (href)
        ├── ServerError               a server answered 5xx/4xx or not at all (href, status)
        ├── PreconditionFailed        a conditional write lost to someone else's (href)
        └── LockedError               another calsync run holds the lock (path)

`cli.handle_error()` is the one renderer: it prints `str(error)` (message, then hint) on
one line and exits with `error.exit_code`.
"""

from __future__ import annotations


class CalsyncError(Exception):
    """Base of all calsync errors."""


class SyncTokenInvalid(CalsyncError):
    """Not a failure: the server cannot answer "what changed since this token" (expired or
    unknown token, or no RFC 6578 support). The caller falls back to a full listing."""

    def __init__(self, href: str, reason: str) -> None:
        super().__init__(f"{href}: {reason}")
        self.href, self.reason = href, reason


class UserFacingError(CalsyncError):
    """An error a person can act on: printed as one line, never with a traceback."""

    reference = "calsync-error"
    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(UserFacingError):
    """A setting that is wrong: in a file (`path`) under a key, or a command-line flag."""

    reference = "config-error"

    def __init__(
        self, message: str, *, path: str | None = None, key: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = ": ".join(p for p in (path, key) if p)
        super().__init__(f"{where}: {message}" if where else message, hint=hint)
        self.path, self.key = path, key


class CalendarParseError(UserFacingError):
    reference = "calendar-parse-error"

    def __init__(
        self, message: str, *, path: str | None = None, uid: str | None = None,
        property: str | None = None, hint: str | None = None,
    ) -> None:
        parts = [p for p in (path, f"UID {uid}" if uid else None, property) if p]
        super().__init__(": ".join([*parts, message]), hint=hint)
        self.path, self.uid, self.property = path, uid, property


class PlanError(CalendarParseError):
    reference = "plan-error"


class TemplateError(ConfigError):
    """A preset or schedule file that is wrong: named like a config problem (path, key)."""

    reference = "template-error"


class LogLineError(UserFacingError):
    reference = "log-line-error"

    def __init__(self, message: str, *, path: str, line: int) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line = path, line


class NoLogsError(UserFacingError):
    reference = "no-logs"

    def __init__(self, looked_in: list[str]) -> None:
        super().__init__(
            "no Claude Code logs found; looked in " + (", ".join(looked_in) or "nowhere"),
            hint="set CLAUDE_CONFIG_DIR or pass --logs DIR",
        )
        self.looked_in = looked_in


class AuthError(UserFacingError):
    reference = "auth-error"

    def __init__(self, href: str, *, hint: str | None = None) -> None:
        super().__init__(
            f"{href}: the server refused the credentials",
            hint=hint or "check the username and the password (keyring, password_command "
            "or CALSYNC_PASSWORD)",
        )
        self.href = href


class ServerError(UserFacingError):
    reference = "server-error"
    exit_code = 1

    def __init__(self, href: str, message: str, *, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(f"{href}: {message}" + (f" (HTTP {status})" if status else ""))
        self.href, self.status = href, status
        self.retry_after = retry_after  # seconds, from a 429/503 Retry-After header

    @property
    def transient(self) -> bool:
        """No answer (timeout, reset), 408, 429 or 5xx: worth retrying after a pause."""
        return self.status is None or self.status in (408, 429) or self.status >= 500


class PreconditionFailed(UserFacingError):
    reference = "precondition-failed"
    exit_code = 1

    def __init__(self, href: str) -> None:
        super().__init__(f"{href}: changed by someone else since it was read")
        self.href = href


class LockedError(UserFacingError):
    reference = "locked"
    exit_code = 0

    def __init__(self, path: str) -> None:
        super().__init__(f"another calsync run holds {path}; not starting a second one")
        self.path = path
