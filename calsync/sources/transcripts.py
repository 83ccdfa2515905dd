"""Where Claude Code's transcripts are, and what files they are (no parsing here).

- `log_dirs(env, home, logs)`: the `projects` directories, like Claude Code finds them:
  every directory of `CLAUDE_CONFIG_DIR` (comma-separated) when set, else `~/.config/claude`
  and `~/.claude`; `--logs` or the config's `usage.logs` instead when given.
- `find_files(projects_dirs)`: every `*.jsonl` below them, sub-agent transcripts included,
  with the stat the ledger compares; or one share of them.
- `Listing`: `find_files` in child processes, a share each, while the caller imports and
  loads its config.

A module of its own, with only the standard library: `calsync usage` imports it first and
forks the listing before it imports anything heavy (the child starts sooner, and a smaller
process forks faster).
"""

from __future__ import annotations

import contextlib
import marshal
import os
import signal
import sys
import zlib
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path


def _expand(raw: str, home: Path) -> Path:
    if raw == "~" or raw.startswith(("~/", "~\\")):
        return home / raw[2:] if len(raw) > 1 else home
    return Path(raw)


def log_dirs(env: Mapping[str, str], home: Path | None = None,
             logs: Sequence[Path | str] = ()) -> list[Path]:
    """The `projects` directories to read, existing or not, in order and without repeats.

    `logs` (the --logs flag or the config's `usage.logs`) wins over CLAUDE_CONFIG_DIR, which
    wins over Claude Code's defaults. Each entry may be a config dir or its `projects` dir.
    A leading `~` is `home` (default: HOME in `env`, else the user's home).
    """
    if home is None:
        home = Path(env.get("HOME") or Path.home())
    if logs:
        raw = [str(p) for p in logs]
    elif env.get("CLAUDE_CONFIG_DIR", "").strip():
        raw = [p.strip() for p in env["CLAUDE_CONFIG_DIR"].split(",") if p.strip()]
    else:
        xdg = env.get("XDG_CONFIG_HOME") or str(home / ".config")
        raw = [str(Path(xdg) / "claude"), str(home / ".claude")]
    out: list[Path] = []
    for entry in raw:
        path = Path(os.path.abspath(_expand(entry, home)))
        projects = path if path.name == "projects" else path / "projects"
        if projects not in out:
            out.append(projects)
    return out


FileStat = tuple[int, int, int, int]   # (device, inode, size, mtime_ns): what the ledger
                                       # compares (a stat_result weighs more)


def find_files(projects_dirs: Iterable[Path], share: tuple[int, int] = (0, 1)
               ) -> tuple[list[tuple[str, FileStat]], list[str]]:
    """Every `*.jsonl` under the directories (in no particular order), with its stat; and
    the directories that could not be read.

    `share=(k, n)`: only the k-th of n disjoint shares of the files, cut by a hash of the
    names one level down (`projects/<project>/<name>`: a session's transcript, or its
    directory with its sub-agents), so that n processes can walk the tree together.
    """
    k, n = share
    found: list[tuple[str, FileStat]] = []
    problems: list[str] = []
    stack = [(str(d), 0) for d in projects_dirs if d.is_dir()]
    while stack:
        top, depth = stack.pop()
        try:
            with os.scandir(top) as it:
                entries = list(it)
        except OSError as exc:
            problems.append(f"{top}: cannot read the directory ({exc.strerror})")
            continue
        cut = n > 1 and depth <= 1          # the shares are cut among these entries
        for entry in entries:
            try:
                name = entry.name
                if name.endswith(".jsonl"):
                    if (not cut or _share(name, n) == k) and entry.is_file():
                        st = entry.stat()
                        found.append((entry.path, (st.st_dev, st.st_ino, st.st_size,
                                                   st.st_mtime_ns)))
                elif entry.is_dir(follow_symlinks=False) and (
                        not cut or depth == 0 or _share(name, n) == k):  # every share
                    stack.append((entry.path, depth + 1))                # walks the projects
            except OSError:
                continue  # vanished while we looked: it is simply not there
    return found, problems


def _share(name: str, shares: int) -> int:
    return zlib.crc32(name.encode()) % shares


SHARES = 2      # a listing is made in this many shares (`find_files`), so in as many children


class Listing:
    """`find_files(dirs)`, found in child processes while the caller goes on.

    A run spends a tenth of a second or more stat-ing thousands of transcripts, and about as
    long importing and reading its configuration; on Linux, `ahead` forks SHARES children
    that walk a share of the tree each meanwhile (a fork is cheap before the heavy imports).
    `result()` takes what they found, and walks in this process the shares it has no child
    for (other systems), or whose child failed. The files come share by share, so a listing
    lists the same files in the same order however it was made. A Listing not asked for
    stops its children on `close()`.
    """

    def __init__(self, dirs: Iterable[Path]) -> None:
        self.dirs = list(dirs)
        self._children: dict[int, tuple[int, int]] = {}   # share: (pid, read end of its pipe)
        self._found: tuple[list[tuple[str, FileStat]], list[str]] | None = None

    @classmethod
    def ahead(cls, dirs: Iterable[Path]) -> Listing:
        listing = cls(dirs)
        if sys.platform == "linux":
            with contextlib.suppress(OSError):  # no process to spare: found when asked for
                for share in range(SHARES):
                    listing._fork(share)
        return listing

    def _fork(self, share: int) -> None:
        read, write = os.pipe()
        try:
            pid = os.fork()
        except OSError:
            os.close(read)
            os.close(write)
            raise
        if pid == 0:                                    # the child: walk, send, vanish
            code = 1
            try:
                os.close(read)
                data = marshal.dumps(find_files(self.dirs, (share, SHARES)))
                with os.fdopen(write, "wb") as pipe:
                    pipe.write(data)
                code = 0
            finally:
                os._exit(code)
        os.close(write)
        self._children[share] = (pid, read)

    @property
    def pending(self) -> bool:
        """Children are still finding the files."""
        return bool(self._children)

    def result(self) -> tuple[list[tuple[str, FileStat]], list[str]]:
        if self._found is None:
            found: list[tuple[str, FileStat]] = []
            problems: list[str] = []
            for share in range(SHARES):
                part = self._take(share) or find_files(self.dirs, (share, SHARES))
                found += part[0]
                problems += [p for p in part[1] if p not in problems]   # seen by each share
            self._found = found, problems
        return self._found

    def _take(self, share: int) -> tuple[list[tuple[str, FileStat]], list[str]] | None:
        """What the share's child found; None when there is no child or it failed."""
        child = self._children.pop(share, None)
        if child is None:
            return None
        pid, read = child
        with os.fdopen(read, "rb") as pipe:
            data = pipe.read()
        _, status = os.waitpid(pid, 0)
        return marshal.loads(data) if status == 0 else None

    def close(self) -> None:
        while self._children:               # not asked for (the command failed): stop them
            pid, read = self._children.popitem()[1]
            os.close(read)
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)

    def __enter__(self) -> Listing:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
