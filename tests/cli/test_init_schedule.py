"""`calsync init` and `calsync schedule`, end to end."""

from __future__ import annotations

import configparser
import os
import plistlib
import select
import shlex
import subprocess
import sys
import time
from pathlib import Path

import keyring
import pytest

from calsync.cli import cli
from calsync.config import load_config


@pytest.fixture
def config_file(tmp_path):
    return tmp_path / "home" / ".config" / "calsync" / "config.toml"  # the platformdirs path


@pytest.fixture
def file_keyring(monkeypatch):
    """A real keyring backend that keeps passwords in a file under XDG_DATA_HOME."""
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyrings.alt.file.PlaintextKeyring")
    keyring.core.init_backend()
    yield
    monkeypatch.delenv("PYTHON_KEYRING_BACKEND")
    keyring.core.init_backend()


def one_line_error(result, text):
    assert result.exit_code == 2, result.output
    assert result.output.strip().splitlines() == [f"calsync: {text}"]
    assert result.exception is None or isinstance(result.exception, SystemExit)


# --- init ---------------------------------------------------------------------------------

def test_init_writes_a_config_that_loads(runner, config_file, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    result = runner.invoke(cli, [
        "init", "--calendar", "https://dav.example.com/cal/sessions/", "--username", "ada",
        "--password-command", "pass show dav", "--logs", "claude-logs",
        "--project", "calsync=src/calsync", "--project", "My App=/srv/my app"])
    assert result.exit_code == 0, result.output
    assert result.output == f"wrote {config_file}\n"
    settings = load_config(None, dict(os.environ))
    assert settings.calendar.url == "https://dav.example.com/cal/sessions/"
    assert settings.calendar.username == "ada"
    assert settings.calendar.password_command == "pass show dav"
    assert settings.usage.logs == (tmp_path / "claude-logs",)  # made absolute for cron
    assert settings.projects["calsync"].path == tmp_path / "src" / "calsync"
    assert settings.projects["My App"].path == Path("/srv/my app")


def test_init_makes_a_local_calendar_path_absolute(runner, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    target = tmp_path / "elsewhere.toml"
    result = runner.invoke(cli, ["--config", str(target), "init", "--calendar", "sessions.ics"])
    assert result.exit_code == 0, result.output
    assert load_config(target, {}).calendar.url == str(tmp_path / "sessions.ics")


def test_init_writes_where_calsync_config_points(runner, tmp_path, monkeypatch):
    target = tmp_path / "from-env.toml"
    monkeypatch.setenv("CALSYNC_CONFIG", str(target))
    assert runner.invoke(cli, ["init"]).exit_code == 0
    assert target.is_file()
    assert load_config(None, {"CALSYNC_CONFIG": str(target)}) == load_config(None, {})


def test_init_refuses_to_overwrite_without_force(runner, config_file):
    assert runner.invoke(cli, ["init", "--username", "first"]).exit_code == 0
    result = runner.invoke(cli, ["init", "--username", "second"])
    one_line_error(result, f"{config_file}: a config file is already there "
                           "(pass --force to replace it)")
    assert load_config(config_file, {}).calendar.username == "first"
    assert runner.invoke(cli, ["init", "--username", "second", "--force"]).exit_code == 0
    assert load_config(config_file, {}).calendar.username == "second"


def test_a_bad_project_flag_is_one_line(runner, config_file):
    one_line_error(runner.invoke(cli, ["init", "--project", "calsync"]),
                   "--project: expected NAME=PATH, got 'calsync'")
    assert not config_file.exists()


def test_store_password_keeps_it_in_the_keyring_and_out_of_the_file(
        runner, config_file, file_keyring):
    result = runner.invoke(cli, ["init", "--calendar", "https://dav.example.com/cal/",
                                 "--username", "ada", "--store-password"], input="s3cret pw\n")
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == ["stored the password of ada in the keyring",
                                          f"wrote {config_file}"]
    assert keyring.get_password("calsync", "ada") == "s3cret pw"
    assert "s3cret" not in config_file.read_text()


def test_store_password_takes_calsync_password_from_the_environment(
        runner, file_keyring, monkeypatch):
    monkeypatch.setenv("CALSYNC_PASSWORD", "from-env")
    result = runner.invoke(cli, ["init", "--username", "ada", "--store-password"])
    assert result.exit_code == 0, result.output
    assert keyring.get_password("calsync", "ada") == "from-env"


@pytest.mark.parametrize(("args", "stdin", "error"), [
    pytest.param(["--store-password"], "pw\n", "--username: --store-password needs a --username",
                 id="no-username"),
    pytest.param(["--username", "ada", "--store-password"], "",
                 "--store-password: no password to store: set CALSYNC_PASSWORD or pass it on "
                 "standard input", id="no-password"),
    pytest.param(["--username", "ada", "--store-password"], "pw\n",
                 "the keyring (Keyring) did not keep the password (use password_command or "
                 "CALSYNC_PASSWORD instead)", id="keyring-keeps-nothing"),
])
def test_store_password_problems_write_no_config(runner, config_file, args, stdin, error):
    keyring.core.init_backend()  # the test environment's null keyring
    one_line_error(runner.invoke(cli, ["init", *args], input=stdin), error)
    assert not config_file.exists()


def run_in_terminal(args: list[str], answers: str, timeout: float = 30.0) -> tuple[int, str]:
    """Run calsync with a pseudo-terminal as stdin/stdout, typing `answers`."""
    leader, follower = os.openpty()
    process = subprocess.Popen([sys.executable, "-m", "calsync", *args], stdin=follower,
                               stdout=follower, stderr=follower, env=dict(os.environ))
    os.close(follower)
    os.write(leader, answers.encode())
    output, deadline = b"", time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([leader], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(leader, 4096)
                except OSError:  # the child closed the terminal
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        return process.wait(timeout=5), output.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        os.close(leader)


def test_init_in_a_terminal_asks_for_what_the_flags_left_out(config_file, tmp_path):
    answers = "https://dav.example.com/cal/\nada\npass show dav\n\napi=/srv/api\nweb=/srv/web\n\n"
    code, output = run_in_terminal(["init"], answers)
    assert code == 0, output
    assert "CalDAV username" in output and "Password command" in output
    settings = load_config(config_file, {})
    assert (settings.calendar.url, settings.calendar.username, settings.calendar.password_command
            ) == ("https://dav.example.com/cal/", "ada", "pass show dav")
    assert {name: p.path for name, p in settings.projects.items()} == {
        "api": Path("/srv/api"), "web": Path("/srv/web")}
    assert settings.usage.logs == ()


def test_init_in_a_terminal_does_not_ask_what_the_flags_gave(config_file):
    code, output = run_in_terminal(
        ["init", "--calendar", "/tmp/cal.ics", "--logs", "/tmp/logs", "--project", "a=/a"], "")
    assert code == 0, output
    assert output.strip() == f"wrote {config_file}"  # no question asked
    assert load_config(config_file, {}).calendar.url == "/tmp/cal.ics"


# --- schedule -----------------------------------------------------------------------------

def schedule(runner, *args):
    result = runner.invoke(cli, [*args])
    assert result.exit_code == 0, result.output
    return result.output


def test_cron_line_runs_sync_quietly_every_15_minutes_into_a_log(runner, tmp_path):
    output = schedule(runner, "schedule", "--cron")
    entries = [line for line in output.splitlines() if line and not line.startswith("#")]
    assert len(entries) == 1
    fields = entries[0].split(None, 5)
    assert fields[:5] == ["*/15", "*", "*", "*", "*"]
    words = shlex.split(fields[5])
    executable = Path(words[0])
    assert executable.is_absolute() and os.access(executable, os.X_OK)
    assert words[1:] == ["sync", "--quiet", ">>", words[4], "2>&1"]
    log = Path(words[4])
    assert log.parent == tmp_path / "home" / ".local" / "state" / "calsync" / "log"
    assert log.parent.is_dir()  # created, so the first run can append to it
    assert "CALSYNC_CONFIG" not in output


def test_cron_line_sets_the_config_that_was_given(runner, tmp_path):
    config = tmp_path / "my 100% config.toml"
    config.write_text("")
    output = schedule(runner, "--config", str(config), "schedule", "--cron")
    entry = output.splitlines()[-1]
    assert "\\%" in entry  # cron would turn a bare % into a newline
    words = shlex.split(entry.split(None, 5)[5].replace("\\%", "%"))
    assert words[0] == f"CALSYNC_CONFIG={config}"


def test_systemd_units_are_a_user_service_and_timer(runner, tmp_path):
    config = tmp_path / "my config.toml"
    config.write_text("")
    script = schedule(runner, "--config", str(config), "schedule", "--systemd")
    units = tmp_path / "xdg"
    install = "\n".join(line for line in script.splitlines()
                        if not line.startswith("systemctl"))  # not on this machine
    subprocess.run(["sh", "-c", install], check=True,
                   env={**os.environ, "XDG_CONFIG_HOME": str(units)})
    parsed = {}
    for name in ("calsync.service", "calsync.timer"):
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        parser.optionxform = str  # systemd keys are case-sensitive
        parser.read_string((units / "systemd" / "user" / name).read_text())
        parsed[name] = parser
    service, timer = parsed["calsync.service"], parsed["calsync.timer"]
    assert service.sections() == ["Unit", "Service"]
    assert service["Service"]["Type"] == "oneshot"
    executable, *rest = shlex.split(service["Service"]["ExecStart"])
    assert Path(executable).is_absolute() and rest == ["sync", "--quiet"]
    assert shlex.split(service["Service"]["Environment"]) == [f"CALSYNC_CONFIG={config}"]
    assert timer.sections() == ["Unit", "Timer", "Install"]
    assert dict(timer["Timer"]) == {"OnCalendar": "*:0/15", "Persistent": "true"}
    assert timer["Install"]["WantedBy"] == "timers.target"
    assert "systemctl --user enable --now calsync.timer" in script
    assert "journalctl --user -u calsync.service" in script


def test_launchd_plist_runs_every_900_seconds_with_logs_in_library_logs(runner, tmp_path):
    plist = plistlib.loads(schedule(runner, "schedule", "--launchd").encode())
    assert plist["StartInterval"] == 900
    assert Path(plist["ProgramArguments"][0]).is_absolute()
    assert plist["ProgramArguments"][1:] == ["sync", "--quiet"]
    logs = tmp_path / "home" / "Library" / "Logs" / "calsync"
    assert Path(plist["StandardOutPath"]).parent == logs
    assert Path(plist["StandardErrorPath"]).parent == logs
    assert "EnvironmentVariables" not in plist


def test_launchd_plist_carries_calsync_config(runner, tmp_path, monkeypatch):
    config = tmp_path / "c.toml"
    config.write_text("")
    monkeypatch.setenv("CALSYNC_CONFIG", str(config))
    plist = plistlib.loads(schedule(runner, "schedule", "--launchd").encode())
    assert plist["EnvironmentVariables"] == {"CALSYNC_CONFIG": str(config)}


def test_schedule_needs_a_scheduler(runner):
    one_line_error(runner.invoke(cli, ["schedule"]),
                   "say which scheduler: --cron, --systemd or --launchd")


def test_schedule_refuses_a_config_that_is_not_there(runner, tmp_path):
    missing = tmp_path / "missing.toml"
    one_line_error(runner.invoke(cli, ["--config", str(missing), "schedule", "--cron"]),
                   f"{missing}: no such file (run `calsync init` first)")
