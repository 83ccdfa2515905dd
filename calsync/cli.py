"""The command line: parse, build, call one function, render.

Each command loads settings, opens what it needs, calls one core or engine function and
hands the result to `output.py`. Heavy libraries are imported inside the commands, so
`calsync --help` and the hooks start fast. Errors: `handle_error()` is the one renderer.
"""

from __future__ import annotations

import gc
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import cli_support as cs
from .errors import ConfigError, UserFacingError

if TYPE_CHECKING:
    from .usage_config import UsageConfig

F = TypeVar("F", bound=Callable[..., Any])


class Context:
    """What every command gets: flags of the group, the environment, settings on demand."""

    def __init__(self, config_path: Path | None, debug: bool) -> None:
        self.config_path = config_path
        self.debug = debug
        self.env: dict[str, str] = dict(os.environ)
        self._settings: Any = None

    @property
    def settings(self) -> Any:
        if self._settings is None:
            from .config import load_config

            self._settings = load_config(self.config_path, self.env)
        return self._settings

    @property
    def usage_config(self) -> UsageConfig:
        """What `usage` and `log` need of the settings, without importing pydantic when
        there is no config file, or it is one validated before (`calsync.usage_config`)."""
        from . import usage_config as uc
        from .paths import config_file

        def validated() -> UsageConfig:
            return uc.UsageConfig.of(self.settings)

        if self._settings is not None:
            return validated()
        path, explicit = config_file(self.config_path, self.env)
        try:
            text = path.read_bytes()
        except FileNotFoundError:
            return validated() if explicit else uc.UsageConfig()
        except OSError:
            return validated()                  # load_config says what is wrong
        return uc.kept(text, path, self.env, validated)


pass_ctx = click.make_pass_decorator(Context)


def handle_error(exc: BaseException, debug: bool) -> None:
    """Print one line for a person and exit; a bug shows its traceback only with --debug."""
    if isinstance(exc, UserFacingError):
        if debug:
            import traceback

            traceback.print_exception(exc, file=sys.stderr)
        click.echo(f"calsync: {exc}", err=True)
        sys.exit(exc.exit_code)
    if debug:
        raise exc
    click.echo(f"calsync: internal error: {type(exc).__name__}: {exc} (run with --debug for "
               "the traceback, and please report it)", err=True)
    sys.exit(3)


def json_option(f: F) -> F:
    return click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")(f)


def calendar_options(f: F) -> F:
    """--calendar and --username, as agenda and sync take them."""
    f = click.option("--username", help="CalDAV username (default: calendar.username).")(f)
    return click.option("--calendar", "location", metavar="FILE|URL",
                        help="An .ics file or a CalDAV collection URL (default: calendar.url)."
                        )(f)


def days_options(*, first: str, last: str) -> Callable[[F], F]:
    """--from and --to, days with the last one included; the defaults named in the help."""
    def decorate(f: F) -> F:
        f = click.option("--to", "last", type=click.DateTime(["%Y-%m-%d"]),
                         help=f"Last day, YYYY-MM-DD, included (default: {last}).")(f)
        return click.option("--from", "first", type=click.DateTime(["%Y-%m-%d"]),
                            help=f"First day, YYYY-MM-DD (default: {first}).")(f)
    return decorate


def tz_option(default: str) -> Callable[[F], F]:
    return click.option("--tz", "zone_name", metavar="ZONE",
                        help=f"IANA time zone for days{default}.")


def logs_option(f: F) -> F:
    return click.option(
        "--logs", multiple=True, type=click.Path(path_type=Path, file_okay=False),
        help="A Claude Code config dir or its projects dir; repeatable (default: usage.logs, "
        "else CLAUDE_CONFIG_DIR, else ~/.config/claude and ~/.claude).")(f)


class CalsyncGroup(click.Group):
    """Runs every command under `handle_error`, so CliRunner tests see what users see."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except Exception as exc:
            debug = isinstance(ctx.obj, Context) and ctx.obj.debug
            handle_error(exc, debug)


@click.group(cls=CalsyncGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--config", "config_path", type=click.Path(path_type=Path), default=None,
              help="Config file (default: CALSYNC_CONFIG, else the platform config dir).")
@click.option("--debug", is_flag=True, help="Show tracebacks.")
@click.version_option(package_name="calsync")
@click.pass_context
def cli(ctx: click.Context, config_path: Path | None, debug: bool) -> None:
    """calsync: plan Claude Code sessions in your calendar, and write back what happened.

    \b
    Example:
      calsync agenda --calendar examples/sessions.ics --from 2026-12-07 --to 2026-12-14
    """
    ctx.obj = Context(config_path, debug)


def main() -> None:
    # A short-lived process: what the imports made lives until exit, so no cycle collection
    # walks it again, during the command or in the interpreter's last one at exit (about
    # 0.02 to 0.03 s of a warm `calsync usage`).
    gc.freeze()
    try:
        cli(prog_name="calsync")
    finally:
        gc.freeze()


# Commands are defined below, one block each, a few lines apiece.
# --- template (issue: foundation) ---


@cli.command()
@click.option("--preset", help="A shipped schedule: weekly (the default) or launch-6-weeks.")
@click.option("--schedule", "schedule_path", type=click.Path(path_type=Path, dir_okay=False),
              help="Your own schedule file (TOML, see templates/README.md).")
@click.option("--project", help="Project name; default: the schedule's `project`.")
@click.option("--start", type=click.DateTime(["%Y-%m-%d"]),
              help="A date (YYYY-MM-DD): week 1 is the Monday-to-Sunday week holding it; "
              "sessions before it are left out. Default: the next Monday.")
@click.option("--weeks", type=click.IntRange(min=1), help="How many weeks (default: the "
              "schedule's `weeks`).")
@click.option("--tz", help="IANA time zone, e.g. America/New_York (default: the schedule's).")
@click.option("-o", "--output", type=click.Path(path_type=Path, dir_okay=False),
              help="Write the .ics here (default: standard output).")
@click.option("--calendar-name", help="Add X-WR-CALNAME: Outlook then imports into a new "
              "calendar of that name.")
@click.option("--no-method", is_flag=True, help="Leave out METHOD:PUBLISH (for a CalDAV upload).")
@click.option("--dtstamp", help="DTSTAMP of every event, ISO 8601 (default: now), for files "
              "that must come out byte for byte the same.")
@click.option("--list", "show_list", is_flag=True, help="Show the presets and session types.")
@pass_ctx
def template(ctx: Context, preset: str | None, schedule_path: Path | None, project: str | None,
             start: Any, weeks: int | None, tz: str | None, output: Path | None,
             calendar_name: str | None, no_method: bool, dtstamp: str | None,
             show_list: bool) -> None:
    """Write an .ics of planned sessions to import into any calendar app.

    \b
    Example:
      calsync template --preset weekly --project my-app --start 2026-12-07 --weeks 6 \\
          --tz America/New_York -o sessions.ics
    """
    from datetime import UTC, datetime

    from . import schedule_file as sf
    from . import weekly
    from .pricing import load_prices

    prices = load_prices(ctx.settings.prices)
    if show_list:
        presets = {name: sf.load_preset(name) for name in sf.list_presets()}
        click.echo(weekly.format_listing(presets, sf.load_session_types(), prices))
        return
    schedule = sf.load_schedule(preset=preset, path=schedule_path)
    options = sf.resolve_options(schedule, project=project, tz=tz, weeks=weeks)
    now = datetime.now(UTC)
    first = start.date() if start else weekly.first_monday_on_or_after(now.astimezone().date())
    series = weekly.plan_series(schedule, project=options.project, start=first,
                                weeks=options.weeks, tz=options.tz, prices=prices)
    text = weekly.render_calendar(series, dtstamp=sf.parse_dtstamp(dtstamp, default=now),
                                  method=not no_method, calendar_name=calendar_name)
    if output is None:
        click.echo(text.encode("utf-8"), nl=False)
    else:
        output.write_bytes(text.encode("utf-8"))
        click.echo(f"wrote {len(series)} weekly series to {output}", err=True)
# --- agenda (issue: foundation) ---


@cli.command()
@calendar_options
@days_options(first="today", last="six days after --from")
@tz_option(", display, all-day and floating events (default: the local zone)")
@json_option
@pass_ctx
def agenda(ctx: Context, location: str | None, username: str | None, first: Any, last: Any,
           zone_name: str | None, as_json: bool) -> None:
    """List the planned sessions from --from to --to (both days included).

    Recurring series are expanded; moved, removed and cancelled occurrences show as the
    calendar says. A bad event is reported after the list, and the exit code is then 2.

    \b
    Examples:
      calsync agenda --calendar sessions.ics --from 2026-12-07 --to 2027-01-31
      calsync agenda --calendar https://dav.example.com/cal/sessions/ --username me \\
          --from 2026-12-07 --to 2026-12-14 --json
    """
    from rich.console import Console

    from . import output
    from .backends import open_backend
    from .calendar_reader import parse_occurrences

    settings = cs.with_username(ctx.settings, username)
    window = cs.agenda_window(first, last, zone_name, ctx.env)
    backend = open_backend(cs.calendar_location(location, settings), settings=settings,
                           env=ctx.env)
    objects = backend.get_many([href for href, _etag in backend.list()])
    reading = parse_occurrences(objects, window.start, window.end, window.zone,
                                location=backend.location)
    if as_json:
        click.echo(output.render_agenda_json(reading.occurrences))
    else:
        output.print_agenda(reading.occurrences, Console(), first=window.first,
                            last=window.last, zone=window.zone_name)
    for problem in reading.problems:
        click.echo(f"calsync: {problem}", err=True)
    if reading.problems:
        sys.exit(2)


# --- usage / log (issue: usage) ---


@cli.command("usage")
@click.option("--since", metavar="DATE", help="First day, YYYY-MM-DD or YYYYMMDD (in --tz).")
@click.option("--until", metavar="DATE", help="Last day, included.")
@tz_option(" (default: usage.timezone in the config, else the local zone)")
@click.option("--by", type=click.Choice(["day", "week", "month", "session", "project", "model"]),
              default="day", show_default=True, help="One row per what.")
@click.option("--project", help="Only this project (last directory of the working directory, "
              "or a project configured with paths).")
@logs_option
@json_option
@pass_ctx
def usage_command(ctx: Context, since: str | None, until: str | None, zone_name: str | None,
                  by: str, project: str | None, logs: tuple[Path, ...], as_json: bool) -> None:
    """Token usage and cost from Claude Code's logs, read incrementally.

    \b
    Examples:
      calsync usage --since 2026-11-01 --until 2026-11-30 --by day
      calsync usage --logs examples/claude-logs --by session --json
    """
    from .sources.transcripts import Listing, log_dirs

    # The transcripts are found while the rest is imported and the configuration loads (it
    # may name other dirs: then this listing is not used).
    with Listing.ahead(log_dirs(ctx.env, None, logs)) as listing:
        from . import output
        from .ledger import usage_report
        from .usage import parse_day, totals

        config = ctx.usage_config
        zone, _ = cs.resolve_zone(zone_name or config.timezone, ctx.env)
        days = [_usage_day(value, flag, parse_day) for value, flag in
                ((since, "--since"), (until, "--until"))]
        report = usage_report(config, ctx.env, by=by, tz=zone, since=days[0],
                              until=days[1], project=project, logs=logs, listing=listing)
    for line in output.usage_warnings([f"{p.path}:{p.line}" for p in report.scan.problems],
                                      report.scan.unreadable, report.unpriced):
        click.echo(f"calsync: warning: {line}", err=True)
    if as_json:
        click.echo(output.render_usage_json(report.rows))
    else:
        click.echo(output.render_usage_table(report.rows, totals(report.rows), by=by))


def _usage_day(value: str | None, flag: str, parse: Callable[[str], Any]) -> Any:
    try:
        return parse(value) if value else None
    except ValueError:
        raise ConfigError(f"not a date: {value!r}", key=flag,
                          hint="use YYYY-MM-DD or YYYYMMDD") from None


@cli.command("log")
@click.option("--model", required=True, help="A model id or family (opus, sonnet, haiku).")
@click.option("--input", "input_tokens", type=click.IntRange(min=0), default=0,
              help="Input tokens.")
@click.option("--output", "output_tokens", type=click.IntRange(min=0), default=0,
              help="Output tokens.")
@click.option("--cache-write", type=click.IntRange(min=0), default=0,
              help="Cache creation tokens (5-minute).")
@click.option("--cache-read", type=click.IntRange(min=0), default=0, help="Cache read tokens.")
@click.option("--at", metavar="TIME", help="When, ISO 8601 (default: now; no offset: the "
              "local zone).")
@click.option("--project", help="The project the work belongs to.")
@click.option("--note", help="What it was, e.g. 'API batch run'.")
@pass_ctx
def log_command(ctx: Context, model: str, input_tokens: int, output_tokens: int,
                cache_write: int, cache_read: int, at: str | None, project: str | None,
                note: str | None) -> None:
    """Record usage that left no Claude Code log (another tool, the API): a manual record.

    \b
    Example:
      calsync log --model sonnet --input 12000 --output 3000 --project my-app --note "API run"
    """
    from datetime import datetime

    from .ledger import log_manual
    from .records import UsageRecord

    zone, _ = cs.resolve_zone(None, ctx.env)
    try:
        when = datetime.fromisoformat(at) if at else datetime.now(zone)
    except ValueError:
        raise ConfigError(f"not a time: {at!r}", key="--at",
                          hint="use ISO 8601, e.g. 2026-11-02T14:30") from None
    record = UsageRecord(
        timestamp=when if when.tzinfo else when.replace(tzinfo=zone), session_id="manual",
        cwd=project, git_branch=None, model=model, input_tokens=input_tokens,
        output_tokens=output_tokens, cache_creation_5m_tokens=cache_write,
        cache_read_tokens=cache_read, manual=True, note=note)
    number = log_manual(ctx.usage_config, ctx.env, record)
    click.echo(f"manual record {number}: {model}, {record.total_tokens:,} tokens at "
               f"{record.timestamp.isoformat(timespec='minutes')}"
               + (f", project {project}" if project else ""))
# --- init / sync / schedule (issue: sync) ---


@cli.command()
@click.option("--calendar", metavar="URL|PATH", help="A CalDAV collection URL or an .ics file.")
@click.option("--username", help="CalDAV username (the keyring entry is kept under it).")
@click.option("--password-command", metavar="CMD",
              help="A command that prints the password, run without a shell.")
@click.option("--store-password", is_flag=True,
              help="Keep the password in the keyring: from CALSYNC_PASSWORD, else asked in a "
              "terminal, else one line of standard input.")
@click.option("--logs", multiple=True, metavar="DIR",
              help="A Claude Code config or projects directory (repeatable).")
@click.option("--project", "projects", multiple=True, metavar="NAME=PATH",
              help="A project and its git repository (repeatable).")
@click.option("--force", is_flag=True, help="Replace an existing config file.")
@pass_ctx
def init(ctx: Context, calendar: str | None, username: str | None,
         password_command: str | None, store_password: bool, logs: tuple[str, ...],
         projects: tuple[str, ...], force: bool) -> None:
    """Write a commented config file; keep the CalDAV password in the keyring.

    Flags fill it in; in a terminal, calsync asks for what they leave out. The password
    never goes into the file.

    \b
    Example:
      calsync init --calendar https://dav.example.com/cal/sessions/ --username me --store-password
      calsync init --calendar ~/sessions.ics --project calsync=~/src/calsync
    """
    from . import config
    from .paths import config_file

    path, _ = config_file(ctx.config_path, ctx.env)
    config.refuse_overwrite(path, force=force)
    answers = cs.InitAnswers(calendar, username, password_command, store_password, logs, projects)
    if sys.stdin.isatty():
        answers = cs.ask_missing(answers)
    settings = config.validate_settings(answers.raw(), path="calsync init")
    if answers.store_password:
        if not settings.calendar.username:
            raise ConfigError("--store-password needs a --username", key="--username")
        config.store_password(settings.calendar.username, cs.read_password(ctx.env))
        click.echo(f"stored the password of {settings.calendar.username} in the keyring")
    config.write_config(path, config.render_config(settings), force=force)
    click.echo(f"wrote {path}")


@cli.command()
@click.option("--cron", "kind", flag_value="cron", help="A crontab line; logs to a file.")
@click.option("--systemd", "kind", flag_value="systemd",
              help="A systemd user service and timer; logs to the journal.")
@click.option("--launchd", "kind", flag_value="launchd",
              help="A macOS LaunchAgent; logs to ~/Library/Logs/calsync.")
@pass_ctx
def schedule(ctx: Context, kind: str | None) -> None:
    """Print a job that runs `calsync sync --quiet` every 15 minutes, ready to install.

    With --config (or CALSYNC_CONFIG), the job uses that config file.

    \b
    Example:
      calsync schedule --cron
      calsync schedule --systemd | sh
    """
    from platformdirs import user_log_path

    from . import scheduling

    if kind not in scheduling.KINDS:
        raise ConfigError("say which scheduler: --cron, --systemd or --launchd")
    config = ctx.config_path or (Path(ctx.env["CALSYNC_CONFIG"]) if ctx.env.get(
        "CALSYNC_CONFIG") else None)
    if config is not None and not config.expanduser().is_file():
        raise ConfigError("no such file", path=str(config), hint="run `calsync init` first")
    job = scheduling.Job(
        command=cs.calsync_command(), log_dir=user_log_path("calsync"), home=Path.home(),
        config=config.expanduser().absolute() if config else None)
    if kind == "cron":
        job.log_dir.mkdir(parents=True, exist_ok=True)
    click.echo(scheduling.render(kind, job), nl=False)


@cli.command("sync")
@calendar_options
@days_options(first="sync.window_days ago, 14", last="now")
@tz_option(", all-day and floating events (default: usage.timezone, else the local zone)")
@logs_option
@click.option("--dry-run", is_flag=True, help="Print what would change, as a diff per "
              "event; write nothing.")
@click.option("-q", "--quiet", is_flag=True, help="Print nothing unless something failed.")
@json_option
@pass_ctx
def sync_command(ctx: Context, location: str | None, username: str | None, first: Any,
                 last: Any, zone_name: str | None, logs: tuple[Path, ...], dry_run: bool,
                 quiet: bool, as_json: bool) -> None:
    """Write actual usage, cost and status into the session events that have started.

    Exit code 0: everything written; 1: some events failed (named on stderr); 2: a
    configuration or usage error. A second run while one is going exits 0 at once.

    \b
    Examples:
      calsync sync --calendar sessions.ics
      calsync sync --calendar sessions.ics --from 2026-11-01 --to 2026-11-21 --json
      calsync sync --calendar https://dav.example.com/cal/sessions/ --username me --dry-run
    """
    from . import output
    from .syncing import run_sync, sync_request

    settings = cs.with_username(ctx.settings, username)
    zone, _ = cs.resolve_zone(zone_name or settings.usage.timezone, ctx.env)
    request = sync_request(cs.calendar_location(location, settings), settings, zone, first=first,
                           last=last, dry_run=dry_run, logs=logs)
    result = run_sync(settings, ctx.env, request)
    report = result.report
    if as_json:
        click.echo(output.render_sync_json(report))
    elif dry_run:
        click.echo("\n".join([*output.render_sync_diff(report),
                              *output.render_sync_summary(report, request.location)]))
    elif not quiet:
        click.echo("\n".join(output.render_sync_summary(report, request.location)))
    for line in output.sync_messages(report, result.warnings, quiet=quiet):
        click.echo(f"calsync: {line}", err=True)
    sys.exit(report.exit_code)
