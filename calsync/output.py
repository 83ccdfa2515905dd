"""What the commands print: rich tables for people, JSON for scripts.

Each command's rendering lives here, under its own heading, so that cli.py stays thin.
`*_records` functions are pure (model → plain dicts, the `--json` shape); `print_*`
functions write a table to a rich Console.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

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
    """A table of the sessions from `first` to `last` (both included), times in `zone`."""
    period = f"{first.isoformat()} to {last.isoformat()} ({zone})"
    if not occurrences:
        console.print(f"No sessions from {period}.")
        return
    table = Table(title=f"Sessions {period}", title_justify="left")
    for column in ("Day", "Time", "Session", "Type", "Model", "Budget", "Goals"):
        table.add_column(column, no_wrap=column in ("Day", "Time"))
    for occurrence in occurrences:
        plan = occurrence.plan
        style = "strike dim" if occurrence.cancelled else ""
        summary = occurrence.summary.removeprefix("Claude Code: ") or plan.project or ""
        table.add_row(
            f"{occurrence.start:%a %Y-%m-%d}",
            "all day" if occurrence.all_day else
            f"{occurrence.start:%H:%M}–{occurrence.end:%H:%M}",
            Text(summary + (" (cancelled)" if occurrence.cancelled else ""), style=style),
            plan.session_type or "",
            plan.primary_model or "",
            format_budget(plan.budget),
            _goals(occurrence),
        )
    console.print(table)


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
    return f"{sum(goal.done for goal in goals)}/{len(goals)} done"
