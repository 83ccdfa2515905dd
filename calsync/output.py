"""What the commands print: rich tables for people, JSON for scripts.

Each command's rendering lives here, under its own heading, so that cli.py stays thin.
`*_records` functions are pure (model → plain dicts, the `--json` shape); `print_*`
functions write a table to a rich Console. rich is imported inside the functions that
draw with it, so a command that prints JSON never loads it (start-up time matters).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.text import Text

    from .engine import SyncReport
    from .model import Budget, Occurrence

# --- agenda --------------------------------------------------------------------------------


def agenda_records(occurrences: Iterable[Occurrence]) -> list[dict[str, Any]]:
    """The objects of `calsync agenda --json`, one per occurrence, in order.

    Times are ISO 8601 with their offset; `recurrence_id` is null for a single event, else
    the occurrence's original start as the calendar writes it (a date for all-day series,
    no offset for floating ones). `status` is "cancelled" (STATUS:CANCELLED) or "planned":
    the agenda shows the plan; `calsync sync` writes what happened.
    """
    return [_agenda_record(o) for o in occurrences]


def render_agenda_json(occurrences: Iterable[Occurrence]) -> str:
    return json.dumps(agenda_records(occurrences), indent=2, ensure_ascii=False)


def print_agenda(
    occurrences: Sequence[Occurrence], console: Console, *, first: date, last: date, zone: str,
) -> None:
    """A table of the sessions from `first` to `last` (both included), times in `zone`.

    When every session belongs to one project, the project is named in the title instead
    of in a column of its own.
    """
    from rich.table import Table

    period = f"{first.isoformat()} to {last.isoformat()} ({zone})"
    if not occurrences:
        console.print(f"No sessions from {period}.")
        return
    projects = {o.plan.project for o in occurrences}
    one_project = next(iter(projects)) if len(projects) == 1 else None
    title = f"Sessions of {one_project}, {period}" if one_project else f"Sessions {period}"
    table = Table(title=title, title_justify="left")
    columns = ["Day", "Time", *([] if one_project else ["Project"]), "Session", "Model",
               "Budget", "Goals"]
    for column in columns:
        table.add_column(column, no_wrap=column in ("Day", "Time"),
                         overflow="fold" if column == "Session" else "ellipsis")
    for occurrence in occurrences:
        row = _agenda_row(occurrence)
        if one_project:
            del row[2]
        table.add_row(*row)
    console.print(table)


def _agenda_row(occurrence: Occurrence) -> list[str | Text]:
    from rich.text import Text

    plan = occurrence.plan
    start = occurrence.start
    session: str | Text = plan.session_type or occurrence.summary
    if occurrence.cancelled:
        session = Text(f"{session} (cancelled)", style="strike dim")
    return [
        f"{start:%a} {start.day} {start:%b}",
        "all day" if occurrence.all_day else f"{occurrence.start:%H:%M}–{occurrence.end:%H:%M}",
        plan.project or "",
        session,
        plan.primary_model or "",
        format_budget(plan.budget),
        _goals(occurrence),
    ]


def format_budget(budget: Budget) -> str:
    """"100k (Opus 10k, Sonnet 85k, Haiku 5k)"; "" when nothing is planned."""
    shares = [f"{name} {_tokens(value)}" for name, value in
              (("Opus", budget.opus), ("Sonnet", budget.sonnet), ("Haiku", budget.haiku))
              if value is not None]
    total = _tokens(budget.total) if budget.total is not None else ""
    if not shares:
        return total
    return f"{total} ({', '.join(shares)})".strip()


def _agenda_record(occurrence: Occurrence) -> dict[str, Any]:
    plan = occurrence.plan
    return {
        "uid": occurrence.uid,
        "recurrence_id": _iso(occurrence.recurrence_id),
        "start": occurrence.start.isoformat(),
        "end": occurrence.end.isoformat(),
        "all_day": occurrence.all_day,
        "summary": occurrence.summary,
        "status": "cancelled" if occurrence.cancelled else "planned",
        "project": plan.project,
        "session_type": plan.session_type,
        "framework": plan.framework,
        "primary_model": plan.primary_model,
        "budget": plan.budget.model_dump(),
        "cost_budget_usd": (
            float(plan.cost_budget_usd) if plan.cost_budget_usd is not None else None
        ),
        "goals": [{"text": goal.text, "done": goal.done} for goal in plan.goals],
        "success_criteria": list(plan.success_criteria),
        "deliverables": list(plan.deliverables),
        "notes": list(plan.notes),
        "href": occurrence.href,
    }


def _iso(value: date | datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _tokens(count: int) -> str:
    if count >= 1_000_000 and count % 100_000 == 0:
        return f"{count / 1_000_000:g}M"
    if count >= 1_000 and count % 100 == 0:
        return f"{count / 1_000:g}k"
    return f"{count:,}"


def _goals(occurrence: Occurrence) -> str:
    goals = occurrence.plan.goals
    if not goals:
        return ""
    return f"{sum(goal.done for goal in goals)}/{len(goals)}"


# --- usage ---------------------------------------------------------------------------------

_USAGE_KEYS = {
    "day": (("date", "Date"), ("model", "Model")),
    "week": (("week", "Week of"), ("model", "Model")),
    "month": (("month", "Month"), ("model", "Model")),
    "model": (("model", "Model"), ("family", "Family"), ("records", "Calls")),
    "project": (("project", "Project"), ("sessions", "Sessions"), ("records", "Calls"),
                ("manual_records", "Manual")),
    "session": (("session_id", "Session"), ("project", "Project"), ("first_at", "First"),
                ("last_at", "Last"), ("records", "Calls")),
}
_USAGE_NUMBERS = (("input_tokens", "Input"), ("output_tokens", "Output"),
                  ("cache_creation_tokens", "Cache write"), ("cache_read_tokens", "Cache read"),
                  ("total_tokens", "Total"))


def render_usage_json(rows: Sequence[Mapping[str, Any]]) -> str:
    """`calsync usage --json`: the rows as they are (shapes in `calsync.usage`)."""
    import orjson

    return orjson.dumps(list(rows), option=orjson.OPT_INDENT_2).decode()


def render_usage_table(rows: Sequence[Mapping[str, Any]], totals: Mapping[str, Any], *,
                       by: str) -> str:
    """The usage report as aligned columns with a total line (a note when it is empty).

    Plain text rather than rich: a year of days by model is hundreds of rows, and this
    prints them in a millisecond.
    """
    if not rows:
        return "No usage in this period."
    keys = _USAGE_KEYS[by]
    header = [title for _, title in keys] + [title for _, title in _USAGE_NUMBERS] + ["Cost"]
    body = [[*(_usage_cell(k, row[k]) for k, _ in keys),
             *(f"{row[k]:,}" for k, _ in _USAGE_NUMBERS), _usd(row["cost_usd"])]
            for row in rows]
    total = ["Total", *[""] * (len(keys) - 1),
             *(f"{totals[k]:,}" for k, _ in _USAGE_NUMBERS), _usd(totals["cost_usd"])]
    widths = [max(map(len, column)) for column in zip(header, *body, total, strict=True)]
    texts = [k not in ("records", "sessions", "manual_records") for k, _ in keys]
    texts += [False] * (len(widths) - len(keys))

    def line(cells: Sequence[str]) -> str:
        return "  ".join(cell.ljust(w) if text else cell.rjust(w)
                         for cell, w, text in zip(cells, widths, texts, strict=True)).rstrip()

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *map(line, body), rule, line(total)])


def usage_warnings(problems: Sequence[str], unreadable: Sequence[str],
                   unpriced: Sequence[str]) -> list[str]:
    """Warnings about the logs, one line each: how many, the first few path:line, the rest
    as a count."""
    lines = []
    if problems:
        lines.append(_summarise(problems, "unreadable log lines skipped, the rest counted"))
    if unreadable:
        lines.append(_summarise(unreadable, "paths could not be read"))
    lines += [f"no price known for model {model!r}: its cost shows as n/a (null in JSON); "
              f'add it under [prices."{model}"] in the config' for model in unpriced]
    return lines


def _summarise(items: Sequence[str], what: str, limit: int = 3) -> str:
    more = f" and {len(items) - limit} more" if len(items) > limit else ""
    return f"{len(items)} {what}: {', '.join(items[:limit])}{more}"


def _usage_cell(key: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    if key == "session_id" and value != "manual":
        return str(value)[:8]
    if key in ("first_at", "last_at"):
        return str(value)[:16].replace("T", " ")
    return str(value)


def _usd(value: float | None) -> str:
    return "n/a" if value is None else f"${value:,.2f}"


# --- sync ----------------------------------------------------------------------------------


def sync_record(report: SyncReport) -> dict[str, Any]:
    """The `sync --json` shape: the counts, then each changed event and each failure."""
    changed = [
        {"href": d.href, "uid": c.uid, "recurrence_id": c.recurrence_id, "summary": c.summary,
         "start": _iso(c.start), "status": c.status.value, "fields": list(c.fields)}
        for d in report.written for c in d.changes
    ]
    failures = [{"href": f.href, "uid": None, "message": f.message} for f in report.failed]
    failures += [{"href": p.href, "uid": p.uid, "message": p.message} for p in report.problems]
    return {"occurrences": report.occurrences, "updated": report.updated,
            "unchanged": report.unchanged, "conflicts": report.conflicts,
            "failed": len(failures), "dry_run": report.dry_run, "changed": changed,
            "failures": failures}


def render_sync_json(report: SyncReport) -> str:
    return json.dumps(sync_record(report), indent=2, ensure_ascii=False)


def render_sync_summary(report: SyncReport, location: str) -> list[str]:
    """One line of counts, then one line per changed event."""
    record = sync_record(report)
    verb = "would update" if report.dry_run else "updated"
    count = record["occurrences"]
    lines = [f"{location}: {count} occurrence{'' if count == 1 else 's'}, "
             f"{record['updated']} {verb}, "
             f"{record['unchanged']} unchanged, {record['conflicts']} conflicts, "
             f"{record['failed']} failed"]
    for change in sorted(record["changed"], key=lambda c: str(c["start"])):
        when = str(change["start"])[:16].replace("T", " ")
        new = "  (new override)" if change["fields"] == ["new override"] else ""
        lines.append(f"  {when}  {change['status']:<11}  {change['summary']}{new}")
    return lines


def sync_messages(report: SyncReport, warnings: Sequence[str], *, quiet: bool) -> list[str]:
    """Lines for stderr: each failure naming its event; warnings unless --quiet."""
    lines = [] if quiet else [f"warning: {w}" for w in warnings]
    for failure in sync_record(report)["failures"]:
        href, message = failure["href"], failure["message"]
        lines.append(message if href in message else f"{href}: {message}")
    return lines


def render_sync_diff(report: SyncReport) -> list[str]:
    """A unified diff per changed event, DESCRIPTION shown line by line (for --dry-run)."""
    import difflib

    lines: list[str] = []
    for decision in report.written:
        for change in decision.changes:
            name = change.uid + (f" {change.recurrence_id}" if change.recurrence_id else "")
            now = "new override, as the series has it" if "new override" in change.fields \
                else "now"
            lines += difflib.unified_diff(
                _readable(change.before), _readable(change.after),
                fromfile=f"{name} ({now})", tofile=f"{name} (after sync)",
                lineterm="", n=2)
    return lines


def _readable(vevent: str) -> list[str]:
    """Content lines unfolded; long TEXT values (DESCRIPTION, X-ALT-DESC) one line each."""
    unfolded = vevent.replace("\r\n ", "").replace("\r\n\t", "").replace("\n ", "")
    lines: list[str] = []
    for line in unfolded.splitlines():
        if line.startswith(("DESCRIPTION", "X-ALT-DESC")):
            first, *rest = line.replace("\\N", "\\n").split("\\n")
            lines.append(_unescape(first))
            lines += ["  " + _unescape(part) for part in rest]
        else:
            lines.append(line)
    return lines


def _unescape(text: str) -> str:
    return text.replace("\\,", ",").replace("\\;", ";").replace("\\\\", "\\")
