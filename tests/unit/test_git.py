"""Git statistics from real repositories made in tmp_path, with commits at set dates."""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from calsync.model import GitStats
from calsync.sources.git import git_stats, load_commits, stats_in

START = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
END = START + timedelta(hours=2)


class Repo:
    def __init__(self, path: Path) -> None:
        self.path = path
        path.mkdir(parents=True, exist_ok=True)
        self.git("init", "-q", "-b", "main")

    def git(self, *args: str, when: datetime | None = None,
            committed: datetime | None = None) -> str:
        env = {**os.environ, "GIT_AUTHOR_NAME": "Ada", "GIT_AUTHOR_EMAIL": "ada@example.com",
               "GIT_COMMITTER_NAME": "Ada", "GIT_COMMITTER_EMAIL": "ada@example.com",
               "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_NOSYSTEM": "1"}
        if when is not None:
            env["GIT_AUTHOR_DATE"] = when.isoformat()
            env["GIT_COMMITTER_DATE"] = (committed or when).isoformat()
        return subprocess.run(["git", "-C", str(self.path), *args], env=env, check=True,
                              capture_output=True, text=True).stdout

    def commit(self, when: datetime, files: dict[str, str | bytes],
               committed: datetime | None = None) -> None:
        for name, content in files.items():
            target = self.path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(content, bytes):
                target.write_bytes(content)
            else:
                target.write_text(content)
        self.git("add", "-A")
        self.git("commit", "-q", "--allow-empty", "-m", f"at {when}", when=when,
                 committed=committed)


@pytest.fixture
def repo(tmp_path):
    return Repo(tmp_path / "project")


def stats(repo: Repo, start: datetime = START, end: datetime = END) -> GitStats | None:
    return git_stats(repo.path, start, end)


def test_commits_files_and_lines_inside_the_window(repo):
    repo.commit(START - timedelta(hours=1), {"a.py": "1\n2\n3\n"})   # before: not counted
    repo.commit(START + timedelta(minutes=10), {"a.py": "1\n2\nthree\n4\n", "b.py": "x\n"})
    repo.commit(START + timedelta(minutes=50), {"b.py": "x\ny\n"})
    repo.commit(END, {"c.py": "late\n"})                               # at the end: not counted
    assert stats(repo) == GitStats(commits=2, files_changed=2, lines_added=4, lines_removed=1)


def test_a_window_without_commits_has_zeros(repo):
    repo.commit(START - timedelta(days=3), {"a.py": "1\n"})
    assert stats(repo) == GitStats()


def test_a_binary_file_counts_as_changed_with_no_lines(repo):
    repo.commit(START + timedelta(minutes=5), {"logo.png": b"\x89PNG\x00\x01\x02", "a.txt": "a\n"})
    assert stats(repo) == GitStats(commits=1, files_changed=2, lines_added=1, lines_removed=0)


def test_a_rename_counts_its_new_path_once_with_the_lines_really_changed(repo):
    body = "".join(f"line {i}\n" for i in range(40))
    repo.commit(START - timedelta(days=1), {"old name.py": body})
    (repo.path / "old name.py").rename(repo.path / "new name.py")
    repo.commit(START + timedelta(minutes=5), {"new name.py": body + "one more\n"})
    assert stats(repo) == GitStats(commits=1, files_changed=1, lines_added=1, lines_removed=0)


def test_commits_on_other_local_branches_count(repo):
    repo.commit(START - timedelta(days=1), {"a.py": "1\n"})
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit(START + timedelta(minutes=5), {"feature.py": "f\n"})
    repo.git("checkout", "-q", "main")
    assert stats(repo) == GitStats(commits=1, files_changed=1, lines_added=1, lines_removed=0)


def test_the_author_date_decides_so_a_later_rebase_keeps_the_session_commits(repo):
    repo.commit(START + timedelta(minutes=5), {"a.py": "1\n"},
                committed=START + timedelta(days=2))
    repo.commit(START - timedelta(days=30), {"b.py": "cherry-picked\n"},
                committed=START + timedelta(minutes=30))
    assert stats(repo) == GitStats(commits=1, files_changed=1, lines_added=1, lines_removed=0)


def test_one_git_call_serves_every_window(repo):
    for hour in range(6):
        repo.commit(START + timedelta(hours=hour, minutes=1), {f"f{hour}.py": "x\n" * hour})
    commits = load_commits(repo.path, START)
    assert [stats_in(commits, START + timedelta(hours=h), START + timedelta(hours=h + 2))
            .lines_added for h in range(0, 6, 2)] == [1, 5, 9]


def test_an_empty_repository_has_zeros(repo):
    assert stats(repo) == GitStats()


@pytest.mark.parametrize("name", ["a; touch pwned", "$(touch pwned)", "it's \"quoted\""])
def test_paths_reach_git_as_arguments_never_through_a_shell(tmp_path, name):
    repo = Repo(tmp_path / name)
    repo.commit(START + timedelta(minutes=1), {"a.py": "1\n"})
    assert stats(repo) == GitStats(commits=1, files_changed=1, lines_added=1, lines_removed=0)
    assert not list(tmp_path.rglob("pwned")) and not Path("pwned").exists()


def warnings_for(path: Path) -> tuple[GitStats | None, list[str]]:
    said: list[str] = []
    return git_stats(path, START, END, warn=said.append), said


def test_a_missing_repository_is_a_warning_naming_it(tmp_path):
    result, said = warnings_for(tmp_path / "gone")
    assert result is None
    assert said == [f"{tmp_path / 'gone'}: no such directory; no git statistics for this project"]


def test_a_directory_that_is_not_a_repository_is_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("GIT_CEILING_DIRECTORIES", str(tmp_path))
    (tmp_path / "plain").mkdir()
    result, said = warnings_for(tmp_path / "plain")
    assert result is None
    assert len(said) == 1 and said[0].startswith(f"{tmp_path / 'plain'}: not a git repository")


def test_no_git_installed_is_a_warning(repo, monkeypatch, tmp_path):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    result, said = warnings_for(repo.path)
    assert result is None
    assert said == [f"{repo.path}: git is not installed; no git statistics"]
