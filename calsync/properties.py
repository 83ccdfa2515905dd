"""One table for the X-CLAUDE-* vocabulary (pure).

`PROPERTIES` holds one `Prop` row per property of `session-events.md`: its name, the model
attribute it maps to (`field`, dotted for nested models: `budget.total`, `git.commits`), the
value type (`parse` and `format`, plus `kind` for the docs), who owns it (`plan`: a person or
a template, only read by sync; `actuals`: written by calsync) and a one-line help text. The
codec, the README property reference, the docs test and the `--json` field names all come
from this table.

`parse` and `format` work on the property value exactly as it stands in the .ics content
line (after unfolding): TEXT values are escaped and unescaped with icalendar's own rules,
comma-separated lists keep their commas. `parse` raises ValueError with a message a person
can act on ("budget is not a number: 'lots'"); the codec adds the file, UID and property.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any, Literal

from icalendar import vDatetime, vText
from icalendar.parser import unescape_backslash

from .model import Status

PREFIX = "X-CLAUDE-"
Owner = Literal["plan", "actuals"]

_PLAIN = re.compile(r"\d+")
_GROUPED = re.compile(r"\d{1,3}(?:([,\u00a0\u202f ])\d{3})(?:\1\d{3})*")
_SUFFIXED = re.compile(r"(\d+(?:\.\d+)?)\s?([kKmM])")
_MULTIPLIER = {"k": 1_000, "m": 1_000_000}


def parse_number(text: str) -> int:
    """A token count as people write it: "100000", "100,000", "100 000", "100k", "1.5k", "2M".

    Raises ValueError on anything else (negative, fractional, "lots", "1,00,000").
    """
    value = text.strip()
    if _PLAIN.fullmatch(value):
        return int(value)
    if _GROUPED.fullmatch(value):
        return int(re.sub(r"\D", "", value))
    suffixed = _SUFFIXED.fullmatch(value)
    if suffixed:
        number = Decimal(suffixed[1]) * _MULTIPLIER[suffixed[2].lower()]
        if number == number.to_integral_value():
            return int(number)
    raise ValueError(f"not a number: {text.strip()!r}")


def parse_usd(text: str) -> Decimal:
    """An amount in USD: "1.42", "$1.42", "1.42 USD". Raises ValueError otherwise."""
    value = text.strip().removeprefix("$").removesuffix("USD").strip()
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise ValueError(f"not an amount in USD: {text.strip()!r}") from None
    if not amount.is_finite() or amount < 0:
        raise ValueError(f"not an amount in USD: {text.strip()!r}")
    return amount


def format_usd(amount: Decimal) -> str:
    """A decimal in plain notation, never with an exponent: Decimal("1E+2") → "100"."""
    return format(amount, "f")


def parse_utc(text: str) -> datetime:
    """A UTC date-time such as 20261207T190512Z (a floating time is taken as UTC)."""
    try:
        value: datetime = vDatetime.from_ical(text.strip())  # type: ignore[no-untyped-call]
    except ValueError:
        raise ValueError(f"not a UTC date-time like 20261207T190512Z: {text.strip()!r}") from None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def format_utc(value: datetime) -> str:
    """20261207T190512Z; a naive datetime is taken as UTC (the core never guesses a zone)."""
    value = value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    ical: bytes = vDatetime(value.replace(microsecond=0)).to_ical()  # type: ignore[no-untyped-call]
    return ical.decode()


def parse_text(raw: str) -> str:
    text: str = unescape_backslash(raw)
    return text.strip()


def format_text(value: str) -> str:
    return vText(value).to_ical().decode()


def parse_ids(raw: str) -> tuple[str, ...]:
    """Session ids separated by commas, escaped (as calsync writes them) or not."""
    return tuple(part.strip() for part in parse_text(raw).split(",") if part.strip())


def format_ids(ids: tuple[str, ...]) -> str:
    """One TEXT value whose commas are escaped (RFC 5545 3.3.11).

    A bare comma makes a list of values, and Radicale keeps only the first of them.
    """
    return "\\,".join(format_text(i) for i in ids)


def parse_status(raw: str) -> Status:
    try:
        return Status(parse_text(raw).lower())
    except ValueError:
        choices = ", ".join(s.value for s in Status)
        raise ValueError(f"status is not one of {choices}: {parse_text(raw)!r}") from None


def parse_percent(raw: str) -> int:
    return _count("percentage")(raw.strip().removesuffix("%"))


def _count(noun: str) -> Callable[[str], int]:
    def parse(raw: str) -> int:
        text = parse_text(raw)  # 100\,000 from a writer that treats every value as TEXT
        try:
            return parse_number(text)
        except ValueError:
            raise ValueError(f"{noun} is not a number: {text!r}") from None

    return parse


def _str(value: Any) -> str:
    return str(value)


@dataclass(frozen=True, slots=True)
class Prop:
    """One X-CLAUDE-* property."""

    name: str
    field: str
    parse: Callable[[str], Any]
    format: Callable[[Any], str]
    owner: Owner
    help: str
    kind: str = "text"


def unflatten(values: Mapping[str, Any], head: str) -> dict[str, Any]:
    """{"total": 5} from {"budget.total": 5, "project": "x"} for head "budget"."""
    return {k.removeprefix(head + "."): v for k, v in values.items() if k.startswith(head + ".")}


def _text(name: str, field: str, owner: Owner, help: str) -> Prop:
    return Prop(PREFIX + name, field, parse_text, format_text, owner, help, "text")


def _int(name: str, field: str, owner: Owner, help: str, noun: str = "value") -> Prop:
    return Prop(PREFIX + name, field, _count(noun), _str, owner, help, "integer")


PROPERTIES: tuple[Prop, ...] = (
    _text("PROJECT", "project", "plan", "project name; usage from a directory of that name"),
    _text("SESSION-TYPE", "session_type", "plan",
          "planning, implementation, testing, security-review, or any word"),
    _text("FRAMEWORK", "framework", "plan", "optional, e.g. PM-Meta, BMAD METHOD, Hybrid"),
    _int("TOKEN-BUDGET-TOTAL", "budget.total", "plan", "token budget of the session", "budget"),
    _int("TOKEN-BUDGET-OPUS", "budget.opus", "plan", "share for Opus models", "budget"),
    _int("TOKEN-BUDGET-SONNET", "budget.sonnet", "plan", "share for Sonnet models", "budget"),
    _int("TOKEN-BUDGET-HAIKU", "budget.haiku", "plan", "share for Haiku models", "budget"),
    _text("PRIMARY-MODEL", "primary_model", "plan", "model id or family (opus, sonnet, haiku)"),
    Prop(PREFIX + "COST-BUDGET-USD", "cost_budget_usd", parse_usd, format_usd, "plan",
         "optional cost ceiling in USD", "decimal"),
    _int("ACTUAL-TOKENS-TOTAL", "tokens_total", "actuals",
         "tokens counted against the budget (input + output + cache creation by default)",
         "token count"),
    _int("ACTUAL-TOKENS-OPUS", "tokens_opus", "actuals", "counted tokens of Opus models",
         "token count"),
    _int("ACTUAL-TOKENS-SONNET", "tokens_sonnet", "actuals", "counted tokens of Sonnet models",
         "token count"),
    _int("ACTUAL-TOKENS-HAIKU", "tokens_haiku", "actuals", "counted tokens of Haiku models",
         "token count"),
    _int("ACTUAL-TOKENS-OTHER", "tokens_other", "actuals", "counted tokens of other models",
         "token count"),
    _int("ACTUAL-INPUT-TOKENS", "input_tokens", "actuals", "input tokens, all models",
         "token count"),
    _int("ACTUAL-OUTPUT-TOKENS", "output_tokens", "actuals", "output tokens, all models",
         "token count"),
    _int("ACTUAL-CACHE-CREATION-TOKENS", "cache_creation_tokens", "actuals",
         "cache creation tokens, all models", "token count"),
    _int("ACTUAL-CACHE-READ-TOKENS", "cache_read_tokens", "actuals",
         "cache read tokens, all models (not counted against the budget by default)",
         "token count"),
    Prop(PREFIX + "ACTUAL-COST-USD", "cost_usd", parse_usd,
         lambda v: format_usd(Decimal(v).quantize(Decimal("0.0001"))), "actuals",
         "cost in USD at the shipped (or configured) prices", "decimal, 4 places"),
    Prop(PREFIX + "BUDGET-USED-PERCENT", "budget_used_percent", parse_percent, _str, "actuals",
         "counted tokens as a percentage of the total budget", "integer"),
    Prop(PREFIX + "STATUS", "status", parse_status, _str, "actuals",
         "planned, in-progress, completed, over-budget, missed or cancelled", "status"),
    Prop(PREFIX + "ACTUAL-START", "actual_start", parse_utc, format_utc, "actuals",
         "time of the first counted usage record", "UTC date-time"),
    Prop(PREFIX + "ACTUAL-END", "actual_end", parse_utc, format_utc, "actuals",
         "time of the last counted usage record", "UTC date-time"),
    Prop(PREFIX + "SESSION-IDS", "session_ids", parse_ids, format_ids, "actuals",
         "the Claude Code session ids counted", "comma-separated text"),
    _int("GIT-COMMITS", "git.commits", "actuals", "commits in the project during the session"),
    _int("GIT-FILES-CHANGED", "git.files_changed", "actuals", "files changed by those commits"),
    _int("GIT-LINES-ADDED", "git.lines_added", "actuals", "lines added by those commits"),
    _int("GIT-LINES-REMOVED", "git.lines_removed", "actuals", "lines removed by those commits"),
    Prop(PREFIX + "SYNCED-AT", "synced_at", parse_utc, format_utc, "actuals",
         "time of the last write that changed something", "UTC date-time"),
)

BY_NAME: dict[str, Prop] = {p.name: p for p in PROPERTIES}
PLAN_PROPERTIES = tuple(p for p in PROPERTIES if p.owner == "plan")
ACTUALS_PROPERTIES = tuple(p for p in PROPERTIES if p.owner == "actuals")


def reference_table() -> str:
    """The README's property reference, as a Markdown table (checked by a test)."""
    rows = ["| property | value | written by | JSON field | meaning |", "|---|---|---|---|---|"]
    for p in PROPERTIES:
        writer = "you or a template" if p.owner == "plan" else "calsync sync"
        rows.append(f"| `{p.name}` | {p.kind} | {writer} | `{p.field}` | {p.help} |")
    return "\n".join(rows)
