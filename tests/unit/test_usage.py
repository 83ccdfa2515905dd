"""Report rows from ledger buckets: periods in a time zone, projects, sessions, models."""

from __future__ import annotations

from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

import pytest

from calsync.usage import Bucket, parse_day, project_of, report_rows, totals

BERLIN = ZoneInfo("Europe/Berlin")
NEW_YORK = ZoneInfo("America/New_York")
KATHMANDU = ZoneInfo("Asia/Kathmandu")      # UTC+5:45


def us(text: str) -> int:
    moment = datetime.fromisoformat(text).astimezone(UTC)
    return int(moment.timestamp()) * 1_000_000


def bucket(at: str, model: str = "claude-sonnet-4-5", *, session: str = "s1",
           cwd: str = "/Users/alex/src/calsync", manual: bool = False, tokens: int = 100,
           cost: float | None = 0.5, records: int = 1) -> Bucket:
    start = us(at)
    start -= start % 900_000_000
    return Bucket(start, model, session, cwd, manual, records, tokens, tokens * 2, tokens * 3,
                  tokens * 4, tokens * 5, cost, us(at), us(at) + 60_000_000)


def test_day_rows_have_exactly_the_documented_fields_and_total_the_four_counts():
    rows = report_rows([bucket("2026-11-02T10:00Z")], by="day", tz=UTC)
    assert rows == [{"date": "2026-11-02", "model": "claude-sonnet-4-5", "input_tokens": 100,
                     "output_tokens": 200, "cache_creation_tokens": 700,
                     "cache_read_tokens": 500, "total_tokens": 1500, "cost_usd": 0.5}]


@pytest.mark.parametrize(("tz", "day"), [
    pytest.param(UTC, "2026-11-02", id="utc"),
    pytest.param(BERLIN, "2026-11-03", id="berlin-next-day"),
    pytest.param(NEW_YORK, "2026-11-02", id="new-york"),
])
def test_days_are_counted_in_the_zone_asked_for(tz, day):
    rows = report_rows([bucket("2026-11-02T23:30Z")], by="day", tz=tz)
    assert [r["date"] for r in rows] == [day]


def test_a_quarter_hour_zone_still_splits_days_exactly():
    # 18:15 UTC is 00:00 in Kathmandu: the two buckets fall on two local days
    rows = report_rows([bucket("2026-11-02T18:00Z"), bucket("2026-11-02T18:15Z")],
                       by="day", tz=KATHMANDU)
    assert [r["date"] for r in rows] == ["2026-11-02", "2026-11-03"]


def test_since_and_until_are_local_days_both_included():
    buckets = [bucket(f"2026-11-0{d}T12:00Z") for d in range(1, 6)]
    rows = report_rows(buckets, by="day", tz=UTC, since=date(2026, 11, 2),
                       until=date(2026, 11, 4))
    assert [r["date"] for r in rows] == ["2026-11-02", "2026-11-03", "2026-11-04"]


def test_weeks_start_on_monday_and_months_are_year_month():
    buckets = [bucket("2026-11-01T12:00Z"), bucket("2026-11-02T12:00Z"),
               bucket("2026-11-08T12:00Z"), bucket("2026-12-01T12:00Z")]
    weeks = report_rows(buckets, by="week", tz=UTC)
    assert [(r["week"], r["input_tokens"]) for r in weeks] == [
        ("2026-10-26", 100), ("2026-11-02", 200), ("2026-11-30", 100)]
    months = report_rows(buckets, by="month", tz=UTC)
    assert [(r["month"], r["input_tokens"]) for r in months] == [("2026-11", 300),
                                                                 ("2026-12", 100)]


def test_one_row_per_date_and_model():
    rows = report_rows([bucket("2026-11-02T10:00Z", "claude-opus-4-5"),
                        bucket("2026-11-02T11:00Z"), bucket("2026-11-02T12:00Z")],
                       by="day", tz=UTC)
    assert [(r["model"], r["input_tokens"]) for r in rows] == [("claude-opus-4-5", 100),
                                                               ("claude-sonnet-4-5", 200)]


def test_an_unpriced_record_makes_its_row_cost_null_never_a_silent_zero():
    rows = report_rows([bucket("2026-11-02T10:00Z", "mystery", cost=None),
                        bucket("2026-11-02T10:00Z", "mystery", session="s2")], by="model", tz=UTC)
    assert rows[0]["cost_usd"] is None
    assert totals(rows)["cost_usd"] is None


def test_manual_records_are_marked_in_every_grouping():
    buckets = [bucket("2026-11-02T10:00Z", "sonnet", session="manual-1", cwd="calsync",
                      manual=True), bucket("2026-11-02T11:00Z")]
    day = report_rows(buckets, by="day", tz=UTC)
    assert {r["model"] for r in day} == {"sonnet (manual)", "claude-sonnet-4-5"}
    sessions = report_rows(buckets, by="session", tz=UTC)
    assert [(r["session_id"], r["manual"]) for r in sessions] == [("manual", True),
                                                                  ("s1", False)]
    project = report_rows(buckets, by="project", tz=UTC)
    assert [(r["project"], r["records"], r["manual_records"]) for r in project] == [
        ("calsync", 2, 1)]
    model = report_rows(buckets, by="model", tz=UTC)
    assert {r["model"]: r["family"] for r in model} == {"sonnet (manual)": "sonnet",
                                                        "claude-sonnet-4-5": "sonnet"}


def test_session_rows_show_first_and_last_use_in_the_zone():
    rows = report_rows([bucket("2026-11-02T19:10Z"), bucket("2026-11-02T21:40Z", "opus")],
                       by="session", tz=NEW_YORK)
    assert len(rows) == 1
    row = rows[0]
    assert (row["first_at"], row["last_at"]) == ("2026-11-02T14:10:00-05:00",
                                                 "2026-11-02T16:41:00-05:00")
    assert (row["project"], row["models"], row["records"]) == (
        "calsync", ["claude-sonnet-4-5", "opus"], 2)


def test_project_filter_is_case_insensitive_and_follows_configured_paths():
    buckets = [bucket("2026-11-02T10:00Z", cwd="/Users/alex/src/CalSync"),
               bucket("2026-11-02T10:00Z", cwd="/srv/checkout-7/api", session="s2"),
               bucket("2026-11-02T10:00Z", cwd="/Users/alex/src/other", session="s3")]
    mapping = {"calsync": ("/srv/checkout-7",)}
    rows = report_rows(buckets, by="session", tz=UTC, project="calsync", projects=mapping)
    assert sorted(r["session_id"] for r in rows) == ["s1", "s2"]


@pytest.mark.parametrize(("cwd", "expected"), [
    pytest.param("/Users/alex/src/calsync/", "calsync", id="trailing-slash"),
    pytest.param("C:\\work\\calsync", "calsync", id="windows"),
    pytest.param("/srv/checkout-7/api", "mapped", id="under-a-configured-path"),
    pytest.param("/srv/checkout-77", "checkout-77", id="prefix-is-not-a-parent"),
    pytest.param("", "", id="none"),
])
def test_project_of_a_working_directory(cwd, expected):
    assert project_of(cwd, {"mapped": ("/srv/checkout-7",)}) == expected


def test_totals_sum_rows():
    rows = report_rows([bucket("2026-11-02T10:00Z"), bucket("2026-11-03T10:00Z")],
                       by="day", tz=UTC)
    assert totals(rows) == {"input_tokens": 200, "output_tokens": 400,
                            "cache_creation_tokens": 1400, "cache_read_tokens": 1000,
                            "total_tokens": 3000, "cost_usd": 1.0}


@pytest.mark.parametrize("text", ["2026-11-01", "20261101", " 2026-11-01 "])
def test_report_dates_take_both_forms(text):
    assert parse_day(text) == date(2026, 11, 1)


def test_unknown_grouping_is_refused():
    with pytest.raises(ValueError, match="grouping"):
        report_rows([], by="fortnight", tz=UTC)
