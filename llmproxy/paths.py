"""Where llmproxy keeps its state. ``LLMPROXY_HOME`` overrides everything (tests and the demo use it)."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]


def home() -> Path:
    env = os.environ.get("LLMPROXY_HOME")
    if env:
        return Path(env).expanduser()
    from platformdirs import user_data_dir

    return Path(user_data_dir("llmproxy", appauthor=False))


def config_file() -> Path:
    return home() / "config.toml"


def pid_file() -> Path:
    return home() / "llmproxy.pid"


def log_dir() -> Path:
    return home() / "logs"


def request_log() -> Path:
    return log_dir() / "requests.jsonl"


def daemon_log() -> Path:
    return log_dir() / "daemon.log"


def user_profiles_dir() -> Path:
    return home() / "profiles"


def bundled_profiles_dir() -> Path:
    """The profiles shipped with llmproxy: ``profiles/`` of a source checkout (editable install), else the copy
    a wheel carries as ``llmproxy/_profiles``."""
    source = REPO_ROOT / "profiles"
    return source if source.is_dir() else Path(__file__).resolve().parent / "_profiles"


def default_config_file() -> Path:
    return Path(__file__).resolve().parent / "data" / "default.toml"
