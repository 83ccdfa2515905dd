"""What sync decides to write, before writing anything (calsync.planner, pure)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from icalendar import Calendar

from calsync.attribution import attribute
from calsync.model import CalendarObject, GitStats, UsageRecord
from calsync.planner import (
    Knowledge,
    Problem,
    Skip,
    SyncPlan,
    WriteObject,
    format_recurrence_id,
    may_hold_sessions,
    plan_hash,
    plan_object,
    plan_sync,
    read_sessions,
)

BERLIN = ZoneInfo("Europe/Berlin")
NOW = datetime(2026, 11, 18, 12, 0, tzinfo=BERLIN)
PLAN = ("X-CLAUDE-PROJECT:calsync", "X-CLAUDE-TOKEN-BUDGET-TOTAL:100000")


def ics(*events: str) -> str:
    body = "".join(e.strip() + "\n" for e in events)
    return f"BEGIN:VCALENDAR\nVERSION:2.0\nPRODID:-//test//EN\n{body}END:VCALENDAR\n".replace(
        "\n", "\r\n")


def event(uid: str, *lines: str, start: str = "20261116T090000",
          end: str = "20261116T110000", summary: str = "Session") -> str:
    inner = "\n".join(lines)
    return (f"BEGIN:VEVENT\nUID:{uid}\nDTSTAMP:20261101T000000Z\nSUMMARY:{summary}\n"
            f"DTSTART;TZID=Europe/Berlin:{start}\nDTEND;TZID=Europe/Berlin:{end}\n"
            f"{inner}\nEND:VEVENT")


def record(when: datetime, tokens: int = 3000, cwd: str = "/src/calsync",
           model: str = "claude-sonnet-4-5", session: str = "s1") -> UsageRecord:
    return UsageRecord(timestamp=when.astimezone(UTC), session_id=session, cwd=cwd,
                       git_branch=None, model=model, input_tokens=tokens // 3,
                       output_tokens=tokens - tokens // 3, cost_usd=0.01)


def knowledge(objects: list[CalendarObject], records: list[UsageRecord] = (), *,
              now: datetime = NOW, written: dict | None = None,
              git: dict | None = None) -> Knowledge:
    start = now - timedelta(days=14)
    occurrences, _ = read_sessions(objects, start=start, end=now, tz=BERLIN,
                                   location="test.ics", written_plans=written or {})
    due = [o for o in occurrences if o.start <= now]
    actuals = attribute(due, records, projects={}, count_cache_reads=False, prices=None,
                        now=now)
    return Knowledge(start, now, now, BERLIN, "test.ics", actuals, git or {}, written or {})


def objects_of(*texts: str) -> list[CalendarObject]:
    return [CalendarObject(f"obj-{i}.ics", f"etag-{i}", text) for i, text in enumerate(texts)]


def plan(texts: list[str] | tuple[str, ...], records: list[UsageRecord] = (), **kw) -> SyncPlan:
    objects = objects_of(*texts)
    return plan_sync(objects, knowledge(objects, records, **kw))


def applied(result: SyncPlan, texts: list[str]) -> list[str]:
    """The texts after the writes of `result`, as the engine would leave them."""
    new = {d.href: d.new_text for d in result.decisions if isinstance(d, WriteObject)}
    return [new.get(f"obj-{i}.ics", text) for i, text in enumerate(texts)]


def vevents(text: str) -> list:
    return list(Calendar.from_ical(text).walk("VEVENT"))


def by_rid(text: str) -> dict[str | None, object]:
    found = {}
    for ev in vevents(text):
        rid = ev.decoded("RECURRENCE-ID") if "RECURRENCE-ID" in ev else None
        found[format_recurrence_id(rid)] = ev
    return found


def only_write(result: SyncPlan) -> WriteObject:
    writes = result.writes
    assert len(writes) == 1, result.decisions
    return writes[0]


# --- single events ----------------------------------------------------------------------------


@pytest.mark.parametrize(("start", "end", "tokens", "status"), [
    pytest.param("20261116T090000", "20261116T110000", 3000, "completed", id="ended-used"),
    pytest.param("20261116T090000", "20261116T110000", 0, "missed", id="ended-unused"),
    pytest.param("20261116T090000", "20261116T110000", 150_000, "over-budget", id="over-budget"),
    pytest.param("20261118T110000", "20261118T130000", 3000, "in-progress", id="running"),
])
def test_a_single_event_gets_its_status_and_actuals(start, end, tokens, status):
    text = ics(event("one", *PLAN, start=start, end=end))
    at = datetime.strptime(start, "%Y%m%dT%H%M%S").replace(tzinfo=BERLIN) + timedelta(minutes=30)
    records = [record(at, tokens)] if tokens else []
    write = only_write(plan([text], records))
    ev = vevents(write.new_text)[0]
    assert str(ev["X-CLAUDE-STATUS"]) == status
    assert int(str(ev["X-CLAUDE-ACTUAL-TOKENS-TOTAL"])) == tokens
    assert "--- calsync actuals ---" in str(ev["DESCRIPTION"])
    assert str(ev["X-CLAUDE-SYNCED-AT"]) == "20261118T110000Z"
    assert [c.status.value for c in write.changes] == [status]


def test_a_future_event_is_left_alone():
    text = ics(event("later", *PLAN, start="20261120T090000", end="20261120T110000"))
    result = plan([text])
    assert result.writes == ()
    assert result.occurrences == 0


def test_a_cancelled_event_is_marked_cancelled_and_takes_no_usage():
    text = ics(event("gone", *PLAN, "STATUS:CANCELLED"))
    write = only_write(plan([text], [record(datetime(2026, 11, 16, 9, 30, tzinfo=BERLIN))]))
    ev = vevents(write.new_text)[0]
    assert str(ev["X-CLAUDE-STATUS"]) == "cancelled"
    assert str(ev["X-CLAUDE-ACTUAL-TOKENS-TOTAL"]) == "0"
    assert str(ev["STATUS"]) == "CANCELLED"


def test_an_all_day_session_is_written():
    text = ics("BEGIN:VEVENT\nUID:allday\nDTSTAMP:20261101T000000Z\nSUMMARY:Review day\n"
               "DTSTART;VALUE=DATE:20261116\nDTEND;VALUE=DATE:20261117\n"
               + "\n".join(PLAN) + "\nEND:VEVENT")
    write = only_write(plan([text], [record(datetime(2026, 11, 16, 15, 0, tzinfo=BERLIN))]))
    ev = vevents(write.new_text)[0]
    assert str(ev["X-CLAUDE-STATUS"]) == "completed"
    assert "DTSTART;VALUE=DATE:20261116" in write.new_text


def test_events_that_are_not_sessions_are_never_written():
    birthday = ics(event("birthday", summary="Budget meeting with Ann"))
    result = plan([birthday, ics(event("s", *PLAN))])
    assert [type(d) for d in result.decisions] == [Skip, WriteObject]
    assert result.decisions[0].href == "obj-0.ics"


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param("X-CLAUDE-PROJECT:calsync\r\n", True, id="property"),
    pytest.param("DESCRIPTION:TOKEN BUD\r\n GET:\\nTotal: 1k\r\n", True, id="folded-plan"),
    pytest.param("SUMMARY:Dentist and a very\r\n  long line\r\n", False, id="folded-other"),
    pytest.param("SUMMARY:Dentist\r\n", False, id="other"),
])
def test_only_texts_that_may_hold_a_session_are_parsed(text, expected):
    assert may_hold_sessions(text) is expected


def test_a_person_s_properties_and_description_are_kept():
    text = ics(event("mine", *PLAN, "LOCATION:Desk", "DESCRIPTION:Bring coffee.",
                     "ATTENDEE;CN=Ann:mailto:ann@example.com", "BEGIN:VALARM",
                     "ACTION:DISPLAY", "TRIGGER:-PT10M", "DESCRIPTION:Soon", "END:VALARM"))
    write = only_write(plan([text]))
    ev = vevents(write.new_text)[0]
    assert str(ev["LOCATION"]) == "Desk"
    assert str(ev["DESCRIPTION"]).startswith("Bring coffee.")
    assert "ATTENDEE;CN=Ann:mailto:ann@example.com" in write.new_text
    assert "TRIGGER:-PT10M" in write.new_text
    assert "ORGANIZER" not in write.new_text and "METHOD" not in write.new_text


def test_git_statistics_are_written_when_given():
    objects = objects_of(ics(event("g", *PLAN)))
    k = knowledge(objects)
    key = next(iter(k.actuals))
    k = Knowledge(k.start, k.end, k.now, k.tz, k.location, k.actuals,
                  {key: GitStats(commits=3, files_changed=4, lines_added=50, lines_removed=7)})
    ev = vevents(only_write(plan_sync(objects, k)).new_text)[0]
    assert str(ev["X-CLAUDE-GIT-COMMITS"]) == "3"
    assert str(ev["X-CLAUDE-GIT-LINES-ADDED"]) == "50"


def test_a_plan_that_cannot_be_read_is_a_problem_naming_the_uid():
    text = ics(event("bad", "X-CLAUDE-TOKEN-BUDGET-TOTAL:lots"))
    result = plan([text])
    assert result.writes == ()
    assert any("bad" in p.message and "lots" in p.message for p in result.problems)
    assert all(isinstance(p, Problem) for p in result.problems)


# --- recurring series --------------------------------------------------------------------------

SERIES = event(
    "weekly", *PLAN, "RRULE:FREQ=WEEKLY;COUNT=8",
    "EXDATE;TZID=Europe/Berlin:20261109T090000",
    "DESCRIPTION:GOALS:\\n1. Sync engine\\n2. [x] Planner",
    start="20261102T090000", end="20261102T110000", summary="Implementation")
MOVED = event(
    "weekly", "RECURRENCE-ID;TZID=Europe/Berlin:20261116T090000", "LOCATION:Cafe",
    start="20261117T140000", end="20261117T160000", summary="Implementation (moved)")


def test_each_started_occurrence_of_a_series_gets_an_override_in_one_write():
    # window: Nov 4 12:00 → Nov 18 12:00; Nov 9 is an EXDATE, Nov 16 due, Nov 23 future
    text = ics(SERIES)
    write = only_write(plan([text], [record(datetime(2026, 11, 16, 9, 30, tzinfo=BERLIN))]))
    events = by_rid(write.new_text)
    assert set(events) == {None, "20261116T080000Z"}
    override = events["20261116T080000Z"]
    assert str(override["X-CLAUDE-STATUS"]) == "completed"
    assert str(override["X-CLAUDE-TOKEN-BUDGET-TOTAL"]) == "100000"  # the series' plan
    assert "RRULE" not in override
    master = events[None]
    assert "X-CLAUDE-STATUS" not in master
    assert "EXDATE" in master and "RRULE" in master
    assert [c.fields for c in write.changes] == [("new override",)]


def test_a_real_run_writes_what_the_dry_run_shows_without_rendering_its_diff():
    texts = [ics(SERIES)]
    objects = objects_of(*texts)
    shown = knowledge(objects, [record(datetime(2026, 11, 16, 9, 30, tzinfo=BERLIN))])
    real = replace(shown, diffs=False)
    dry, wet = only_write(plan_sync(objects, shown)), only_write(plan_sync(objects, real))
    assert wet.new_text == dry.new_text
    assert "X-CLAUDE-STATUS:completed" in dry.changes[0].after
    assert (wet.changes[0].before, wet.changes[0].after) == ("", "")


def test_a_moved_occurrence_is_updated_in_place_with_the_person_s_edits():
    text = ics(SERIES, MOVED)
    result = plan([text], [record(datetime(2026, 11, 17, 14, 30, tzinfo=BERLIN))])
    events = by_rid(only_write(result).new_text)
    moved = events["20261116T080000Z"]
    assert str(moved["LOCATION"]) == "Cafe"
    assert str(moved["SUMMARY"]) == "Implementation (moved)"
    assert moved.decoded("DTSTART") == datetime(2026, 11, 17, 14, 0, tzinfo=BERLIN)
    assert str(moved["X-CLAUDE-STATUS"]) == "completed"
    assert len(events) == 2


def test_several_occurrences_of_one_series_are_one_write():
    daily = event("daily", *PLAN, "RRULE:FREQ=DAILY;COUNT=5", start="20261114T090000",
                  end="20261114T100000")
    write = only_write(plan([ics(daily)]))
    assert len(write.changes) == 5
    assert len(by_rid(write.new_text)) == 6
    assert {c.status.value for c in write.changes} == {"missed"}


def _override_plan_after(texts, written, budget):
    """Sync once, change the master's budget, sync again: the Nov 16 override's budget."""
    first = plan(texts)
    write = only_write(first)
    recorded = {(write.href, rid): digest for rid, digest in write.plan_hashes}
    text = applied(first, texts)[0].replace(
        "X-CLAUDE-TOKEN-BUDGET-TOTAL:100000\r\nRRULE", f"X-CLAUDE-TOKEN-BUDGET-TOTAL:{budget}"
        "\r\nRRULE", 1)
    return text, recorded if written else {}


def test_an_override_calsync_made_follows_a_new_series_budget():
    text, recorded = _override_plan_after([ics(SERIES)], True, 200000)
    second = plan([text], written=recorded)
    override = by_rid(only_write(second).new_text)["20261116T080000Z"]
    assert str(override["X-CLAUDE-TOKEN-BUDGET-TOTAL"]) == "200000"


def test_an_override_whose_plan_the_person_changed_keeps_it():
    text, recorded = _override_plan_after([ics(SERIES)], True, 200000)
    # the person sets that one occurrence's budget to 50000 in their calendar app
    head, _, tail = text.partition("RECURRENCE-ID")
    text = head + "RECURRENCE-ID" + tail.replace("X-CLAUDE-TOKEN-BUDGET-TOTAL:100000",
                                                 "X-CLAUDE-TOKEN-BUDGET-TOTAL:50000", 1)
    second = plan([text], written=recorded)
    result = second.writes[0].new_text if second.writes else text
    assert str(by_rid(result)["20261116T080000Z"]["X-CLAUDE-TOKEN-BUDGET-TOTAL"]) == "50000"


def test_recorded_plan_hashes_name_the_override():
    write = only_write(plan([ics(SERIES)]))
    assert [rid for rid, _ in write.plan_hashes] == ["20261116T080000Z"]
    override = by_rid(write.new_text)["20261116T080000Z"]
    from calsync.codec import read_plan
    assert write.plan_hashes[0][1] == plan_hash(read_plan(override))


# --- writing only what changed ------------------------------------------------------------------

def test_a_second_plan_with_nothing_new_writes_nothing():
    texts = [ics(SERIES), ics(event("one", *PLAN))]
    records = [record(datetime(2026, 11, 16, 9, 30, tzinfo=BERLIN))]
    first = plan(texts, records)
    assert len(first.writes) == 2
    again = plan(applied(first, texts), records, now=NOW + timedelta(minutes=15))
    assert again.writes == ()
    assert {d.reason for d in again.decisions} == {"nothing changed"}


def test_new_usage_rewrites_the_event_and_its_synced_at():
    texts = [ics(event("one", *PLAN))]
    first = plan(texts, [record(datetime(2026, 11, 16, 9, 30, tzinfo=BERLIN))])
    later = NOW + timedelta(hours=1)
    records = [record(datetime(2026, 11, 16, 9, 30, tzinfo=BERLIN)),
               record(datetime(2026, 11, 16, 10, 30, tzinfo=BERLIN), session="s2")]
    second = only_write(plan(applied(first, texts), records, now=later))
    ev = vevents(second.new_text)[0]
    assert str(ev["X-CLAUDE-ACTUAL-TOKENS-TOTAL"]) == "6000"
    assert str(ev["X-CLAUDE-SYNCED-AT"]) == "20261118T120000Z"
    assert "X-CLAUDE-ACTUAL-TOKENS-TOTAL" in second.changes[0].fields
    assert "X-CLAUDE-SYNCED-AT" not in second.changes[0].fields


@pytest.mark.parametrize("edit", [
    pytest.param(("DTSTAMP:20261101T000000Z", "DTSTAMP:20261201T101010Z"), id="dtstamp"),
    pytest.param(("SUMMARY:Session", "SEQUENCE:4\r\nSUMMARY:Session"), id="sequence"),
    pytest.param(("SUMMARY:Session", "LAST-MODIFIED:20261201T000000Z\r\nSUMMARY:Session"),
                 id="last-modified"),
    pytest.param(("SUMMARY:Session", "X-RADICALE-NAME:one.ics\r\nSUMMARY:Session"),
                 id="x-radicale"),
    pytest.param(("PRODID:-//test//EN", "PRODID:-//Other//EN"), id="prodid"),
])
def test_volatile_fields_touched_by_servers_do_not_count_as_changes(edit):
    texts = [ics(event("one", *PLAN))]
    first = plan(texts)
    touched = applied(first, texts)[0].replace(*edit)
    assert touched != applied(first, texts)[0]
    assert plan([touched]).writes == ()


def test_plan_object_replans_a_fresh_read_keeping_the_person_s_edit():
    objects = objects_of(ics(event("one", *PLAN)))
    k = knowledge(objects, [record(datetime(2026, 11, 16, 9, 30, tzinfo=BERLIN))])
    edited = CalendarObject("obj-0.ics", "etag-new",
                            objects[0].text.replace("SUMMARY:Session", "SUMMARY:Renamed"))
    decision = plan_object(edited, k)
    assert isinstance(decision, WriteObject)
    assert decision.etag == "etag-new"
    ev = vevents(decision.new_text)[0]
    assert str(ev["SUMMARY"]) == "Renamed"
    assert str(ev["X-CLAUDE-ACTUAL-TOKENS-TOTAL"]) == "3000"


@settings(max_examples=25, deadline=None)
@given(
    tokens=st.lists(st.integers(min_value=0, max_value=300_000), min_size=0, max_size=4),
    minutes=st.integers(min_value=0, max_value=60 * 24 * 3),
)
def test_law_plan_of_applied_plan_is_empty(tokens, minutes):
    """plan(apply(plan)) writes nothing, whatever the usage and the moment."""
    now = NOW + timedelta(minutes=minutes)
    start = datetime(2026, 11, 16, 9, 0, tzinfo=BERLIN)
    records = [record(start + timedelta(minutes=5 * i + 1), t, session=f"s{i}")
               for i, t in enumerate(tokens) if t]
    texts = [ics(SERIES), ics(event("one", *PLAN))]
    first = plan(texts, records, now=now)
    assert plan(applied(first, texts), records, now=now).writes == ()
