"""Where calsync's own files are: its config file and its state directory.

Apart from `calsync.config` (which defines the settings with pydantic), so that a command
can find out whether there is a config file at all before it imports pydantic: without
one, `calsync usage` takes the defaults and never imports it (`cli.Context.usage_config`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

APP_NAME = "calsync"


def default_config_path(env: Mapping[str, str]) -> Path:
    """`CALSYNC_CONFIG`, else `config.toml` in the platform's config dir for calsync."""
    if env.get("CALSYNC_CONFIG"):
        return Path(env["CALSYNC_CONFIG"]).expanduser()
    from platformdirs import user_config_path

    return user_config_path(APP_NAME) / "config.toml"


def config_file(path: Path | None, env: Mapping[str, str]) -> tuple[Path, bool]:
    """The config file to read (`path`, from --config, else `default_config_path`), and
    whether it was named explicitly (then it must exist)."""
    if path is not None:
        return path.expanduser(), True
    return default_config_path(env), bool(env.get("CALSYNC_CONFIG"))


def state_dir(configured: Path | None, env: Mapping[str, str]) -> Path:
    """Where the state database lives: `CALSYNC_STATE_DIR`, else the config's `state_dir`
    (`configured`), else the platform's state dir for calsync."""
    if env.get("CALSYNC_STATE_DIR"):
        return Path(env["CALSYNC_STATE_DIR"]).expanduser()
    if configured:
        return configured.expanduser()
    from platformdirs import user_state_path

    return user_state_path(APP_NAME)


def cache_dir() -> Path:
    """The platform's cache dir for calsync (what can be thrown away: `usage_config`)."""
    from platformdirs import user_cache_path

    return user_cache_path(APP_NAME)
