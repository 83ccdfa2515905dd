"""The README stays true: every command is documented, every property is in the reference."""

from __future__ import annotations

from pathlib import Path

import pytest

from calsync.cli import cli
from calsync.properties import PROPERTIES

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")
COMMANDS = sorted(cli.commands)


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_has_help_with_an_example(runner, name):
    result = runner.invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert f"calsync {name}" in result.output, f"`calsync {name} --help` shows no example"


@pytest.mark.parametrize("name", COMMANDS)
def test_every_command_is_in_the_readme(name):
    assert f"calsync {name}" in README


@pytest.mark.parametrize("prop", [p.name for p in PROPERTIES])
def test_every_property_is_in_the_reference(prop):
    assert f"`{prop}`" in README


def test_readme_opens_with_the_two_commands():
    blocks = README.split("```")
    first, second = blocks[1], blocks[3]
    assert "pip install ." in first and "calsync " in first
    assert "pip install -e '.[test]'" in second and "pytest" in second
    ci = (Path(__file__).parent.parent / ".ci" / "run").read_text(encoding="utf-8")
    test_command = second.strip().splitlines()[-1].split("&&")[-1].strip()
    assert test_command in ci, f".ci/run does not run the README's test command {test_command!r}"
