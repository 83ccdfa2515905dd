"""Ready-to-install jobs that run `calsync sync --quiet` every 15 minutes (pure).

`render(kind, job)` returns the text `calsync schedule --KIND` prints:

cron
    A commented crontab line: `*/15 * * * *`, the absolute command, output appended to
    `sync.log` in the user log dir (cron has no journal; the directory must exist, the
    CLI creates it).
systemd
    A user service (Type=oneshot) and timer (OnCalendar=*:0/15, Persistent=true, so a run
    missed while the machine slept happens at wake-up), written as a shell script that
    saves both units and enables the timer: pipe it into `sh`. Logs go to the journal.
launchd
    A LaunchAgent plist (StartInterval 900, RunAtLoad) logging to
    ~/Library/Logs/calsync/sync.log, with the install steps in an XML comment.

The command is an argument list starting with the absolute path of calsync (or of a
Python running `-m calsync`); `config` is set as CALSYNC_CONFIG when given. Each format
gets its own quoting: sh for cron (and `%` escaped, which cron turns into a newline),
systemd's own rules (`%` specifiers, `$` expansion), and XML for launchd.
"""

from __future__ import annotations

import plistlib
import re
import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

Kind = Literal["cron", "systemd", "launchd"]
KINDS: tuple[Kind, ...] = ("cron", "systemd", "launchd")
INTERVAL_MINUTES = 15
LAUNCHD_LABEL = "calsync.sync"
SYNC_ARGS = ("sync", "--quiet")


@dataclass(frozen=True, slots=True)
class Job:
    """What to run, and where its output goes."""

    command: tuple[str, ...]      # the absolute calsync executable, or (python, "-m", "calsync")
    log_dir: Path                 # cron: the platform's user log dir
    home: Path                    # launchd logs under home/Library/Logs/calsync
    config: Path | None = None    # exported as CALSYNC_CONFIG when given

    @property
    def argv(self) -> tuple[str, ...]:
        return (*self.command, *SYNC_ARGS)


def render(kind: Kind, job: Job) -> str:
    return {"cron": render_cron, "systemd": render_systemd, "launchd": render_launchd}[kind](job)


def render_cron(job: Job) -> str:
    log = job.log_dir / "sync.log"
    env = f"CALSYNC_CONFIG={shlex.quote(str(job.config))} " if job.config else ""
    command = f"{env}{shlex.join(job.argv)} >> {shlex.quote(str(log))} 2>&1"
    return "\n".join([
        f"# calsync: write Claude Code usage into the calendar every {INTERVAL_MINUTES} minutes.",
        "# Install: run `crontab -e` and add the line below.",
        f"# Log: {log}",
        f"*/{INTERVAL_MINUTES} * * * * {command.replace('%', chr(92) + '%')}",
    ]) + "\n"


def _systemd_quote(word: str, *, expand_dollar: bool = True) -> str:
    quoted = word.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%")
    if expand_dollar:
        quoted = quoted.replace("$", "$$")
    return f'"{quoted}"' if not quoted or re.search(r"[\s\"';]", word) else quoted


def systemd_units(job: Job) -> dict[str, str]:
    """File name → text of the user service and timer."""
    environment = (
        ["Environment=" + _systemd_quote(f"CALSYNC_CONFIG={job.config}", expand_dollar=False)]
        if job.config else []
    )
    service = [
        "[Unit]",
        "Description=calsync: write Claude Code usage into the calendar",
        "",
        "[Service]",
        "Type=oneshot",
        "ExecStart=" + " ".join(_systemd_quote(word) for word in job.argv),
        *environment,
    ]
    timer = [
        "[Unit]",
        f"Description=Run calsync sync every {INTERVAL_MINUTES} minutes",
        "",
        "[Timer]",
        f"OnCalendar=*:0/{INTERVAL_MINUTES}",
        "Persistent=true",
        "",
        "[Install]",
        "WantedBy=timers.target",
    ]
    return {"calsync.service": "\n".join(service) + "\n", "calsync.timer": "\n".join(timer) + "\n"}


def render_systemd(job: Job) -> str:
    lines = [
        f"# calsync: a systemd user timer running `calsync sync --quiet` every "
        f"{INTERVAL_MINUTES} minutes.",
        "# Install: pipe this output into `sh`, or save the two units below by hand and run the",
        "# two systemctl commands at the end.",
        "# Logs: journalctl --user -u calsync.service",
        "# To keep it running while you are logged out: loginctl enable-linger \"$USER\"",
        'units="${XDG_CONFIG_HOME:-$HOME/.config}/systemd/user"',
        'mkdir -p "$units"',
    ]
    for name, text in systemd_units(job).items():
        lines += [f"cat > \"$units/{name}\" <<'UNIT'", text.rstrip("\n"), "UNIT"]
    lines += ["systemctl --user daemon-reload", "systemctl --user enable --now calsync.timer"]
    return "\n".join(lines) + "\n"


def launchd_plist(job: Job) -> dict[str, object]:
    log = str(job.home / "Library" / "Logs" / "calsync" / "sync.log")
    plist: dict[str, object] = {
        "Label": LAUNCHD_LABEL,
        "ProgramArguments": list(job.argv),
        "StartInterval": INTERVAL_MINUTES * 60,
        "RunAtLoad": True,
        "ProcessType": "Background",
        "StandardOutPath": log,
        "StandardErrorPath": log,
    }
    if job.config:
        plist["EnvironmentVariables"] = {"CALSYNC_CONFIG": str(job.config)}
    return plist


def _xml_comment(lines: Sequence[str]) -> str:
    text = "\n".join(f"  {line}".rstrip() for line in lines)
    if "--" in text:  # not allowed inside an XML comment
        raise ValueError("an XML comment cannot hold '--'")
    return f"<!--\n{text}\n-->\n"


def render_launchd(job: Job) -> str:
    agent = f"~/Library/LaunchAgents/{LAUNCHD_LABEL}.plist"
    comment = _xml_comment([
        f"calsync: a LaunchAgent running calsync sync quietly every {INTERVAL_MINUTES} minutes.",
        "Install:",
        "  mkdir -p ~/Library/LaunchAgents ~/Library/Logs/calsync",
        f"  save this output as {agent}",
        f"  launchctl bootstrap gui/$(id -u) {agent}",
        f"Remove: launchctl bootout gui/$(id -u)/{LAUNCHD_LABEL}",
        "Logs: ~/Library/Logs/calsync/sync.log",
    ])
    xml = plistlib.dumps(launchd_plist(job), sort_keys=False).decode("utf-8")
    head, _, body = xml.partition("<plist")
    return f"{head}{comment}<plist{body}"
