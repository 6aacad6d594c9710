"""The runtime a request sees — config, compiled profiles (the Router) and providers — and reloading it as
a whole, so a request always sees one consistent version."""

from __future__ import annotations

import dataclasses
import logging
from datetime import UTC, datetime

from llmproxy import config as config_mod
from llmproxy import providers, routing
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


async def reload(state: State) -> list[str]:
    """Re-read config, profiles and knowledge graphs. On any problem the previous routing stays, the
    problems are logged, and /health says since when the running configuration is stale."""
    try:
        rt = load_runtime(state.options)
    except config_mod.ConfigError as exc:
        problems = exc.problems
    except routing.KGError as exc:
        problems = [str(exc)]
    else:
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
