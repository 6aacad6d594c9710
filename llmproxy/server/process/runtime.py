"""The runtime a request sees — config, compiled profiles (the Router) and providers — and reloading it as
a whole, so a request always sees one consistent version."""

from __future__ import annotations

import dataclasses
import ipaddress
import logging
from datetime import UTC, datetime

from llmproxy import config as config_mod
from llmproxy import providers, routing
from llmproxy.config import Config
from llmproxy.server.state import Options, Runtime, State

log = logging.getLogger("llmproxy")


def load_runtime(options: Options) -> Runtime:
    """Config + compiled profiles, no providers yet. Raises ConfigError / KGError."""
    cfg, _ = config_mod.load(options.config_path, list(options.profile_dirs))
    return Runtime(router=routing.Router.build(cfg), providers={})


def with_providers(state: State, rt: Runtime) -> Runtime:
    assert state.session is not None
    provs = providers.build(rt.cfg, state.session, simulate_all=state.options.simulate,
                            local_up=state.local_up, sim_speed=rt.cfg.server.simulator_speed)
    return dataclasses.replace(rt, providers=provs)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def open_without_keys(host: str, cfg: Config, allow_remote: bool) -> bool:
    """The rule start-up and every reload keep: a listener on a non-loopback address needs proxy API keys,
    unless the daemon was started with ``--allow-remote``."""
    return bool(host) and not is_loopback(host) and not cfg.api_keys and not allow_remote


def _candidate(state: State) -> tuple[Runtime | None, list[str]]:
    """The runtime a reload would put in force, or the problems that keep the current one."""
    try:
        rt = load_runtime(state.options)
    except config_mod.ConfigError as exc:
        return None, exc.problems
    except routing.KGError as exc:
        return None, [str(exc)]
    host = state.options.host
    if open_without_keys(host, rt.cfg, state.options.allow_remote):
        return None, [f"auth.api_keys: the new configuration has no proxy API keys, but the daemon listens on "
                      f"{host}, which is not a loopback address; add keys, or restart it with --allow-remote"]
    return rt, []


async def reload(state: State) -> list[str]:
    """Re-read config, profiles and knowledge graphs. On any problem (one that start-up would refuse too) the
    previous routing stays, the problems are logged, and /health says since when the configuration is stale."""
    rt, problems = _candidate(state)
    if rt is not None:
        state.local_up = await providers.probe_local(rt.cfg)
        state.runtime = with_providers(state, rt)
        state.reload_problems, state.config_stale_since = [], None
        log.info("configuration reloaded")
        return []
    for p in problems:
        log.error("reload failed: %s", p)
    log.warning("the previous configuration stays in force")
    state.reload_problems = problems
    state.config_stale_since = state.config_stale_since or datetime.now(UTC).isoformat(timespec="seconds")
    return problems
