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
    assert sorted(found[0]) == sorted(find_files([projects])[0])
    assert len(found[0]) == 3
    assert found == Listing([projects]).result()        # in the same order, made here


def test_a_listing_not_asked_for_leaves_no_process_behind(tmp_path):
    listing = Listing.ahead([_tree(tmp_path)])
    children = list(listing._children.values())
    listing.close()
    for pid, _ in children:                             # Linux: each child was reaped
        with pytest.raises(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)


def test_a_listing_whose_child_fails_is_found_here(tmp_path, monkeypatch):
    projects = _tree(tmp_path)
    parent = os.getpid()
    real = transcripts.find_files

    def fails_in_the_child(dirs, share=(0, 1)):
        if os.getpid() != parent:
            raise RuntimeError("the child fails")
        return real(dirs, share)

    monkeypatch.setattr(transcripts, "find_files", fails_in_the_child)
    with Listing.ahead([projects]) as listing:
        assert sorted(listing.result()[0]) == sorted(real([projects])[0])


def test_a_listing_that_cannot_fork_is_found_when_asked_for(tmp_path, monkeypatch):
    projects = _tree(tmp_path)

    def no_fork():
        raise BlockingIOError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(os, "fork", no_fork)
    with Listing.ahead([projects]) as listing:
        assert sorted(listing.result()[0]) == sorted(find_files([projects])[0])


def test_shares_of_a_listing_are_disjoint_and_cover_every_file(tmp_path):
    projects = tmp_path / "projects"
    names = ["top.jsonl"] + [f"-w-{p}/s{i}.jsonl" for p in "abc" for i in range(20)] + [
        f"-w-a/s{i}/subagents/agent-{j}.jsonl" for i in range(0, 20, 3) for j in range(2)]
    for name in names:
        (projects / name).parent.mkdir(parents=True, exist_ok=True)
        (projects / name).write_text("{}\n")
    everything = sorted(path for path, _ in find_files([projects])[0])
    shares = [[path for path, _ in find_files([projects], (k, 3))[0]] for k in range(3)]
    listed = [path for share in shares for path in share]
    assert sorted(listed) == everything == sorted(str(projects / n) for n in names)
    assert all(shares)                                  # each share has some of the work
