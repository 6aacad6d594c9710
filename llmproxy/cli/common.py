"""Helpers more than one command needs: loading the configuration (strictly, or keeping what is usable),
which providers are simulated, printing recorded bodies, the proxy token a client sends."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from llmproxy.cli.console import CLIError
from llmproxy.cli.options import ConfigPaths

if TYPE_CHECKING:
    from rich.console import Console

    from llmproxy.config import Config
    from llmproxy.routing import Router


def load_config(paths: ConfigPaths) -> Config:
    """The configuration, or a CLIError carrying every problem (one ``config:`` line each)."""
    from llmproxy import config as config_mod

    try:
        cfg, _ = config_mod.load(paths.config, list(paths.profile_dirs))
    except config_mod.ConfigError as exc:
        raise CLIError(f"{len(exc.problems)} configuration problem(s); run 'llmproxy config check'",
                       details=[f"config: {p}" for p in exc.problems]) from None
    return cfg


def load_lenient(paths: ConfigPaths) -> tuple[Config, list[str]]:
    """The configuration with whatever could be read, and the problems found on the way."""
    from llmproxy import config as config_mod

    return config_mod.load(paths.config, list(paths.profile_dirs), strict=False)


def problem_files(problems: list[str]) -> list[str]:
    """The files the problem lines name (each line starts ``<file>[:line]: …``), in order, once each."""
    import re

    seen: dict[str, None] = {}
    for p in problems:
        if m := re.match(r"(<[a-z]+>|.+?\.(?:toml|md))(?::\d+)?: ", p):
            seen.setdefault(m.group(1))
    return list(seen)


def usable_router(cfg: Config, problems: list[str]) -> tuple[Router, dict[str, str]]:
    """A Router over the profiles that work, and {profile: why it was left out} for the others
    (a problem in its file, a target the catalog cannot serve, a knowledge graph that does not load)."""
    import dataclasses

    from llmproxy.routing import KGError, Router, compile_profiles

    broken: dict[str, str] = {}
    good = {}
    for name, prof in sorted(cfg.profiles.items()):
        own = [p for p in problems if p.startswith(prof.source + ":")]
        bad_targets = [f"{t}: {why}" for ch in (prof.default, *prof.scenarios.values()) for t in ch
                       if (why := cfg.target_problem(t))]
        if own or bad_targets or not prof.default:
            broken[name] = (own or bad_targets or [f"{prof.source}: no default target"])[0]
            continue
        try:
            good.update(compile_profiles(dataclasses.replace(cfg, profiles={name: prof})))
        except KGError as exc:
            broken[name] = str(exc)
    usable = dataclasses.replace(cfg, profiles={n: cfg.profiles[n] for n in good})
    return Router(usable, good), broken


def simulated_providers(health: dict) -> list[str]:
    """Providers the daemon serves with the simulator although they are real ones (no key, not reachable)."""
    return [n for n, p in (health.get("providers") or {}).items() if not p["live"] and p["kind"] != "simulator"]


def print_bodies(console: Console, rec: dict, indent: str = "") -> None:
    """The recorded request and response bodies of a log record, pretty-printed."""
    from rich.json import JSON

    for key in ("request_body", "response_body"):
        if key in rec:
            console.print(f"{indent}[dim]{key}[/]")
            console.print(JSON.from_data(rec[key]))


#: a client key of your own (``llmproxy keys create`` on the gateway): what ``env``, ``code`` and ``batches``
#: send when it is set (kept out of the command line, so out of shell history and ``ps``)
CLIENT_KEY_ENV = "LLMPROXY_KEY"


def proxy_token(cfg: Config) -> str:
    """What a client of this proxy sends as its key: ``$LLMPROXY_KEY`` (your client key) when set, else the
    first proxy API key, or a placeholder when the proxy needs none (Claude Code wants some token to skip its
    login)."""
    if mine := os.environ.get(CLIENT_KEY_ENV, "").strip():
        return mine
    return cfg.api_keys[0] if cfg.api_keys else "llmproxy-demo"


def known_profile(cfg: Config, name: str | None) -> str:
    """``name`` (default: ``server.default_profile``) if a profile has it, else a CLIError naming the valid ones."""
    name = name or cfg.server.default_profile
    if name not in cfg.profiles:
        raise CLIError(f"unknown profile {name!r} (known: {', '.join(sorted(cfg.profiles))})")
    return name


def ensure_daemon(port: int | None, command: str) -> str:
    """The running daemon's base URL, starting one (and saying so) when none runs."""
    from llmproxy.cli.console import err
    from llmproxy.demo import daemon as D
    from llmproxy.demo.state import DemoError

    try:
        base_url, started = D.ensure_daemon(verbose=False, port=port, command=command)
    except DemoError as exc:
        raise CLIError(str(exc)) from None
    if started:
        err.print(f"started the llmproxy daemon at {base_url} (stop it with `llmproxy stop`)")
    return base_url
