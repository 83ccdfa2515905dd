"""The import rule of the house style, and the public API.

The pure core (planning, attribution, parsing, template generation) imports no I/O library, so
it stays fast to import and easy to test; the CLI module imports nothing heavy at start-up, so
`calsync --help` and the Claude Code hooks start fast.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

import calsync

PURE_MODULES = [
    "calsync.model",
    "calsync.errors",
    "calsync.properties",
    "calsync.description",
    "calsync.codec",
    "calsync.recurrence",
    "calsync.calendar_reader",
    "calsync.attribution",
    "calsync.weekly",
    "calsync.planner",
    "calsync.usage",
    "calsync.pricing",
    "calsync.scheduling",
    "calsync.icsblocks",
    "calsync.records",
]
# click is not listed: recurring-ical-events imports it for its own command line.
IO_LIBRARIES = ["caldav", "httpx", "rich", "sqlite3", "keyring", "niquests", "requests"]


def _modules_after_import(module: str) -> set[str]:
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {name.split(".")[0] for name in out.stdout.split()}


@pytest.mark.parametrize("module", PURE_MODULES)
def test_pure_core_imports_no_io_library(module):
    loaded = _modules_after_import(module)
    assert not loaded & set(IO_LIBRARIES), f"{module} pulls in {sorted(loaded & set(IO_LIBRARIES))}"


def test_cli_start_up_imports_nothing_heavy():
    loaded = _modules_after_import("calsync.cli")
    # pydantic is allowed: the models are the package's API and every command needs them.
    heavy = {"caldav", "httpx", "rich", "icalendar", "recurring_ical_events", "keyring",
             "niquests", "requests", "sqlite3"}
    assert not loaded & heavy, f"`calsync --help` imports {sorted(loaded & heavy)}"


def test_the_usage_path_does_not_load_the_calendar_models():
    # `calsync usage` runs from cron and hooks: it needs the config and the records, not
    # the models of events and occurrences (pydantic it needs only with a config file:
    # tests/test_usage_cli.py checks a run without one never imports it).
    code = ("import sys, calsync.cli, calsync.config, calsync.ledger, calsync.output; "
            "print(sorted(m for m in sys.modules if m.startswith('calsync.model')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_the_ledger_imports_the_scanners_only_to_write():
    # A warm `calsync usage` reads nothing: it needs neither the scanners nor msgspec/orjson.
    loaded = _modules_after_import("calsync.ledger")
    assert not loaded & {"msgspec", "orjson", "pydantic"}


def test_all_names_the_public_api():
    assert sorted(calsync.__all__) == sorted(
        name for name in dir(calsync) if not name.startswith("_") or name == "__version__"
        if name not in {"annotations"} and not _is_submodule(name)
    )
    for name in calsync.__all__:
        assert getattr(calsync, name) is not None


def _is_submodule(name: str) -> bool:
    return type(getattr(calsync, name)).__name__ == "module"
