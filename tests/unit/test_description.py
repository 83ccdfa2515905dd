"""The DESCRIPTION as people and calendar apps leave it: plan block in, actuals block out."""

from __future__ import annotations

import re
from decimal import Decimal
from pathlib import Path

import pytest

from calsync.description import (
    ACTUALS_END,
    ACTUALS_START,
    html_to_text,
    looks_like_html,
    parse_plan_block,
    render_actuals_block,
    render_plan_block,
    replace_actuals_block,
)
from calsync.model import Actuals, Budget, GitStats, Goal, SessionPlan, Status

README = Path(__file__).resolve().parents[2] / "README.md"

SPEC_BLOCK = """\
Project: organized-ai-marketplace
Session Type: Implementation
Framework: Hybrid
Primary Model: Sonnet 4.5

TOKEN BUDGET:
Total: 100000 tokens
- Opus 4: 10000 tokens (critical decisions)
- Sonnet 4.5: 85000 tokens (implementation)
- Haiku 3.5: 5000 tokens (routine tasks)

GOALS:
1. Session CRUD endpoints
2. [x] Git stats capture
3. Report generation

SUCCESS CRITERIA:
- All endpoints tested

DELIVERABLES:
- src/routes/dev_sessions.rs

NOTES:
- Keep Opus for the review"""

SPEC_PLAN = SessionPlan(
    project="organized-ai-marketplace",
    session_type="Implementation",
    framework="Hybrid",
    primary_model="Sonnet 4.5",
    budget=Budget(total=100_000, opus=10_000, sonnet=85_000, haiku=5_000),
    goals=(Goal(text="Session CRUD endpoints"), Goal(text="Git stats capture", done=True),
           Goal(text="Report generation")),
    success_criteria=("All endpoints tested",),
    deliverables=("src/routes/dev_sessions.rs",),
    notes=("Keep Opus for the review",),
)

# What Google Calendar's web editor makes of a description typed there (bold header, a
# bulleted and a numbered list, entities); samples shaped like Google's own exports.
GOOGLE_HTML = (
    "Project: organized-ai-marketplace<br>Session Type: Implementation<br>Framework: Hybrid"
    "<br>Primary Model: Sonnet 4.5<br><br><b>TOKEN BUDGET:</b><br>Total: 100,000 tokens<br>"
    "- Opus 4: 10,000 tokens (critical decisions)<br>- Sonnet 4.5: 85k tokens&nbsp;"
    "(implementation)<br>- Haiku 3.5: 5,000 tokens (routine tasks)<br><br><b>GOALS:</b>"
    "<ol><li>Session CRUD endpoints</li><li>[x] Git stats capture</li><li>Report generation"
    "</li></ol><b>SUCCESS CRITERIA:</b><ul><li>All endpoints tested</li></ul>"
    "<b>DELIVERABLES:</b><br>- src/routes/dev_sessions.rs<br><br><b>NOTES:</b><br>"
    "<div>- Keep Opus for the review</div>"
)

# Outlook's HTML copy of the description (X-ALT-DESC;FMTTYPE=text/html), once unescaped.
OUTLOOK_HTML = """<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2//EN">
<HTML>
<HEAD>
<META NAME="Generator" CONTENT="MS Exchange Server version rmj.rmm.rup.rpr">
<TITLE></TITLE>
<style>p { margin: 0 }</style>
</HEAD>
<BODY>
<P DIR=LTR><SPAN LANG="en-us"><FONT FACE="Calibri">Project: organized-ai-marketplace</FONT>
</SPAN></P>
<P DIR=LTR><SPAN LANG="en-us"><FONT FACE="Calibri">TOKEN BUDGET:</FONT></SPAN></P>
<P DIR=LTR><SPAN LANG="en-us"><FONT FACE="Calibri">Total: 100&#44;000 tokens</FONT></SPAN></P>
<P DIR=LTR><SPAN LANG="en-us"><FONT FACE="Calibri">- Opus: 10k tokens</FONT></SPAN></P>
<P DIR=LTR><SPAN LANG="en-us"><FONT FACE="Calibri">&nbsp;</FONT></SPAN></P>
<P DIR=LTR><SPAN LANG="en-us"><FONT FACE="Calibri">GOALS:</FONT></SPAN></P>
<P DIR=LTR><SPAN LANG="en-us"><FONT FACE="Calibri">1. Tom &amp; Jerry&#39;s API</FONT></SPAN></P>
</BODY>
</HTML>
"""


# ------------------------------------------------------------------------------- HTML


@pytest.mark.parametrize(
    ("markup", "text"),
    [
        pytest.param("a<br>b<BR/>c", "a\nb\nc", id="br"),
        pytest.param("<div>a</div><div><br></div><div>b</div>", "a\n\nb", id="google-divs"),
        pytest.param("<p>a</p><p>b &amp; c&nbsp;d</p>", "a\nb & c d", id="paragraphs-entities"),
        pytest.param("x<ul><li>one</li><li>two</li></ul>y", "x\n- one\n- two\ny", id="ul"),
        pytest.param("<ol><li>one</li><li>two</li></ol>", "1. one\n2. two", id="ol"),
        pytest.param("<b>GOALS:</b><br><span>a</span>", "GOALS:\na", id="inline-tags"),
        pytest.param("<html-blob>a<br>b</html-blob>", "a\nb", id="google-html-blob"),
        pytest.param("<p>a\n   b</p>", "a b", id="source-whitespace-collapses"),
    ],
)
def test_html_becomes_the_plain_layout(markup: str, text: str) -> None:
    assert html_to_text(markup) == text


def test_outlook_document_loses_head_and_keeps_lines() -> None:
    text = html_to_text(OUTLOOK_HTML)
    assert "Generator" not in text and "margin" not in text
    assert text.splitlines() == [
        "Project: organized-ai-marketplace", "TOKEN BUDGET:", "Total: 100,000 tokens",
        "- Opus: 10k tokens", "", "GOALS:", "1. Tom & Jerry's API",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param(GOOGLE_HTML, True, id="google-web-edit"),
        pytest.param(OUTLOOK_HTML, True, id="outlook-document"),
        pytest.param(SPEC_BLOCK, False, id="plain-plan"),
        pytest.param("NOTES:\n- wrap it in <b>bold</b>\n- done", False, id="plain-mentions-tag"),
        pytest.param("if a < b and c > d", False, id="comparison"),
    ],
)
def test_looks_like_html(text: str, expected: bool) -> None:
    assert looks_like_html(text) is expected


# ------------------------------------------------------------------------- plan block


@pytest.mark.parametrize(
    "text",
    [
        pytest.param(SPEC_BLOCK, id="spec-layout"),
        pytest.param(SPEC_BLOCK.replace("TOKEN BUDGET", "Token budget")
                     .replace("GOALS", "Goals").replace("NOTES", "notes"), id="any-case"),
        pytest.param(SPEC_BLOCK.replace("100000", "100,000").replace("85000", "85k")
                     .replace("5000 tokens", "5 000 tokens"), id="separators-and-k"),
        pytest.param(SPEC_BLOCK.replace("1. Session", "- Session").replace("2. [x]", "* ✅")
                     .replace("3. Report", "• [ ] Report"), id="bullets-and-marks"),
        pytest.param(html_to_text(GOOGLE_HTML), id="google-html"),
        pytest.param(SPEC_BLOCK.replace("\n", "\r\n"), id="crlf"),
        pytest.param(SPEC_BLOCK.replace("Total: 100000 tokens", "- Total budget: 100K"),
                     id="total-budget-bulleted"),
        pytest.param("Agenda for today\n\n" + SPEC_BLOCK + "\n\nThanks!", id="surrounded"),
    ],
)
def test_plan_block_reads_as_people_write_it(text: str) -> None:
    assert parse_plan_block(text).plan == SPEC_PLAN


def test_plan_block_reports_what_it_found() -> None:
    parsed = parse_plan_block("Project: x\n\nTOKEN BUDGET:\nTotal: 5k\n- Haiku: 1k")
    assert parsed.found == {"project", "budget.total", "budget.haiku"}
    assert parsed.plan == SessionPlan(project="x", budget=Budget(total=5_000, haiku=1_000))


def test_bad_budget_is_reported_with_its_line_not_guessed() -> None:
    parsed = parse_plan_block("Project: x\nTOKEN BUDGET:\nTotal: lots of tokens\n- Opus: 1k")
    assert "budget.total" not in parsed.found
    assert str(parsed.errors["budget.total"]) == "line 3: budget is not a number: 'lots of'"
    assert parsed.plan.budget == Budget(opus=1_000)


def test_actuals_block_is_not_read_as_plan() -> None:
    text = ("GOALS:\n- a\n\n" + ACTUALS_START + "\nACTUAL USAGE:\n- Total: 5k / 10k (50%)\n\n"
            "NEXT SESSION:\n- a\nGOALS:\n- sneaky\n" + ACTUALS_END)
    parsed = parse_plan_block(text)
    assert parsed.plan == SessionPlan(goals=(Goal(text="a"),))
    assert "budget.total" not in parsed.found


def test_goals_stop_at_a_paragraph_of_prose() -> None:
    parsed = parse_plan_block("GOALS:\n1. a\n\n2. b\n\nSee you then.\nBring coffee.")
    assert parsed.plan.goals == (Goal(text="a"), Goal(text="b"))
    assert parsed.extra == ""
    assert parsed.end == len("GOALS:\n1. a\n\n2. b")


def test_stray_prose_inside_the_block_is_handed_back() -> None:
    text = "Project: x\nsee the wiki\nand the board\n\nGOALS:\n1. a"
    assert parse_plan_block(text).extra == "see the wiki\nand the board"


def test_render_plan_block_is_the_spec_layout() -> None:
    # The spec's sample, minus the bracketed comments (they are not part of the plan).
    expected = re.sub(r" \(.*\)", "", SPEC_BLOCK)
    expected = re.sub(r"- (Opus|Sonnet|Haiku) [\d.]+:", r"- \1:", expected)
    assert render_plan_block(SPEC_PLAN) == expected


@pytest.mark.parametrize(
    "goal",
    [
        pytest.param(Goal(text="[x] literally"), id="checkbox-text-not-done"),
        pytest.param(Goal(text="✅ emoji", done=False), id="emoji-text-not-done"),
        pytest.param(Goal(text="2. numbered", done=True), id="number-text-done"),
        pytest.param(Goal(text="- dash"), id="dash-text"),
    ],
)
def test_goal_texts_that_look_like_marks_survive(goal: Goal) -> None:
    plan = SessionPlan(goals=(goal,), notes=("- a note with a dash",))
    assert parse_plan_block(render_plan_block(plan)).plan == plan


def test_cost_budget_rides_in_the_block() -> None:
    plan = SessionPlan(cost_budget_usd=Decimal("5.00"))
    assert render_plan_block(plan) == "Cost Budget: $5.00"
    assert parse_plan_block("cost budget: 5 USD").plan == SessionPlan(cost_budget_usd=Decimal(5))


# ---------------------------------------------------------------------- actuals block

SPEC_ACTUALS = Actuals(
    tokens_total=74_500, tokens_opus=12_300, tokens_sonnet=61_000, tokens_haiku=1_200,
    cost_usd=Decimal("1.4213"), status=Status.COMPLETED,
)


def _readme_block(opening: str) -> str:
    readme = README.read_text(encoding="utf-8")
    section = readme.split("## Property reference", 1)[1]
    blocks = re.findall(r"```\n(.*?)\n```", section, re.DOTALL)
    return next(b for b in blocks if b.startswith(opening))


def test_readme_actuals_block_is_what_calsync_writes() -> None:
    plan = parse_plan_block(_readme_block("Project:")).plan
    assert render_actuals_block(plan, SPEC_ACTUALS) == _readme_block(ACTUALS_START)


def test_actuals_block_shows_the_spec_usage_lines() -> None:
    lines = render_actuals_block(SPEC_PLAN, SPEC_ACTUALS).splitlines()
    assert lines[:7] == [
        ACTUALS_START, "ACTUAL USAGE:", "- Opus: 12.3k tokens (123% of budget)",
        "- Sonnet: 61.0k tokens (72% of budget)", "- Haiku: 1.2k tokens (24% of budget)",
        "- Total: 74.5k / 100k (75%)", "- Cost: $1.42",
    ]
    assert lines[-1] == ACTUALS_END


def test_actuals_block_without_cost_git_or_budget() -> None:
    plan = SessionPlan(goals=(Goal(text="a", done=True),))
    actuals = Actuals(tokens_total=850, tokens_other=850, cache_read_tokens=1_250_000,
                      git=GitStats(commits=1, files_changed=2, lines_added=30, lines_removed=4))
    assert render_actuals_block(plan, actuals).splitlines()[1:] == [
        "ACTUAL USAGE:", "- Other: 850 tokens", "- Total: 850 tokens",
        "- Cache reads: 1.2M tokens", "- Cost: unknown",
        "- Git: 1 commit, 2 files changed, +30 -4 lines", "- Status: planned", "",
        "COMPLETED:", "✅ a", "", "NEXT SESSION:", "- nothing left", ACTUALS_END,
    ]


def test_actuals_block_uses_the_reported_percentage() -> None:
    plan = SessionPlan(budget=Budget(total=1_000))
    block = render_actuals_block(plan, Actuals(tokens_total=1_500, budget_used_percent=150))
    assert "- Total: 1.5k / 1k (150%)" in block.splitlines()


def test_no_goals_no_goal_sections() -> None:
    block = render_actuals_block(SessionPlan(), Actuals())
    assert "COMPLETED:" not in block and "NEXT SESSION:" not in block


BLOCK = render_actuals_block(SPEC_PLAN, SPEC_ACTUALS)
OLD = render_actuals_block(SPEC_PLAN, Actuals(tokens_total=1))


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        pytest.param("", BLOCK, id="empty"),
        pytest.param("notes", "notes\n\n" + BLOCK, id="append-after-blank-line"),
        pytest.param("notes\n", "notes\n\n" + BLOCK, id="append-after-newline"),
        pytest.param("notes\n\n", "notes\n\n" + BLOCK, id="append-after-blank"),
        pytest.param("top\n\n" + OLD + "\n\nbottom", "top\n\n" + BLOCK + "\n\nbottom",
                     id="replace-in-the-middle"),
        pytest.param("top\r\n" + OLD.replace("\n", "\r\n") + "\r\nend",
                     "top\r\n" + BLOCK.replace("\n", "\r\n") + "\r\nend", id="crlf"),
        pytest.param("a\n" + OLD + "\nb\n" + OLD + "\nc", "a\n" + BLOCK + "\nb\nc",
                     id="second-block-removed"),
        pytest.param("a\n" + ACTUALS_START + "\n- Total: 1", "a\n" + BLOCK,
                     id="unterminated-block-runs-to-end"),
        pytest.param("Project: " + ACTUALS_START, "Project: " + ACTUALS_START + "\n\n" + BLOCK,
                     id="marker-inside-a-line-is-text"),
    ],
)
def test_replace_actuals_block_plain(description: str, expected: str) -> None:
    assert replace_actuals_block(description, BLOCK) == expected


def test_google_html_gets_the_block_as_html_and_replaces_it() -> None:
    once = replace_actuals_block(GOOGLE_HTML, BLOCK)
    assert once.startswith(GOOGLE_HTML + "<br><br>" + ACTUALS_START + "<br>ACTUAL USAGE:<br>")
    assert "\n" not in once
    assert html_to_text(once).endswith(BLOCK)
    # After a web edit Google wraps every line in a div and may turn spaces into &nbsp;.
    divs = "".join(f"<div>{line.replace(' ', '&nbsp;') or '<br>'}</div>"
                   for line in OLD.split("\n"))
    edited = GOOGLE_HTML + "<br>" + divs + "<div>see you</div>"
    new_html = BLOCK.replace("\n", "<br>")
    assert replace_actuals_block(edited, BLOCK) == (
        GOOGLE_HTML + "<br><div>" + new_html + "</div><div>see you</div>")


def test_html_goal_text_is_escaped() -> None:
    plan = SessionPlan(goals=(Goal(text="a <b> & c"),))
    out = replace_actuals_block("x<br>y", render_actuals_block(plan, Actuals()))
    assert "⏳ a &lt;b&gt; &amp; c - not done" in out


def test_outlook_document_gets_the_block_inside_body() -> None:
    out = replace_actuals_block(OUTLOOK_HTML, BLOCK)
    assert out.index(ACTUALS_START) < out.index("</BODY>")
    assert out.replace("<br><br>" + BLOCK.replace("\n", "<br>"), "") == OUTLOOK_HTML


@pytest.mark.parametrize(
    ("description", "expected"),
    [
        pytest.param("notes\n\n" + OLD, "notes", id="appended-block"),
        pytest.param("top\n\n" + OLD + "\n\nbottom", "top\n\nbottom", id="middle"),
        pytest.param("top<br><br>" + OLD.replace("\n", "<br>"), "top", id="html"),
        pytest.param("no block here", "no block here", id="nothing-to-remove"),
    ],
)
def test_remove_actuals_block(description: str, expected: str) -> None:
    assert replace_actuals_block(description, None) == expected
