"""Where Claude Code's transcripts are, and finding them (ahead, in a child process)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from calsync.sources import transcripts
from calsync.sources.transcripts import Listing, find_files, log_dirs


def test_claude_config_dir_lists_several_dirs_and_accepts_projects_dirs(tmp_path):
    home = tmp_path / "home"
    env = {"CLAUDE_CONFIG_DIR": f" {tmp_path}/a , ~/b/projects,{tmp_path}/a"}
    assert log_dirs(env, home) == [tmp_path / "a" / "projects", home / "b" / "projects"]


def test_without_claude_config_dir_the_defaults_are_like_claude_codes(tmp_path):
    home = tmp_path / "home"
    assert log_dirs({}, home) == [home / ".config/claude/projects", home / ".claude/projects"]
    xdg = {"XDG_CONFIG_HOME": str(tmp_path / "xdg")}
    assert log_dirs(xdg, home)[0] == tmp_path / "xdg/claude/projects"


def test_logs_given_explicitly_win_over_the_environment(tmp_path):
    env = {"CLAUDE_CONFIG_DIR": str(tmp_path / "env")}
    assert log_dirs(env, tmp_path, [tmp_path / "mine"]) == [tmp_path / "mine" / "projects"]


def test_find_files_includes_sub_agent_transcripts_and_nothing_else(tmp_path):
    projects = tmp_path / "projects"
    (projects / "-w-p" / "s1" / "subagents").mkdir(parents=True)
    for name in ("-w-p/s1.jsonl", "-w-p/s1/subagents/agent-a1.jsonl", "-w-p/notes.txt"):
        (projects / name).write_text("{}\n")
    found, problems = find_files([projects, tmp_path / "missing" / "projects"])
    assert sorted(Path(p).relative_to(projects).as_posix() for p, _ in found) == [
        "-w-p/s1.jsonl", "-w-p/s1/subagents/agent-a1.jsonl"]
    assert problems == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads every directory")
def test_an_unreadable_directory_is_reported_and_skipped(tmp_path):
    projects = tmp_path / "projects"
    (projects / "locked").mkdir(parents=True)
    (projects / "ok.jsonl").write_text("{}\n")
    (projects / "locked").chmod(0)
    try:
        found, problems = find_files([projects])
    finally:
        (projects / "locked").chmod(0o755)
    assert len(found) == 1
    assert problems and "locked" in problems[0]



def _tree(tmp_path: Path) -> Path:
    projects = tmp_path / "projects"
    for name in ("-w-p/s1.jsonl", "-w-p/s1/subagents/agent-a1.jsonl", "-w-q/s2.jsonl"):
        (projects / name).parent.mkdir(parents=True, exist_ok=True)
        (projects / name).write_text("{}\n")
    return projects


def test_a_listing_found_ahead_is_what_find_files_finds(tmp_path):
    projects = _tree(tmp_path)
    with Listing.ahead([projects]) as listing:
        found = listing.result()
        assert listing.result() is found                # found once
    assert found == find_files([projects])
    assert len(found[0]) == 3


def test_a_listing_not_asked_for_leaves_no_process_behind(tmp_path):
    listing = Listing.ahead([_tree(tmp_path)])
    child = listing._child
    listing.close()
    if child is not None:                               # Linux: the child was reaped
        with pytest.raises(ChildProcessError):
            os.waitpid(child[0], os.WNOHANG)


def test_a_listing_whose_child_fails_is_found_here(tmp_path, monkeypatch):
    projects = _tree(tmp_path)
    parent = os.getpid()
    real = transcripts.find_files

    def fails_in_the_child(dirs):
        if os.getpid() != parent:
            raise RuntimeError("the child fails")
        return real(dirs)

    monkeypatch.setattr(transcripts, "find_files", fails_in_the_child)
    with Listing.ahead([projects]) as listing:
        assert listing.result() == real([projects])


def test_a_listing_that_cannot_fork_is_found_when_asked_for(tmp_path, monkeypatch):
    projects = _tree(tmp_path)

    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    with Listing.ahead([projects]) as listing:
        assert listing.result() == find_files([projects])


def test_a_leading_tilde_is_home_from_the_environment_when_no_home_is_given(tmp_path):
    env = {"HOME": str(tmp_path / "me"), "CLAUDE_CONFIG_DIR": "~/cc"}
    assert log_dirs(env) == [tmp_path / "me" / "cc" / "projects"]


def test_finding_the_transcripts_imports_nothing_heavy():
    """`calsync usage` forks the listing before its heavy imports: this module must not
    bring them in."""
    import subprocess
    import sys

    code = ("import sys, calsync.sources.transcripts; "
            "print(sorted(m for m in ('msgspec', 'orjson', 'sqlite3', 'pydantic', "
            "'calsync.sources.claude_code') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
