"""Plans and actuals on real VEVENTs, as Google, Outlook, Apple and people leave them."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest
from icalendar import Calendar, Event

from calsync import codec
from calsync.description import ACTUALS_END, ACTUALS_START, render_plan_block
from calsync.errors import PlanError
from calsync.model import Actuals, Budget, GitStats, Goal, SessionPlan, Status


def ics(*lines: str) -> Calendar:
    body = "\r\n".join(["BEGIN:VCALENDAR", "VERSION:2.0", "PRODID:-//test//calsync//EN",
                        "BEGIN:VEVENT", "UID:sess-1@example.org",
                        "DTSTART:20261207T090000Z", "DTEND:20261207T110000Z",
                        "SUMMARY:Build the API", *lines, "END:VEVENT", "END:VCALENDAR", ""])
    return Calendar.from_ical(body)


def vevent(*lines: str) -> Event:
    event = ics(*lines).walk("VEVENT")[0]
    assert isinstance(event, Event)
    return event


PLAN = SessionPlan(
    project="calsync", session_type="implementation", primary_model="claude-sonnet-4-5",
    budget=Budget(total=100_000, opus=10_000, sonnet=85_000, haiku=5_000),
    goals=(Goal(text="Session CRUD endpoints"), Goal(text="Git stats capture", done=True)),
)
PROPS = ("X-CLAUDE-PROJECT:calsync", "X-CLAUDE-SESSION-TYPE:implementation",
         "X-CLAUDE-PRIMARY-MODEL:claude-sonnet-4-5", "X-CLAUDE-TOKEN-BUDGET-TOTAL:100000",
         "X-CLAUDE-TOKEN-BUDGET-OPUS:10000", "X-CLAUDE-TOKEN-BUDGET-SONNET:85000",
         "X-CLAUDE-TOKEN-BUDGET-HAIKU:5000")
GOALS_TEXT = "DESCRIPTION:GOALS:\\n1. Session CRUD endpoints\\n2. [x] Git stats capture"
PLAIN_DESCRIPTION = "DESCRIPTION:" + render_plan_block(PLAN).replace("\n", "\\n")
GOOGLE_DESCRIPTION = (
    "DESCRIPTION:Project: calsync<br>Session Type: implementation<br>Primary Model: claude-so"
    "nnet-4-5<br><br><b>TOKEN BUDGET:</b><br>Total: 100\\,000 tokens<br>- Opus 4: 10k tokens"
    " (critical decisions)<br>- Sonnet 4.5: 85\\,000 tokens<br>- Haiku: 5\\,000 tokens<br><br>"
    "<b>GOALS:</b><ol><li>Session CRUD endpoints</li><li>✅ Git stats capture</li></ol>"
)
OUTLOOK = (
    "DESCRIPTION:Project: calsync\\n",
    "X-ALT-DESC;FMTTYPE=text/html:<!DOCTYPE HTML PUBLIC \"-//W3C//DTD HTML 3.2//EN\">\\n<HTML>"
    "<BODY><P>Project: calsync</P><P>Session Type: implementation</P><P>Primary Model: claude"
    "-sonnet-4-5</P><P>&nbsp\\;</P><P><B>TOKEN BUDGET:</B></P><P>Total: 100k tokens</P><P>- O"
    "pus: 10k</P><P>- Sonnet: 85k</P><P>- Haiku: 5k</P><P>&nbsp\\;</P><P>GOALS:</P><P>1. Sess"
    "ion CRUD endpoints</P><P>2. [X] Git stats capture</P></BODY></HTML>",
)


@pytest.mark.parametrize(
    "lines",
    [
        pytest.param((*PROPS, GOALS_TEXT), id="properties-and-goals"),
        pytest.param((PLAIN_DESCRIPTION,), id="x-properties-stripped-plain"),
        pytest.param((GOOGLE_DESCRIPTION,), id="google-html-after-web-edit"),
        pytest.param(OUTLOOK, id="outlook-x-alt-desc"),
        pytest.param((*PROPS[:3], "X-CLAUDE-TOKEN-BUDGET-TOTAL:100\\,000",
                      "X-CLAUDE-TOKEN-BUDGET-OPUS:10k", "X-CLAUDE-TOKEN-BUDGET-SONNET:85 000",
                      "X-CLAUDE-TOKEN-BUDGET-HAIKU:5K", GOALS_TEXT), id="budgets-100k-100,000"),
        pytest.param((*PROPS, PLAIN_DESCRIPTION.replace("calsync", "other")
                      .replace("Total: 100000", "Total: 90000")),
                     id="properties-win-over-description"),
    ],
)
def test_read_plan(lines: tuple[str, ...]) -> None:
    event = vevent(*lines)
    assert codec.is_session_event(event)
    assert codec.read_plan(event, path="work.ics") == PLAN


def test_text_properties_are_unescaped() -> None:
    event = vevent("X-CLAUDE-PROJECT:acme\\, inc\\; api", "X-CLAUDE-FRAMEWORK:BMAD METHOD")
    assert codec.read_plan(event) == SessionPlan(project="acme, inc; api", framework="BMAD METHOD")


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        pytest.param(("X-CLAUDE-TOKEN-BUDGET-TOTAL:lots",),
                     "work.ics: UID sess-1@example.org: X-CLAUDE-TOKEN-BUDGET-TOTAL: "
                     "budget is not a number: 'lots'", id="bad-budget-property"),
        pytest.param(("DESCRIPTION:Project: x\\nTOKEN BUDGET:\\nTotal: plenty",),
                     "work.ics: UID sess-1@example.org: DESCRIPTION: line 3: "
                     "budget is not a number: 'plenty'", id="bad-budget-description"),
        pytest.param(("X-CLAUDE-COST-BUDGET-USD:cheap",),
                     "X-CLAUDE-COST-BUDGET-USD: not an amount in USD: 'cheap'", id="bad-cost"),
        pytest.param(("X-CLAUDE-TOKEN-BUDGET-TOTAL:10000", "X-CLAUDE-TOKEN-BUDGET-OPUS:8000",
                      "DESCRIPTION:TOKEN BUDGET:\\n- Sonnet: 5k"),
                     "X-CLAUDE-TOKEN-BUDGET-TOTAL: the per-model budgets add up to 13000 "
                     "tokens, more than the total 10000", id="shares-above-total"),
    ],
)
def test_bad_plans_name_file_uid_and_property(lines: tuple[str, ...], message: str) -> None:
    with pytest.raises(PlanError) as caught:
        codec.read_plan(vevent(*lines), path="work.ics")
    assert message in str(caught.value)
    assert "\n" not in str(caught.value)


def test_bad_description_value_is_ignored_when_a_property_has_it() -> None:
    event = vevent("X-CLAUDE-TOKEN-BUDGET-TOTAL:5000", "DESCRIPTION:TOKEN BUDGET:\\nTotal: tbd")
    assert codec.read_plan(event).budget.total == 5_000


@pytest.mark.parametrize(
    ("lines", "expected"),
    [
        pytest.param(("X-CLAUDE-STATUS:planned",), True, id="any-x-claude-property"),
        pytest.param(("DESCRIPTION:TOKEN BUDGET:\\nTotal: 5k",), True, id="plan-block"),
        pytest.param(("DESCRIPTION:<b>Token budget:</b><br>Total: lots",), True,
                     id="html-block-even-with-a-bad-value"),
        pytest.param(("DESCRIPTION:Dentist. Token budget: none\\, sadly.",), False,
                     id="mention-without-total"),
        pytest.param(("DESCRIPTION:Total: 5k tokens",), False, id="total-without-section"),
        pytest.param((), False, id="plain-event"),
    ],
)
def test_is_session_event(lines: tuple[str, ...], expected: bool) -> None:
    assert codec.is_session_event(vevent(*lines)) is expected


def test_unknown_x_claude_property_is_kept_and_listed() -> None:
    cal = ics(*PROPS, "X-CLAUDE-MOOD;X-SOURCE=me:optimistic\\, mostly")
    event = cal.walk("VEVENT")[0]
    assert codec.unknown_properties(event) == ("X-CLAUDE-MOOD",)
    codec.write_actuals(event, PLAN, Actuals(tokens_total=5))
    assert "X-CLAUDE-MOOD;X-SOURCE=me:optimistic\\, mostly\r\n" in cal.to_ical().decode()


ACTUALS = Actuals(
    tokens_total=74_500, tokens_opus=12_300, tokens_sonnet=61_000, tokens_haiku=1_200,
    input_tokens=5_000, output_tokens=20_000, cache_creation_tokens=49_500,
    cache_read_tokens=900_000, cost_usd=Decimal("1.42"), budget_used_percent=75,
    status=Status.COMPLETED, actual_start=datetime(2026, 12, 7, 9, 3, 1, tzinfo=UTC),
    actual_end=datetime(2026, 12, 7, 10, 58, 40, tzinfo=UTC), session_ids=("a1", "b2"),
    git=GitStats(commits=3, files_changed=7, lines_added=120, lines_removed=30),
    synced_at=datetime(2026, 12, 7, 11, 0, tzinfo=UTC),
)

RICH_EVENT = (
    "RRULE:FREQ=WEEKLY;BYDAY=MO;COUNT=6",
    "EXDATE;TZID=Europe/Paris:20261214T100000",
    "ORGANIZER;CN=Ana Lima:mailto:ana@example.org",
    "ATTENDEE;CN=\"Lee, Bo\";ROLE=REQ-PARTICIPANT;PARTSTAT=ACCEPTED:mailto:bo@example.org",
    "CATEGORIES:work,ai",
    "LOCATION:Room 4\\, floor 2",
    *PROPS,
    "X-GOOGLE-CONFERENCE:https://meet.google.com/abc-defg-hij",
    "DESCRIPTION;LANGUAGE=en:Bring the notes\\, please.\\n\\n" + GOALS_TEXT[12:],
    "BEGIN:VALARM", "ACTION:DISPLAY", "DESCRIPTION:Reminder", "TRIGGER:-PT10M", "END:VALARM",
)


def _other_lines(cal: Calendar) -> list[str]:
    """Every content line calsync does not own (unfolded)."""
    text = cal.to_ical().decode().replace("\r\n ", "")
    return [line for line in text.split("\r\n")
            if not line.startswith(("X-CLAUDE-", "DESCRIPTION;LANGUAGE"))]


def test_write_actuals_keeps_everything_else_intact() -> None:
    cal = ics(*RICH_EVENT)
    before = _other_lines(cal)
    event = cal.walk("VEVENT")[0]
    codec.write_actuals(event, codec.read_plan(event), ACTUALS)
    assert _other_lines(cal) == before
    description = str(event["DESCRIPTION"])
    assert description.startswith("Bring the notes, please.\n\nGOALS:\n1. Session CRUD")
    assert event["DESCRIPTION"].params["LANGUAGE"] == "en"
    assert description.count(ACTUALS_START) == 1 and description.endswith(ACTUALS_END)
    assert codec.read_actuals(event) == ACTUALS


def test_actuals_are_written_as_the_spec_shows() -> None:
    cal = ics(*PROPS)
    codec.write_actuals(cal.walk("VEVENT")[0], PLAN, ACTUALS)
    lines = set(cal.to_ical().decode().replace("\r\n ", "").split("\r\n"))
    assert {
        "X-CLAUDE-ACTUAL-TOKENS-TOTAL:74500", "X-CLAUDE-ACTUAL-COST-USD:1.4200",
        "X-CLAUDE-BUDGET-USED-PERCENT:75", "X-CLAUDE-STATUS:completed",
        "X-CLAUDE-ACTUAL-START:20261207T090301Z", "X-CLAUDE-SESSION-IDS:a1\\,b2",
        "X-CLAUDE-GIT-LINES-REMOVED:30", "X-CLAUDE-SYNCED-AT:20261207T110000Z",
    } <= lines


def test_values_that_became_none_are_removed_not_written_empty() -> None:
    cal = ics(*PROPS)
    event = cal.walk("VEVENT")[0]
    codec.write_actuals(event, PLAN, ACTUALS)
    codec.write_actuals(event, PLAN, Actuals(tokens_total=10, status=Status.MISSED))
    text = cal.to_ical().decode()
    for gone in ("COST-USD", "GIT-", "ACTUAL-START", "SESSION-IDS", "SYNCED-AT", "PERCENT"):
        assert f"X-CLAUDE-{gone}" not in text
    assert codec.read_actuals(event) == Actuals(tokens_total=10, status=Status.MISSED)


def test_read_actuals_none_before_the_first_sync() -> None:
    assert codec.read_actuals(vevent(*PROPS)) is None


def test_read_actuals_skips_a_value_a_person_mangled() -> None:
    event = vevent("X-CLAUDE-ACTUAL-TOKENS-TOTAL:many", "X-CLAUDE-STATUS:completed")
    assert codec.read_actuals(event) == Actuals(status=Status.COMPLETED)


def test_google_html_description_gets_an_html_block() -> None:
    event = vevent(GOOGLE_DESCRIPTION)
    original = str(event["DESCRIPTION"])
    codec.write_actuals(event, codec.read_plan(event), ACTUALS)
    written = str(event["DESCRIPTION"])
    assert written.startswith(original + "<br><br>" + ACTUALS_START + "<br>")
    assert "\n" not in written
    assert codec.read_plan(event) == PLAN


def test_outlook_alt_desc_gets_the_block_too() -> None:
    cal = ics(*OUTLOOK)
    event = cal.walk("VEVENT")[0]
    codec.write_actuals(event, PLAN, ACTUALS)
    alt = Calendar.from_ical(cal.to_ical()).walk("VEVENT")[0]["X-ALT-DESC"]
    assert alt.params["FMTTYPE"] == "text/html"
    assert "<br>- Status: completed<br>" in alt
    assert alt.index(ACTUALS_START) < alt.index("</BODY>")
    assert str(event["DESCRIPTION"]).startswith("Project: calsync\n\n" + ACTUALS_START)


def test_write_plan_on_a_bare_event_writes_properties_and_block() -> None:
    cal = ics()
    event = cal.walk("VEVENT")[0]
    codec.write_plan(event, PLAN)
    assert str(event["DESCRIPTION"]) == render_plan_block(PLAN)
    assert "X-CLAUDE-TOKEN-BUDGET-TOTAL:100000" in cal.to_ical().decode()
    stripped = vevent("DESCRIPTION:" + str(event["DESCRIPTION"]).replace("\n", "\\n"))
    assert codec.read_plan(stripped) == PLAN


def test_write_plan_replaces_only_the_plan_block() -> None:
    event = vevent("DESCRIPTION:Call Bo first.\\n\\nProject: old\\nTOKEN BUDGET:\\nTotal: 5k"
                   "\\n\\nSee you!")
    codec.write_plan(event, PLAN)
    assert str(event["DESCRIPTION"]) == (
        "Call Bo first.\n\n" + render_plan_block(PLAN) + "\n\nSee you!")


def test_write_plan_leaves_a_description_that_already_says_it() -> None:
    event = vevent(GOOGLE_DESCRIPTION)
    before = str(event["DESCRIPTION"])
    codec.write_plan(event, PLAN)
    assert str(event["DESCRIPTION"]) == before
