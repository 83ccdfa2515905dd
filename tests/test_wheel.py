"""After a plain `pip install .` (a wheel), the presets ship and `calsync template` works.

The wheel is built from a copy of the files a wheel is made of (the shared working tree
gets no build/ folder), installed with --no-deps into a fresh virtual environment that
borrows this interpreter's site-packages for the dependencies only, and run from an empty
directory, so nothing can come from the checkout. About 10 to 20 seconds.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
SHIPPED = ("weekly.toml", "launch-6-weeks.toml", "session-types.toml", "README.md")

PROBE = """
import importlib.resources, sys
import calsync
from calsync import schedule_file
files = importlib.resources.files("calsync.templates")
print(calsync.__file__)
print(sorted(f.name for f in files.iterdir() if not f.name.startswith("__")))
print(schedule_file.list_presets())
print(schedule_file.load_preset("launch-6-weeks").phases[1].slots[1].session.budget.total)
"""


def _run(*args: str | Path, cwd: Path) -> str:
    done = subprocess.run([str(a) for a in args], cwd=cwd, capture_output=True, text=True,
                          timeout=240, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(python of a venv holding only the installed wheel, the wheel file)."""
    base = tmp_path_factory.mktemp("wheel")
    source = base / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in ("calsync", "templates"):
        shutil.copytree(ROOT / name, source / name, ignore=ignore)
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    _run(sys.executable, "-m", "pip", "wheel", source, "--no-deps", "-q", "-w", base / "dist",
         cwd=base)
    (wheel,) = (base / "dist").glob("calsync-*.whl")
    _run(sys.executable, "-m", "venv", "--without-pip", base / "venv", cwd=base)
    python = base / "venv" / "bin" / "python"
    _run(sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "-q", wheel,
         cwd=base)
    site = Path(_run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))",
                     cwd=base).strip())
    # dependencies (icalendar, pydantic, click...) from this environment; a plain path in a
    # .pth runs none of the .pth files there, so the editable calsync stays out of reach
    (site / "zz_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return python, wheel


def test_the_wheel_contains_the_templates(installed):
    _, wheel = installed
    names = set(zipfile.ZipFile(wheel).namelist())
    assert {f"calsync/templates/{name}" for name in SHIPPED} <= names


def test_an_installed_copy_loads_the_presets_with_importlib_resources(installed, tmp_path):
    python, _ = installed
    module, files, presets, budget = _run(python, "-c", PROBE, cwd=tmp_path).splitlines()
    assert str(python.parents[1]) in module and str(ROOT) not in module
    assert eval(files) == sorted(SHIPPED)
    assert eval(presets) == ["launch-6-weeks", "weekly"]
    assert budget == "200000"


def test_the_installed_command_writes_the_same_calendar(installed, tmp_path):
    python, _ = installed
    args = ["template", "--preset", "launch-6-weeks", "--project", "shop", "--start",
            "2026-12-07", "--tz", "Europe/Berlin", "--dtstamp", "2026-11-01T00:00:00Z"]
    _run(python, "-m", "calsync", *args, "-o", "installed.ics", cwd=tmp_path)
    from click.testing import CliRunner

    from calsync.cli import cli

    here = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert (tmp_path / "installed.ics").read_bytes() == here.stdout_bytes
    assert "Security Review" in _run(python, "-m", "calsync", "template", "--list", cwd=tmp_path)
