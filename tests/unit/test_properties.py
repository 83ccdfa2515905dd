"""The X-CLAUDE-* table: numbers as people write them, values as .ics files hold them."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

import pytest

from calsync.model import Actuals, Budget, GitStats, SessionPlan, Status
from calsync.properties import (
    BY_NAME,
    PROPERTIES,
    format_utc,
    parse_number,
    parse_utc,
    reference_table,
)

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("100000", 100_000, id="plain"),
        pytest.param("100,000", 100_000, id="comma-thousands"),
        pytest.param("100 000", 100_000, id="space-thousands"),
        pytest.param("1\u00a0250\u00a0000", 1_250_000, id="nbsp-thousands"),
        pytest.param("100k", 100_000, id="k-suffix"),
        pytest.param("1.5k", 1_500, id="fractional-k"),
        pytest.param("2M", 2_000_000, id="M-suffix"),
        pytest.param(" 85K ", 85_000, id="padded-upper-K"),
        pytest.param("0", 0, id="zero"),
    ],
)
def test_parse_number_reads_counts_as_people_write_them(text: str, expected: int) -> None:
    assert parse_number(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("lots", id="word"),
        pytest.param("", id="empty"),
        pytest.param("-5", id="negative"),
        pytest.param("1.5", id="fraction-without-suffix"),
        pytest.param("1.2345k", id="fraction-of-a-token"),
        pytest.param("1,00,000", id="lakh-grouping"),
        pytest.param("100,00", id="bad-grouping"),
        pytest.param("100,000 200", id="mixed-separators"),
        pytest.param("10kk", id="double-suffix"),
    ],
)
def test_parse_number_refuses_anything_else(text: str) -> None:
    with pytest.raises(ValueError, match="not a number"):
        parse_number(text)


def test_every_field_names_a_model_attribute() -> None:
    models = {"budget": Budget, "git": GitStats}
    for prop in PROPERTIES:
        owner_model = SessionPlan if prop.owner == "plan" else Actuals
        head, _, tail = prop.field.partition(".")
        assert head in owner_model.model_fields, prop.name
        if tail:
            assert tail in models[head].model_fields, prop.name


def test_every_plan_and_actuals_value_has_a_property() -> None:
    """Nothing sync measures is silently left out of the calendar."""
    fields = {p.field for p in PROPERTIES}
    actuals = {f for f in Actuals.model_fields if f != "git"}
    assert actuals | {f"git.{f}" for f in GitStats.model_fields} <= fields
    assert {f"budget.{f}" for f in Budget.model_fields} <= fields
    plan_scalars = {"project", "session_type", "framework", "primary_model", "cost_budget_usd"}
    assert plan_scalars <= fields


def test_names_are_unique_and_prefixed() -> None:
    assert len(BY_NAME) == len(PROPERTIES)
    assert all(p.name.startswith("X-CLAUDE-") and p.name == p.name.upper() for p in PROPERTIES)


@pytest.mark.parametrize(
    ("name", "value", "ical"),
    [
        pytest.param("X-CLAUDE-PROJECT", "a, b; c\nd", "a\\, b\\; c\\nd", id="text-escaped"),
        pytest.param("X-CLAUDE-SESSION-IDS", ("s-1", "s-2"), "s-1\\,s-2", id="ids-commas-escaped"),
        pytest.param("X-CLAUDE-ACTUAL-COST-USD", Decimal("1.42"), "1.4200", id="cost-4-places"),
        pytest.param("X-CLAUDE-ACTUAL-COST-USD", Decimal("0.123456"), "0.1235",
                     id="cost-rounded"),
        pytest.param("X-CLAUDE-COST-BUDGET-USD", Decimal("1E+1"), "10", id="no-exponent"),
        pytest.param("X-CLAUDE-STATUS", Status.OVER_BUDGET, "over-budget", id="status"),
        pytest.param("X-CLAUDE-TOKEN-BUDGET-TOTAL", 100_000, "100000", id="integer"),
        pytest.param("X-CLAUDE-ACTUAL-START", datetime(2026, 12, 7, 19, 5, 12, tzinfo=UTC),
                     "20261207T190512Z", id="utc-date-time"),
    ],
)
def test_values_are_written_as_the_spec_shows(name: str, value: object, ical: str) -> None:
    assert BY_NAME[name].format(value) == ical


@pytest.mark.parametrize(
    ("name", "ical", "value"),
    [
        pytest.param("X-CLAUDE-PROJECT", "a\\, b\\; c\\nd", "a, b; c\nd", id="text-unescaped"),
        pytest.param("X-CLAUDE-SESSION-IDS", "s-1, s-2,", ("s-1", "s-2"), id="ids-lenient"),
        pytest.param("X-CLAUDE-TOKEN-BUDGET-TOTAL", "100,000", 100_000, id="budget-comma"),
        pytest.param("X-CLAUDE-TOKEN-BUDGET-OPUS", "10k", 10_000, id="budget-k"),
        pytest.param("X-CLAUDE-COST-BUDGET-USD", "$5", Decimal("5"), id="usd-dollar-sign"),
        pytest.param("X-CLAUDE-COST-BUDGET-USD", "2.50 USD", Decimal("2.50"), id="usd-suffix"),
        pytest.param("X-CLAUDE-STATUS", "Completed", Status.COMPLETED, id="status-any-case"),
        pytest.param("X-CLAUDE-BUDGET-USED-PERCENT", "75%", 75, id="percent-sign"),
        pytest.param("X-CLAUDE-ACTUAL-END", "20261207T190512",
                     datetime(2026, 12, 7, 19, 5, 12, tzinfo=UTC), id="floating-as-utc"),
    ],
)
def test_values_are_read_leniently(name: str, ical: str, value: object) -> None:
    assert BY_NAME[name].parse(ical) == value


@pytest.mark.parametrize(
    ("name", "ical", "message"),
    [
        pytest.param("X-CLAUDE-TOKEN-BUDGET-TOTAL", "lots", "budget is not a number: 'lots'",
                     id="budget"),
        pytest.param("X-CLAUDE-COST-BUDGET-USD", "cheap", "not an amount in USD: 'cheap'",
                     id="usd"),
        pytest.param("X-CLAUDE-COST-BUDGET-USD", "-3", "not an amount in USD", id="usd-negative"),
        pytest.param("X-CLAUDE-STATUS", "done", "status is not one of planned", id="status"),
        pytest.param("X-CLAUDE-ACTUAL-START", "yesterday", "not a UTC date-time", id="date-time"),
    ],
)
def test_bad_values_say_what_is_wrong(name: str, ical: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        BY_NAME[name].parse(ical)


def test_date_times_are_written_in_utc_without_microseconds() -> None:
    paris = timezone(timedelta(hours=1))
    assert format_utc(datetime(2026, 12, 7, 20, 5, 12, 999, tzinfo=paris)) == "20261207T190512Z"
    assert format_utc(datetime(2026, 12, 7, 19, 5, 12)) == "20261207T190512Z"
    assert parse_utc("20261207T190512Z") == datetime(2026, 12, 7, 19, 5, 12, tzinfo=UTC)


def test_readme_property_reference_is_the_table() -> None:
    readme = README.read_text(encoding="utf-8")
    section = readme.split("## Property reference", 1)[1].split("\n## ", 1)[0]
    assert reference_table() in section
