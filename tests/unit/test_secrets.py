"""Where the CalDAV password comes from, and that it never shows."""

from __future__ import annotations

import shlex
import sys
from collections.abc import Iterator

import keyring
import pytest
from keyring.backend import KeyringBackend

from calsync.config import parse_config
from calsync.errors import ConfigError
from calsync.secrets import get_password


def python_command(code: str) -> str:
    """A password_command running `code` with this interpreter (no shell involved)."""
    return shlex.join([sys.executable, "-c", code])


def settings(username: str | None = "alice", command: str | None = None):  # type: ignore[no-untyped-def]
    lines = ["[calendar]"]
    if username:
        lines.append(f"username = {username!r}")
    if command:
        lines.append(f"password_command = '''{command}'''")
    return parse_config("\n".join(lines))


class DictKeyring(KeyringBackend):
    """A working in-memory keyring, as a desktop session would have."""

    priority = 1

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.passwords: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.passwords.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.passwords[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        del self.passwords[(service, username)]


class BrokenKeyring(DictKeyring):
    """A keyring that fails the way one does under cron (no D-Bus session)."""

    def get_password(self, service: str, username: str) -> str | None:
        raise keyring.errors.KeyringError("org.freedesktop.DBus.Error.ServiceUnknown")


@pytest.fixture
def use_keyring() -> Iterator[type]:
    previous = keyring.get_keyring()

    def install(backend: KeyringBackend) -> KeyringBackend:
        keyring.set_keyring(backend)
        return backend

    yield install  # type: ignore[misc]
    keyring.set_keyring(previous)


def test_the_environment_wins_and_nothing_runs() -> None:
    fails_if_run = python_command("import sys; sys.exit(1)")
    env = {"CALSYNC_PASSWORD": "from-env"}
    assert get_password(settings(command=fails_if_run), env) == "from-env"


def test_the_first_line_of_the_password_command() -> None:
    command = python_command("print('pw'); print('not this line')")
    assert get_password(settings(command=command), {}) == "pw"


def test_the_password_command_runs_without_a_shell() -> None:
    command = python_command("import sys; print(sys.argv[1])") + " '$HOME; echo injected'"
    assert get_password(settings(command=command), {}) == "$HOME; echo injected"


def test_a_failing_command_names_it_and_hides_its_output(
    capsys: pytest.CaptureFixture[str],
) -> None:
    command = python_command("import sys; print('hunter' + '2'); "
                             "print('oo' + 'ps', file=sys.stderr); sys.exit(3)")
    with pytest.raises(ConfigError) as info:
        get_password(settings(command=command), {})
    message = str(info.value)
    assert message.startswith(f"calendar.password_command: the command {command} failed with "
                              "exit status 3")
    assert "hunter2" not in message and "oops" not in message
    assert capsys.readouterr() == ("", "")


@pytest.mark.parametrize(("command", "expected"), [
    ("/no/such/program --flag", "no such program '/no/such/program'"),
    ("'unbalanced", "cannot split"),
    (python_command("pass"), "printed no password"),
], ids=["missing-program", "bad-quoting", "no-output"])
def test_a_command_that_cannot_give_a_password(command: str, expected: str) -> None:
    with pytest.raises(ConfigError, match=expected):
        get_password(settings(command=command), {})


def test_null_keyring_means_no_password() -> None:
    # tests/conftest.py selects keyring's null backend, as on a machine without one
    assert get_password(settings(), {}) is None


def test_the_keyring_is_asked_for_the_username(use_keyring) -> None:  # type: ignore[no-untyped-def]
    ring = use_keyring(DictKeyring())
    ring.set_password("calsync", "alice", "from-keyring")
    assert get_password(settings(), {}) == "from-keyring"
    assert get_password(settings(username="bob"), {}) is None


def test_a_broken_keyring_means_no_password(use_keyring) -> None:  # type: ignore[no-untyped-def]
    use_keyring(BrokenKeyring())
    assert get_password(settings(), {}) is None
