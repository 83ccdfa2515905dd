"""Benchmark `calsync usage` against ccusage's native binary on generated transcript corpora.

    python benchmarks/usage_bench.py                      # 100 MB and 1 GB, 3 runs each
    python benchmarks/usage_bench.py --sizes 100 --runs 5
    python benchmarks/usage_bench.py --ccusage /path/to/ccusage

Corpora are generated once under benchmarks/data/ (gitignored) by tests/logcorpus.py. For each
size, in the same run and interleaved so both see the same machine load. ccusage and the
cold calsync run take turns going first: on the 2-core VM of the README's figures, calsync
ran 8 to 12% slower right after ccusage than right before it (two series of 12 and 16
alternating pairs; ccusage moved -7% and +3.5%), so a fixed order would favour one of them.

- ccusage: `ccusage claude daily --json --offline -z UTC` (the native binary of ccusage 20,
  found as in tests/test_ccusage_agreement.py, or --ccusage);
- calsync cold: `calsync usage --json --tz UTC` with an empty state dir;
- calsync warm: the same again, nothing changed;
- calsync warm with a config file (`[usage] timezone = "UTC"`), validated once before the
  timed runs (calsync keeps what it needs of it, see calsync/usage_config.py; the cache is
  under benchmarks/.work, not yours);
- calsync after 1 MiB appended to one transcript (new calls), then the file is restored.

calsync's modules are byte-compiled first, as `pip install` leaves them (with
PYTHONDONTWRITEBYTECODE set and no compiled files, every run would compile calsync's source
again, about 30 ms of each warm run).

Each figure is the median of the runs (min-max in brackets): wall time, CPU time (user +
system, the process and the children it waited for) and peak RSS of the largest process.
The peak RSS of the whole process tree comes from one more run of each kind, sampled every
10 ms: sampling takes CPU on the same cores, so the timed runs are not sampled. The two
reports are checked to agree per date and model. Results also go to
benchmarks/.work/results.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.logcorpus import generate  # noqa: E402
from tests.test_ccusage_agreement import find_ccusage  # noqa: E402

DATA = ROOT / "benchmarks" / "data"
WORK = ROOT / "benchmarks" / ".work"
MIB = 1 << 20


def corpus(size_mb: int) -> Path:
    root = DATA / f"corpus-{size_mb}MB"
    if not (root / "projects").is_dir():
        print(f"generating {root} ...", file=sys.stderr)
        generate(root, seed=size_mb, target_bytes=size_mb * MIB, keep_calls=False, days=120)
    return root


def native(binary: str) -> str:
    """The native executable behind ccusage's node launcher, when there is one."""
    launcher = Path(binary).resolve()
    for candidate in launcher.parent.parent.parent.glob("@ccusage/ccusage-*/bin/ccusage"):
        return str(candidate)
    return binary


def _tree_rss(root_pid: int) -> int:
    """RSS in bytes of a process and all its descendants (read from /proc)."""
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        try:
            with open(f"/proc/{pid}/statm") as fh:
                total += int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
            for task in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{task}/children") as fh:
                    todo += [int(c) for c in fh.read().split()]
        except (OSError, ValueError):
            continue                    # it ended meanwhile
    return total


def run(cmd: list[str], env: dict[str, str], *, sample: bool = False) -> dict[str, Any]:
    """Wall time, CPU time and max RSS of one process; with `sample`, also the peak RSS of
    its process tree, read every 10 ms (which takes CPU from the process measured: timed
    runs are not sampled, memory comes from runs of their own); stdout kept."""
    out = tempfile.TemporaryFile()  # noqa: SIM115 (read back after the process ends)
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.DEVNULL, cwd=ROOT)
    peak = 0
    done = threading.Event()

    def watch() -> None:
        nonlocal peak
        while not done.is_set():
            peak = max(peak, _tree_rss(proc.pid))
            done.wait(0.01)

    sampler = threading.Thread(target=watch, daemon=True)
    if sample:
        sampler.start()
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - start
    done.set()
    if sample:
        sampler.join()
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{cmd[0]} failed with exit code {proc.returncode}")
    out.seek(0)
    return {"wall": wall, "cpu": usage.ru_utime + usage.ru_stime,
            "rss": usage.ru_maxrss * 1024, "tree_rss": peak, "stdout": out.read().decode()}


def daily_counts(stdout: str, *, ccusage: bool) -> dict[tuple[str, str], tuple[int, ...]]:
    data = json.loads(stdout)
    if ccusage:
        return {(d["date"], m["modelName"]): (m["inputTokens"], m["outputTokens"],
                                               m["cacheCreationTokens"], m["cacheReadTokens"])
                for d in data["daily"] for m in d["modelBreakdowns"]}
    return {(r["date"], r["model"]): (r["input_tokens"], r["output_tokens"],
                                      r["cache_creation_tokens"], r["cache_read_tokens"])
            for r in data}


def append_chunk(size: int, seed: int) -> bytes:
    """About `size` bytes of new transcript lines (fresh calls), cut at a line end."""
    with tempfile.TemporaryDirectory() as tmp:
        extra = generate(Path(tmp), seed=seed, target_bytes=size * 2, keep_calls=False, days=1)
        data = max(extra.files, key=lambda p: p.stat().st_size).read_bytes()
    return data[: data.rfind(b"\n", 0, size) + 1]


def bench(size_mb: int, runs: int, ccusage_bin: str) -> dict[str, Any]:
    root = corpus(size_mb)
    calsync = [sys.executable, "-m", "calsync", "usage", "--logs", str(root), "--json",
               "--tz", "UTC"]
    ccusage = [ccusage_bin, "claude", "daily", "--json", "--offline", "-z", "UTC"]
    base_env = {k: v for k, v in os.environ.items() if k != "CLAUDE_CONFIG_DIR"}
    state = WORK / f"state-{size_mb}"
    env = {**base_env, "CALSYNC_STATE_DIR": str(state), "NO_COLOR": "1",
           "XDG_CACHE_HOME": str(WORK / "cache")}
    env.pop("CALSYNC_CONFIG", None)
    config = WORK / "config.toml"
    config.write_text('[usage]\ntimezone = "UTC"\n')
    configured = {**env, "CALSYNC_CONFIG": str(config)}
    ccusage_env = {**base_env, "CLAUDE_CONFIG_DIR": str(root)}
    results: dict[str, list[dict[str, Any]]] = {"ccusage": [], "cold": [], "warm": [],
                                                 "warm_config": [], "append_1mib": []}
    peak: dict[str, int] = {}

    def peer() -> None:
        results["ccusage"].append(run(ccusage, ccusage_env))

    def cold() -> None:
        shutil.rmtree(state, ignore_errors=True)
        results["cold"].append(run(calsync, env))

    for i in range(runs):               # interleaved, each going first in turn
        for step in (peer, cold) if i % 2 == 0 else (cold, peer):
            step()
    agree = (daily_counts(results["cold"][-1]["stdout"], ccusage=False)
             == daily_counts(results["ccusage"][-1]["stdout"], ccusage=True))
    peak["ccusage"] = run(ccusage, ccusage_env, sample=True)["tree_rss"]
    shutil.rmtree(state, ignore_errors=True)
    peak["cold"] = run(calsync, env, sample=True)["tree_rss"]

    def unchanged(name: str, run_env: dict[str, str]) -> None:
        """`runs` timed warm runs, then one for memory."""
        for _ in range(runs):
            results[name].append(run(calsync, run_env))
        peak[name] = run(calsync, run_env, sample=True)["tree_rss"]

    unchanged("warm", env)
    run(calsync, configured)                    # validates the config file once
    unchanged("warm_config", configured)
    target = max(root.glob("projects/*/*.jsonl"), key=lambda p: p.stat().st_size)
    original = target.stat().st_size
    try:
        for i in range(runs + 1):               # the last one for memory
            with target.open("ab") as fh:
                fh.write(append_chunk(MIB, seed=10_000 + i))
            res = run(calsync, env, sample=i == runs)
            if i < runs:
                results["append_1mib"].append(res)
            else:
                peak["append_1mib"] = res["tree_rss"]
    finally:
        os.truncate(target, original)
    shutil.rmtree(state, ignore_errors=True)
    summary: dict[str, Any] = {"size_mb": size_mb, "agree": agree}
    for name, rows in results.items():
        summary[name] = {k: [r[k] for r in rows] for k in ("wall", "cpu", "rss")}
        summary[name]["tree_rss"] = [peak[name]]
    return summary


def _fmt(values: list[float], unit: str) -> str:
    med = statistics.median(values)
    scale, suffix = (1 / MIB, " MB") if unit == "bytes" else (1, " s")
    span = f" [{min(values) * scale:.2f}-{max(values) * scale:.2f}]" if len(values) > 1 else ""
    if unit == "bytes":
        return f"{med * scale:.0f}{suffix}"
    return f"{med * scale:.2f}{suffix}{span}"


def report(summaries: list[dict[str, object]]) -> str:
    lines = ["| corpus | run | wall (median [min-max]) | CPU | max RSS (one process) | "
             "peak RSS (process tree) | vs ccusage wall |",
             "|---|---|---|---|---|---|---|"]
    for s in summaries:
        base = statistics.median(s["ccusage"]["wall"])  # type: ignore[index]
        for name in ("ccusage", "cold", "warm", "warm_config", "append_1mib"):
            r = s[name]  # type: ignore[index]
            ratio = statistics.median(r["wall"]) / base
            label = {"ccusage": "ccusage 20 (native)", "cold": "calsync cold",
                     "warm": "calsync warm", "warm_config": "calsync warm, config file",
                     "append_1mib": "calsync +1 MiB"}[name]
            lines.append(f"| {s['size_mb']} MB | {label} | {_fmt(r['wall'], 's')} | "
                         f"{_fmt(r['cpu'], 's')} | {_fmt(r['rss'], 'bytes')} | "
                         f"{_fmt(r['tree_rss'], 'bytes')} | {ratio:.2f}x |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100,1024", help="corpus sizes in MB")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--ccusage", help="a ccusage 20 binary (default: as the tests find it)")
    args = parser.parse_args()
    binary = args.ccusage or find_ccusage()
    if binary is None:
        raise SystemExit("ccusage not found: run .ci/run, or pass --ccusage")
    binary = native(binary)
    WORK.mkdir(parents=True, exist_ok=True)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "calsync")],
                   check=True)
    load_before = os.getloadavg()
    summaries = [bench(int(size), args.runs, binary) for size in args.sizes.split(",")]
    load_after = os.getloadavg()
    print(f"machine: {os.cpu_count()} cores, {platform.platform()}, Python "
          f"{platform.python_version()}; load average {load_before[0]:.2f} before, "
          f"{load_after[0]:.2f} after; ccusage: {binary}")
    for s in summaries:
        print(f"{s['size_mb']} MB: calsync and ccusage agree per date and model: {s['agree']}")
    print(report(summaries))
    (WORK / "results.json").write_text(json.dumps(
        {"load": [load_before, load_after], "results": summaries}, indent=2))


if __name__ == "__main__":
    main()
