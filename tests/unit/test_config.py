"""Config: every problem reported with its key, file and line; the written config reads back."""

from __future__ import annotations

import re
import stat
from pathlib import Path

import keyring
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from calsync.config import (
    CalendarSettings,
    ProjectSettings,
    Settings,
    UsageSettings,
    load_config,
    parse_config,
    render_config,
    store_password,
    write_config,
)
from calsync.errors import ConfigError

EXAMPLE = Path(__file__).parents[2] / "examples" / "config.toml"


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        parse_config(text, "cfg.toml")
    message = str(caught.value)
    assert "\n" not in message
    return message.split("; ")


# --- reading ------------------------------------------------------------------------------

def test_the_example_config_is_accepted_and_says_what_it_sets():
    settings = parse_config(EXAMPLE.read_text(), str(EXAMPLE))
    assert settings.calendar.url == "https://dav.example.com/calendars/me/sessions/"
    assert settings.projects["marketplace"].paths[1] == "~/worktrees/marketplace"
    assert settings.prices["my-finetuned-sonnet"]["output"] == 15.0


def test_the_example_config_shows_every_setting():
    text = EXAMPLE.read_text()
    keys = [*(name for name in Settings.model_fields if name not in {"calendar", "usage", "sync",
                                                                      "projects", "prices"}),
            *CalendarSettings.model_fields, *UsageSettings.model_fields,
            *type(Settings().sync).model_fields, *ProjectSettings.model_fields]
    assert [key for key in keys if not re.search(rf"^(# )?{key} = ", text, re.M)] == []
    assert "[projects." in text and "[prices." in text


def test_every_invalid_key_is_reported_with_its_line_in_one_error():
    text = (
        "[calendar]\n"                      # 1
        "url = 3\n"                         # 2
        "auth = \"kerberos\"\n"             # 3
        "\n"
        "[projects.api]\n"                  # 5
        "path = \"/src/api\"\n"             # 6
        "\n"
        "[projects.web]\n"                  # 8
        "paht = \"/src/web\"\n"             # 9: a typo
        "paths = [\"/ok\", 7]\n"            # 10
        "\n"
        "[sync]\n"                          # 12
        "window_days = 0\n"                 # 13
    )
    assert problems(text) == [
        "cfg.toml:2: calendar.url: Input should be a valid string",
        "cfg.toml:3: calendar.auth: Input should be 'auto', 'basic' or 'digest'",
        "cfg.toml:13: sync.window_days: Input should be greater than or equal to 1",
        "cfg.toml:10: projects.web.paths.1: Input should be a valid string",
        "cfg.toml:9: projects.web.paht: unknown key",
    ]


@pytest.mark.parametrize(("text", "expected"), [
    pytest.param('bogus = 1\n', "cfg.toml:1: bogus: unknown key", id="top-level"),
    pytest.param('[calendar]\ntimeout_seconds = -1\n',
                 "cfg.toml:2: calendar.timeout_seconds: Input should be greater than 0",
                 id="range"),
    pytest.param('[projects."my.app"]\npath = 3\n',
                 'cfg.toml:2: projects."my.app".path: Input is not a valid path for '
                 "<class 'pathlib.Path'>", id="quoted-table-name"),
    pytest.param('calendar.verify_tls = "yes please"\n',
                 "cfg.toml:1: calendar.verify_tls: Input should be a valid boolean, unable to "
                 "interpret input", id="dotted-key"),
    pytest.param('[usage]\n\n\ncount_cache_reads = 1 = 2\n',
                 "cfg.toml:4: not valid TOML: Expected newline or end of document after a "
                 "statement (column 23)", id="toml-syntax"),
    pytest.param('[prices.m]\ninput = 1\n', None, id="prices-checked-when-used"),
])
def test_a_single_problem_names_file_line_and_key(text, expected):
    if expected is None:
        assert parse_config(text).prices == {"m": {"input": 1}}
    else:
        assert problems(text) == [expected]


def test_a_missing_default_file_means_defaults_but_a_named_one_must_exist(tmp_path):
    assert load_config(None, {}) == Settings()
    with pytest.raises(ConfigError, match=re.escape(f"{tmp_path / 'nope.toml'}: no such file")):
        load_config(tmp_path / "nope.toml", {})
    with pytest.raises(ConfigError, match="no such file"):
        load_config(None, {"CALSYNC_CONFIG": str(tmp_path / "nope.toml")})


def test_a_leading_tilde_in_paths_means_home(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text('state_dir = "~/state"\n[calendar]\nurl = "~/cal.ics"\n[usage]\n'
                    'logs = ["~/.claude"]\n[projects.api]\npath = "~/src/api"\n'
                    'paths = ["~/src/api", "/abs/~odd"]\n')
    settings = load_config(file, {"HOME": "/home/ada"})
    assert settings.state_dir == Path("/home/ada/state")
    assert settings.calendar.url == "/home/ada/cal.ics"
    assert settings.usage.logs == (Path("/home/ada/.claude"),)
    assert settings.projects["api"].path == Path("/home/ada/src/api")
    assert settings.projects["api"].paths == ("/home/ada/src/api", "/abs/~odd")


def test_a_url_is_left_alone(tmp_path):
    file = tmp_path / "c.toml"
    file.write_text('[calendar]\nurl = "https://dav.example.com/~ada/cal/"\n')
    assert load_config(file, {"HOME": "/h"}).calendar.url == "https://dav.example.com/~ada/cal/"


# --- writing ------------------------------------------------------------------------------

SAMPLES = [
    pytest.param(Settings(), id="defaults"),
    pytest.param(Settings.model_validate({
        "state_dir": "/var/calsync",
        "calendar": {"url": "https://dav.example.com/cal/", "username": "ada",
                     "password_command": "pass show dav", "auth": "digest",
                     "verify_tls": False, "timeout_seconds": 5},
        "usage": {"logs": ["/a b/.claude", "/c"], "timezone": "Europe/Berlin",
                  "count_cache_reads": True},
        "sync": {"window_days": 30},
        "projects": {"calsync": {"path": "/src/calsync"},
                     "my app": {"paths": ["/src/my app", 'C:\\src\\"quoted"']}},
        "prices": {"m-1": {"input": 1.5, "output": 2, "cache_write_5m": 1, "cache_write_1h": 1,
                           "cache_read": 0.1, "above_200k": {"input": 3.0}}},
    }), id="everything-set"),
]


@pytest.mark.parametrize("settings", SAMPLES)
def test_the_written_config_reads_back_as_the_same_settings(settings):
    assert parse_config(render_config(settings)) == settings


@settings(max_examples=50, deadline=None)
@given(st.dictionaries(st.text(min_size=1, max_size=12), st.text(min_size=1, max_size=20),
                       max_size=3),
       st.text(max_size=20))
def test_law_any_project_names_and_paths_read_back(projects, username):
    s = Settings.model_validate({
        "calendar": {"username": username or None},
        "projects": {name: {"paths": [path]} for name, path in projects.items()},
    })
    assert parse_config(render_config(s)) == s


def test_the_written_config_explains_each_setting():
    text = render_config(Settings())
    assert "# count cache reads against the budget" in text
    assert "# window_days = 14" in text
    assert "password never goes here" in text
    assert all(line.startswith("#") or not line or line.startswith("[")
               for line in text.splitlines())  # nothing set: every value is commented out


def test_write_config_refuses_to_overwrite_without_force(tmp_path):
    file = tmp_path / "deep" / "config.toml"
    write_config(file, "# first\n", force=False)
    assert stat.S_IMODE(file.stat().st_mode) == 0o600
    with pytest.raises(ConfigError, match=re.escape("already there (pass --force to replace it)")):
        write_config(file, "# second\n", force=False)
    assert file.read_text() == "# first\n"
    write_config(file, "# second\n", force=True)
    assert file.read_text() == "# second\n"
    assert sorted(p.name for p in file.parent.iterdir()) == ["config.toml"]


# --- the keyring --------------------------------------------------------------------------

def test_a_keyring_that_keeps_nothing_is_an_error():
    keyring.core.init_backend()  # the null keyring of the test environment
    with pytest.raises(ConfigError, match=r"the keyring \(Keyring\) did not keep the password "
                                          r"\(use password_command or CALSYNC_PASSWORD instead\)"):
        store_password("ada", "s3cret")
