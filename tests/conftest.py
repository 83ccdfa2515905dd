"""Shared fixtures: a clean environment for every test, and a CLI runner."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

pytest_plugins = ["tests.servers"]


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch, tmp_path):
    """No test reads the developer's own config, state, cache, password or Claude logs."""
    for name in ("CALSYNC_CONFIG", "CALSYNC_STATE_DIR", "CALSYNC_PASSWORD", "CLAUDE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(home / ".cache"))
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    monkeypatch.setenv("CALSYNC_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("CLAUDE_CONFIG_DIR", str(tmp_path / "no-claude-logs"))


@pytest.fixture
def runner():
    return CliRunner()
