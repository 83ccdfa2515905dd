"""The command line: parse, build, call one function, render.

Each command loads settings, opens what it needs, calls one core or engine function and
hands the result to `output.py`. Heavy libraries are imported inside the commands, so
`calsync --help` and the hooks start fast. Errors: `handle_error()` is the one renderer.
"""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from .errors import UserFacingError

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
    cli(prog_name="calsync")


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
# --- usage / log (issue: usage) ---
# --- init / sync / schedule (issue: sync) ---
