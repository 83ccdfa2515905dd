"""Usage records → actuals per occurrence: window, project, counted once, latest start wins."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.attribution import (
    assign_records,
    attribute,
    budget_used_percent,
    status_of,
)
from calsync.config import ProjectSettings
from calsync.model import Budget, Occurrence, SessionPlan, Status, UsageRecord
from calsync.pricing import load_prices

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
PRICES = load_prices()


def at(minutes: float) -> datetime:
    return T0 + timedelta(minutes=minutes)


def occ(uid: str, start: float, end: float, project: str | None = None, *, total: int | None = None,
        cancelled: bool = False, rid: datetime | None = None) -> Occurrence:
    return Occurrence(uid=uid, recurrence_id=rid, start=at(start), end=at(end),
                      plan=SessionPlan(project=project, budget=Budget(total=total)),
                      cancelled=cancelled)


def rec(minute: float, cwd: str | None = "/home/me/src/api", *, session: str = "s1",
        model: str = "claude-sonnet-4-5", inp: int = 100, out: int = 50, cw: int = 0,
        cr: int = 0, cost: float | None = None) -> UsageRecord:
    return UsageRecord(timestamp=at(minute), session_id=session, cwd=cwd, git_branch=None,
                       model=model, input_tokens=inp, output_tokens=out,
                       cache_creation_5m_tokens=cw, cache_read_tokens=cr, cost_usd=cost)


def run(occurrences, records, *, projects=None, cache_reads=False, now=None):
    return attribute(occurrences, records, projects=projects, count_cache_reads=cache_reads,
                     prices=PRICES, now=now or at(10_000))


def sessions(result, uid, rid=None):
    return result[(uid, rid)].session_ids


# --- windows and projects ---------------------------------------------------------------

def test_a_record_counts_inside_the_window_start_included_end_excluded():
    o = [occ("a", 0, 60, "api")]
    result = run(o, [rec(-1, session="before"), rec(0, session="at-start"),
                     rec(59.99, session="inside"), rec(60, session="at-end")])
    assert sessions(result, "a") == ("at-start", "inside")


@pytest.mark.parametrize(("project", "cwd", "counted"), [
    pytest.param("api", "/home/me/src/api", True, id="same-name"),
    pytest.param("API", "/home/me/src/api/", True, id="case-and-trailing-slash"),
    pytest.param("api", "C:\\Users\\me\\src\\Api", True, id="windows-path"),
    pytest.param("api", "/home/me/src/api-v2", False, id="other-name"),
    pytest.param("api", "/home/me/src/api/backend", False, id="subdirectory-by-name-only"),
    pytest.param("api", None, False, id="no-cwd"),
    pytest.param(None, "/anything/else", True, id="no-project-takes-any"),
    pytest.param(None, None, True, id="no-project-takes-no-cwd"),
])
def test_project_matches_the_last_path_component(project, cwd, counted):
    result = run([occ("a", 0, 60, project)], [rec(10, cwd, session="x")])
    assert sessions(result, "a") == (("x",) if counted else ())


def test_configured_paths_replace_the_name_match():
    projects = {"Market": ProjectSettings(paths=("/home/me/src/organized-ai-marketplace",
                                                 "/home/me/worktrees"))}
    records = [rec(1, "/home/me/src/organized-ai-marketplace", session="repo"),
               rec(2, "/home/me/worktrees/feature-x/sub", session="worktree"),
               rec(3, "/home/me/worktreesX", session="prefix-but-not-a-dir"),
               rec(4, "/tmp/market", session="same-name-elsewhere")]
    result = run([occ("a", 0, 60, "market")], records, projects=projects)
    assert sessions(result, "a") == ("repo", "worktree")


def test_the_repository_path_adds_to_the_name_match():
    projects = {"api": ProjectSettings(path="/home/me/src/api-server")}
    records = [rec(1, "/home/me/src/api-server/frontend", session="in-repo"),
               rec(2, "/tmp/api", session="by-name")]
    assert sessions(run([occ("a", 0, 60, "api")], records, projects=projects), "a") == (
        "by-name", "in-repo")


# --- counted once -------------------------------------------------------------------------

def test_where_windows_overlap_the_occurrence_that_started_last_takes_the_record():
    o = [occ("early", 0, 120, "api"), occ("late", 60, 90, "api")]
    result = run(o, [rec(30, session="r30"), rec(70, session="r70"), rec(100, session="r100")])
    assert sessions(result, "early") == ("r100", "r30")
    assert sessions(result, "late") == ("r70",)


def test_a_later_occurrence_of_another_project_does_not_take_the_record():
    o = [occ("api", 0, 120, "api"), occ("web", 60, 90, "web")]
    result = run(o, [rec(70, "/src/api", session="api"), rec(75, "/src/web", session="web")])
    assert sessions(result, "api") == ("api",)
    assert sessions(result, "web") == ("web",)


def test_same_start_prefers_the_occurrence_naming_the_project():
    o = [occ("any", 0, 60), occ("api", 0, 60, "api")]
    result = run(o, [rec(10, session="x")])
    assert sessions(result, "api") == ("x",)
    assert sessions(result, "any") == ()


def test_a_cancelled_occurrence_takes_nothing_and_is_cancelled():
    o = [occ("main", 0, 120, "api"), occ("cancelled", 30, 60, "api", cancelled=True)]
    result = run(o, [rec(40, session="x")])
    assert result[("cancelled", None)].status is Status.CANCELLED
    assert result[("cancelled", None)].tokens_total == 0
    assert sessions(result, "main") == ("x",)


def test_occurrences_of_one_series_are_told_apart_by_recurrence_id():
    week = timedelta(days=7)
    o = [occ("series", 0, 60, "api", rid=at(0)),
         occ("series", 7 * 24 * 60, 7 * 24 * 60 + 60, "api", rid=at(0) + week)]
    result = run(o, [rec(10, session="w1"), rec(7 * 24 * 60 + 10, session="w2")])
    assert result[("series", at(0))].session_ids == ("w1",)
    assert result[("series", at(0) + week)].session_ids == ("w2",)


# --- what is counted ---------------------------------------------------------------------

def test_tokens_per_family_and_the_four_counts():
    records = [rec(1, model="claude-opus-4-5", inp=10, out=20, cw=30, cr=1000),
               rec(2, model="claude-sonnet-4-5-20250929", inp=1, out=2, cw=3, cr=500),
               rec(3, model="claude-haiku-4-5", inp=100, out=0),
               rec(4, model="gpt-oss", inp=7, out=0)]
    a = run([occ("a", 0, 60)], records)[("a", None)]
    assert (a.tokens_opus, a.tokens_sonnet, a.tokens_haiku, a.tokens_other) == (60, 6, 100, 7)
    assert a.tokens_total == 173
    assert (a.input_tokens, a.output_tokens, a.cache_creation_tokens, a.cache_read_tokens) == (
        118, 22, 33, 1500)


def test_cache_reads_count_against_the_budget_only_when_configured():
    records = [rec(1, inp=10, out=10, cw=10, cr=1000)]
    assert run([occ("a", 0, 60)], records)[("a", None)].tokens_total == 30
    counted = run([occ("a", 0, 60)], records, cache_reads=True)[("a", None)]
    assert counted.tokens_total == counted.tokens_sonnet == 1030


def test_cost_sums_record_costs_to_four_places():
    # sonnet 4.5: $3 in, $15 out per million; one record carries its own cost from the log
    records = [rec(1, inp=100_000, out=0), rec(2, inp=0, out=100_000, cost=None),
               rec(3, cost=0.123456)]
    a = run([occ("a", 0, 60)], records)[("a", None)]
    assert a.cost_usd == Decimal("1.9235")  # 0.30 + 1.50 + 0.123456


def test_unpriced_models_add_nothing_and_are_named():
    o = [occ("a", 0, 60), occ("b", 100, 160), occ("c", 200, 260)]
    records = [rec(1, inp=1_000_000 // 10, out=0), rec(2, model="mystery-model"),
               rec(101, model="mystery-model")]
    report = run(o, records)
    assert report[("a", None)].cost_usd == Decimal("0.3000")
    assert report.unpriced_models == {("a", None): ("mystery-model",),
                                      ("b", None): ("mystery-model",)}
    assert report[("b", None)].cost_usd is None  # nothing known: no number at all
    assert report[("c", None)].cost_usd == Decimal("0")  # no usage costs nothing


def test_session_ids_and_actual_times():
    berlin = timezone(timedelta(hours=1))
    records = [rec(30, session="b"), rec(5, session="a"), rec(20, session="b")]
    records.append(UsageRecord(timestamp=at(50).astimezone(berlin), session_id="c", cwd=None,
                               git_branch=None, model="claude-haiku-4-5", input_tokens=1))
    a = run([occ("a", 0, 60)], records)[("a", None)]
    assert a.session_ids == ("a", "b", "c")
    assert (a.actual_start, a.actual_end) == (at(5), at(50))
    assert a.actual_end.utcoffset() == timedelta(0)
    assert a.git is None


# --- status and budget --------------------------------------------------------------------

@pytest.mark.parametrize(("now", "tokens", "total", "cancelled", "status"), [
    pytest.param(-1, 0, 100, False, Status.PLANNED, id="future"),
    pytest.param(0, 0, 100, False, Status.IN_PROGRESS, id="just-started"),
    pytest.param(59, 500, 100, False, Status.IN_PROGRESS, id="running-over-budget"),
    pytest.param(60, 0, 100, False, Status.MISSED, id="ended-without-usage"),
    pytest.param(60, 100, 100, False, Status.COMPLETED, id="ended-on-budget"),
    pytest.param(60, 101, 100, False, Status.OVER_BUDGET, id="ended-over-budget"),
    pytest.param(60, 10**9, None, False, Status.COMPLETED, id="no-budget-never-over"),
    pytest.param(-1, 0, 100, True, Status.CANCELLED, id="cancelled-future"),
    pytest.param(99, 50, 100, True, Status.CANCELLED, id="cancelled-past"),
])
def test_status_of(now, tokens, total, cancelled, status):
    o = occ("a", 0, 60, total=total, cancelled=cancelled)
    assert status_of(o, tokens, o.plan.budget, at(now)) is status


@pytest.mark.parametrize(("tokens", "total", "percent"), [
    pytest.param(74_500, 100_000, 75, id="half-rounds-up"),
    pytest.param(74_499, 100_000, 74, id="below-half"),
    pytest.param(123_000, 100_000, 123, id="over"),
    pytest.param(0, 100_000, 0, id="nothing"),
    pytest.param(10, None, None, id="no-budget"),
    pytest.param(10, 0, None, id="zero-budget"),
])
def test_budget_used_percent(tokens, total, percent):
    assert budget_used_percent(tokens, Budget(total=total)) == percent


def test_actuals_carry_status_and_budget_use():
    o = [occ("done", 0, 60, "api", total=100), occ("missed", 100, 160, "api", total=100),
         occ("later", 2000, 2060, "api", total=100)]
    result = run(o, [rec(1, inp=100, out=20)], now=at(1000))
    assert result[("done", None)].status is Status.OVER_BUDGET
    assert result[("done", None)].budget_used_percent == 120
    assert result[("missed", None)].status is Status.MISSED
    assert result[("later", None)].status is Status.PLANNED


# --- laws and speed ----------------------------------------------------------------------

_projects = st.sampled_from(["api", "web", None])
_occurrences = st.lists(
    st.tuples(st.integers(0, 300), st.integers(1, 120), _projects, st.booleans()),
    max_size=8,
)
_records = st.lists(st.tuples(st.integers(-20, 450), st.sampled_from(["api", "web", "API"])),
                    max_size=40)


@settings(max_examples=200, deadline=None)
@given(_occurrences, _records)
def test_law_each_record_counts_once_and_every_eligible_record_counts(occ_specs, rec_specs):
    occurrences = [occ(f"o{i}", s, s + d, p, cancelled=c)
                   for i, (s, d, p, c) in enumerate(occ_specs)]
    records = [rec(m, f"/src/{name}", session=f"r{i}", inp=i + 1, out=0)
               for i, (m, name) in enumerate(rec_specs)]
    result = run(occurrences, records)
    counted = [sid for actuals in result.values() for sid in actuals.session_ids]
    assert len(counted) == len(set(counted))  # never in two occurrences

    def eligible(r: UsageRecord) -> bool:
        return any(not o.cancelled and o.start <= r.timestamp < o.end and (
            o.plan.project is None or o.plan.project.lower() == r.cwd.rsplit("/", 1)[-1].lower())
            for o in occurrences)

    assert set(counted) == {r.session_id for r in records if eligible(r)}
    assert sum(a.tokens_total for a in result.values()) == sum(
        r.input_tokens for r in records if eligible(r))


def test_a_year_of_records_over_hundreds_of_occurrences_is_fast():
    # 20 weekly series for a year (1,040 occurrences) and 200,000 records around them
    occurrences = [occ(f"s{s}", week * 7 * 1440 + s * 300, week * 7 * 1440 + s * 300 + 120,
                       f"p{s % 5}", rid=at(week * 7 * 1440)) for s in range(20)
                   for week in range(52)]
    records = [rec((i * 157) % (365 * 1440), f"/src/p{i % 7}", session=f"r{i % 97}")
               for i in range(200_000)]
    started = time.perf_counter()
    assigned = assign_records(occurrences, records)
    elapsed = time.perf_counter() - started
    assert sum(len(v) for v in assigned.values()) > 0
    assert elapsed < 5.0, f"attribution took {elapsed:.1f} s"
