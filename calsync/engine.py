"""Apply a sync plan: the only code that writes calendar objects.

`apply(plan, backend, replan=...)` walks the planner's decisions and writes each
`WriteObject` with one conditional PUT (If-Match on the etag that was read):

- 412 (`PreconditionFailed`): someone edited the object since it was read. Read it again,
  ask `replan` what to write now (their edit kept, our actuals on top), and retry; at most
  `RetryPolicy.conflicts` times, then the object is reported as failed.
- A transient fault (`ServerError.transient`: no answer, 408, 429, 5xx): wait (Retry-After
  when the server gave one, else exponential backoff) and retry; at most `RetryPolicy.faults`
  times, then the object is reported as failed.
- Anything else a backend or the planner raises about one object fails that object only;
  the others are still written. Only `AuthError` stops the run: every write would fail.

`on_written(decision, etag)` runs after each successful write, so the caller can record what
was written; state is only ever updated after the server (or file) holds the new text, and a
run killed in between simply re-plans the object next time.

Read-only (`--dry-run`) is enforced here, once: nothing is written and the report lists what
would have been.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import TypeVar

from .backends import Backend
from .errors import AuthError, CalsyncError, PreconditionFailed, ServerError
from .model import CalendarObject
from .planner import Decision, Problem, SyncPlan, WriteObject

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    conflicts: int = 3           # re-read and re-plan after a 412, this many times
    faults: int = 3              # retries after a transient fault, per request
    backoff_seconds: float = 0.5  # first pause; doubled after each failed attempt
    max_wait_seconds: float = 30.0  # no pause longer than this, whatever Retry-After says


@dataclass(frozen=True, slots=True)
class Failed:
    """An object that could not be written: its decision (if any) and why."""

    href: str
    message: str
    decision: WriteObject | None = None

    @property
    def occurrences(self) -> int:
        return len(self.decision.changes) if self.decision else 0


@dataclass(frozen=True, slots=True)
class SyncReport:
    """What a run did. With `dry_run`, `written` is what it would have written."""

    occurrences: int
    written: tuple[WriteObject, ...]
    conflicts: int
    failed: tuple[Failed, ...]
    problems: tuple[Problem, ...]
    dry_run: bool = False

    @property
    def updated(self) -> int:
        """Occurrences whose event changed."""
        return sum(len(d.changes) for d in self.written)

    @property
    def unchanged(self) -> int:
        lost = sum(f.occurrences for f in self.failed)
        return max(0, self.occurrences - self.updated - lost)

    @property
    def exit_code(self) -> int:
        return 1 if self.failed or self.problems else 0


class _Run:
    def __init__(self, backend: Backend, replan: Callable[[CalendarObject], Decision],
                 on_written: Callable[[WriteObject, str | None], None], policy: RetryPolicy,
                 sleep: Callable[[float], None]) -> None:
        self.backend, self.replan, self.on_written = backend, replan, on_written
        self.policy, self.sleep = policy, sleep
        self.conflicts = 0

    def patiently(self, call: Callable[[], T]) -> T:
        """`call()`, retried after transient faults with backoff (Retry-After honoured)."""
        wait = self.policy.backoff_seconds
        for _attempt in range(self.policy.faults):
            try:
                return call()
            except ServerError as exc:
                if not exc.transient:
                    raise
                pause = exc.retry_after if exc.retry_after is not None else wait
                self.sleep(min(max(pause, 0.0), self.policy.max_wait_seconds))
                wait *= 2
        return call()

    def replan_fresh(self, href: str) -> Decision | None:
        """Read `href` again and plan it again; None when it was deleted meanwhile."""
        try:
            fresh = self.patiently(functools.partial(self.backend.get, href))
        except ServerError as exc:
            if exc.status in (404, 410):
                return None
            raise
        return self.replan(fresh)

    def write(self, decision: WriteObject) -> WriteObject | Failed | None:
        """Write one object; the decision finally written, None if nothing is left to write."""
        href = decision.href
        for _attempt in range(self.policy.conflicts + 1):
            obj = CalendarObject(href, decision.etag, decision.new_text)
            try:
                etag = self.patiently(functools.partial(self.backend.put, obj, etag=obj.etag))
            except PreconditionFailed:
                self.conflicts += 1
                again = self.replan_fresh(href)
                if isinstance(again, Problem):
                    return Failed(href, again.message, decision)
                if not isinstance(again, WriteObject):
                    return None
                decision = again
                continue
            if etag is None:  # the server did not say: read it, so the state knows
                etag = self.patiently(functools.partial(self.backend.get, href)).etag
            self.on_written(decision, etag)
            return replace(decision, etag=etag)
        return Failed(decision.href, f"changed by someone else {self.policy.conflicts + 1} "
                      "times while calsync was writing; the next run tries again", decision)


def apply(
    plan: SyncPlan,
    backend: Backend,
    *,
    replan: Callable[[CalendarObject], Decision],
    on_written: Callable[[WriteObject, str | None], None] = lambda decision, etag: None,
    dry_run: bool = False,
    policy: RetryPolicy = RetryPolicy(),
    sleep: Callable[[float], None] = time.sleep,
) -> SyncReport:
    """Carry out `plan` on `backend`; one failing object never stops the others."""
    writes = plan.writes
    problems = plan.problems
    if dry_run:
        return SyncReport(plan.occurrences, writes, 0, (), problems, dry_run=True)
    run = _Run(backend, replan, on_written, policy, sleep)
    written: list[WriteObject] = []
    failed: list[Failed] = []
    for decision in writes:
        try:
            outcome = run.write(decision)
        except AuthError:
            raise
        except CalsyncError as exc:
            outcome = Failed(decision.href, str(exc), decision)
        if isinstance(outcome, Failed):
            failed.append(outcome)
        elif outcome is not None:
            written.append(outcome)
    return SyncReport(plan.occurrences, tuple(written), run.conflicts, tuple(failed), problems)
