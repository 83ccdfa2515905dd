"""Git statistics of a project's repository during a session (I/O: runs `git`).

`load_commits(repo, since)` runs one `git log` (an argument list, never a shell) and
`stats_in(commits, start, end)` (pure) counts what was authored in a window, so a sync
asks git once per project, not once per occurrence. `git_stats` is both in one call.

What counts:
- commits of any local branch whose *author* date lies in [start, end). The author date
  survives a rebase or an amend, so a session keeps its commits when history is tidied
  later; a cherry-pick of older work does not count. Merges count as commits and change
  no lines (git shows no diff for them);
- files changed: distinct paths over those commits (a rename counts its new path once);
  a binary file counts as changed with 0 lines;
- lines added and removed: the sums of `--numstat`.

A missing repository, a directory that is not one, or no `git` at all is not an error:
the function returns None and hands a one-line warning naming the path to `warn`.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from ..model import GitStats

Runner = Callable[..., "subprocess.CompletedProcess[str]"]
Warn = Callable[[str], None]

_TIMEOUT_SECONDS = 60
_COMMIT = "\x1e"  # record separator, printed before each commit by --format


@dataclass(frozen=True, slots=True)
class FileChange:
    path: str
    added: int     # 0 for a binary file
    removed: int


@dataclass(frozen=True, slots=True)
class Commit:
    sha: str
    authored_at: datetime
    changes: tuple[FileChange, ...] = ()


def _ignore(_: str) -> None:
    return None


def _git_log_args(repo: Path, since: datetime) -> list[str]:
    return [
        "git", "-C", str(repo), "-c", "log.showSignature=false", "log", "--branches",
        f"--since={since.astimezone(UTC).isoformat()}", "--numstat", "-z", "-M",
        "--no-color", "--no-ext-diff", f"--format={_COMMIT}%H %at",
    ]


def load_commits(
    repo: Path, since: datetime, *, run: Runner = subprocess.run, warn: Warn = _ignore,
) -> list[Commit] | None:
    """Commits of the repository's local branches committed since `since` (None: no repo)."""
    if not repo.is_dir():
        warn(f"{repo}: no such directory; no git statistics for this project")
        return None
    try:
        done = run(_git_log_args(repo, since), capture_output=True, text=True,
                   encoding="utf-8", errors="surrogateescape", timeout=_TIMEOUT_SECONDS,
                   check=False)
    except FileNotFoundError:
        warn(f"{repo}: git is not installed; no git statistics")
        return None
    except subprocess.TimeoutExpired:
        warn(f"{repo}: git log took longer than {_TIMEOUT_SECONDS} s; no git statistics")
        return None
    if done.returncode != 0:
        reason = (done.stderr.strip().splitlines() or [f"exit code {done.returncode}"])[-1]
        warn(f"{repo}: {reason.removeprefix('fatal: ')}; no git statistics")
        return None
    return parse_log(done.stdout)


def parse_log(output: str) -> list[Commit]:
    """Commits from `git log -z --numstat --format=<RS>%H %at` output (pure)."""
    commits = []
    for chunk in output.split(_COMMIT)[1:]:
        header, _, body = chunk.partition("\0")
        sha, _, stamp = header.strip().partition(" ")
        commits.append(Commit(sha, datetime.fromtimestamp(int(stamp), UTC),
                              tuple(_numstat(body.lstrip("\n").split("\0")))))
    return commits


def _numstat(tokens: Sequence[str]) -> Iterator[FileChange]:
    """`added TAB removed TAB path`, or for a rename `added TAB removed TAB` old new."""
    items = iter(tokens)
    for token in items:
        if not token:
            continue
        added, removed, path = token.split("\t", 2)
        if not path:  # a rename or copy: the old and the new path follow
            next(items, "")
            path = next(items, "")
        yield FileChange(path, _count(added), _count(removed))


def _count(text: str) -> int:
    return 0 if text == "-" else int(text)


def stats_in(commits: Sequence[Commit], start: datetime, end: datetime) -> GitStats:
    """What was authored in [start, end) (pure)."""
    inside = [c for c in commits if start <= c.authored_at < end]
    changes = [change for commit in inside for change in commit.changes]
    return GitStats(
        commits=len(inside),
        files_changed=len({change.path for change in changes}),
        lines_added=sum(change.added for change in changes),
        lines_removed=sum(change.removed for change in changes),
    )


def git_stats(
    repo: Path, start: datetime, end: datetime, *, run: Runner = subprocess.run,
    warn: Warn = _ignore,
) -> GitStats | None:
    """Commits, files and lines authored in the repository in [start, end); None: no repo."""
    commits = load_commits(repo, start, run=run, warn=warn)
    return None if commits is None else stats_in(commits, start, end)
