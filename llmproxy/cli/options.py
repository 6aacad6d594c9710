"""What each command was asked to do, as one value each: the Typer layer (``cli/app.py``) builds these, the
command modules take them. Plain dataclasses, no imports beyond the standard library."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ConfigPaths:
    """Where the configuration comes from: ``--config`` and ``--profile-dir``."""

    config: Path | None = None
    profile_dirs: tuple[Path, ...] = ()


@dataclass(frozen=True)
class ServeOptions:
    host: str | None = None
    port: int | None = None
    paths: ConfigPaths = field(default_factory=ConfigPaths)
    verbose: int = 0
    simulate: bool = False
    daemon: bool = False
    allow_remote: bool = False
    workers: str = "1"  # a number, or "auto"


@dataclass(frozen=True)
class RouteTestOptions:
    text: str | None = None
    profile: str | None = None  # None: every profile, one row each
    json_out: bool = False
    request: Path | None = None  # a request body (or a recorded {headers, body}) file; "-" is stdin
    paths: ConfigPaths = field(default_factory=ConfigPaths)
    why_not: str | None = None  # a concept: say why it did not fire for the text


@dataclass(frozen=True)
class LogsOptions:
    follow: bool = False
    n: int = 20
    profile: str | None = None
    scenario: str | None = None
    provider: str | None = None
    status: str | None = None
    since: str | None = None
    json_out: bool = False
    bodies: bool = False
    log_path: Path | None = None  # default: $LLMPROXY_HOME/logs/requests.jsonl
