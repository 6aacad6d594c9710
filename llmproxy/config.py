"""Configuration: the bundled default TOML, overlaid by the user's file, plus profile files.

The options themselves (one dataclass field each) and the generic TOML reader live in ``llmproxy.settings``;
this module loads the files, adds the cross-field and cross-file checks, and re-exports every name. Every
problem is collected (file and key path) rather than stopping at the first. No network I/O here.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from llmproxy import paths
from llmproxy.settings import (
    PROVIDER_KINDS,
    REASONING_STYLES,
    STRUCTURED_OUTPUT_STYLES,
    AuthConfig,
    BatchConfig,
    FilesConfig,
    LogConfig,
    ModelSpec,
    ProviderConfig,
    Quirks,
    Reader,
    RoutingConfig,
    ServerConfig,
    StoreConfig,
    option_names,
    unalias,
)

__all__ = ["PROVIDER_KINDS", "REASONING_STYLES", "SCENARIOS", "STRUCTURED_OUTPUT_STYLES", "AuthConfig", "Config",
           "ConfigError", "LogConfig", "ModelSpec", "ProfileConfig", "ProviderConfig", "Quirks", "RoutingConfig",
           "ServerConfig", "Target", "check_references", "load", "load_profile", "missing_keys", "option_names",
           "profile_dirs"]

_Reader = Reader  # the old private name
SECTIONS = {"server": ServerConfig, "log": LogConfig, "auth": AuthConfig, "batches": BatchConfig,
            "files": FilesConfig, "store": StoreConfig, "routing": RoutingConfig}  # plus [providers.NAME]
SCENARIOS = ("override", "image", "long_context", "web_search", "background", "compact", "subagent",
             "keyword", "think", "default")


class ConfigError(Exception):
    """Raised with every problem found; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class Target:
    provider: str
    model: str

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"

    @classmethod
    def parse(cls, text: str) -> Target:
        provider, sep, model = text.partition(",")
        if not sep or not provider.strip() or not model.strip():
            raise ValueError(f"expected 'provider,model', got {text!r}")
        return cls(provider.strip(), model.strip())


@dataclass(frozen=True)
class ProfileConfig:
    name: str
    description: str
    source: str  # file it was read from
    default: tuple[Target, ...]  # primary target first, then fallbacks
    scenarios: dict[str, tuple[Target, ...]] = field(default_factory=dict)
    long_context_threshold: int = 60_000
    think_budget_threshold: int = 0  # thinking.budget_tokens above this counts as an explicit think request
    background_models: tuple[str, ...] = ("haiku",)  # substrings of requested model names that mark side tasks
    intent_threshold: float = 0.0  # learned intent score that escalates without a KG match (0 = signal off)
    intent_veto: float = 0.0  # a KG match with an intent score below this is a small task and does not escalate
    kg_dir: str | None = None  # directory of concept markdown files
    native_batches: bool = False  # batches whose items all route to Anthropic go to Anthropic's batch API


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    log: LogConfig
    api_keys: tuple[str, ...]
    providers: dict[str, ProviderConfig]
    profiles: dict[str, ProfileConfig]
    source: str = "<bundled>"
    auth: AuthConfig = field(default_factory=AuthConfig)  # as written; api_keys above adds api_keys_env's keys
    batches: BatchConfig = field(default_factory=BatchConfig)
    files: FilesConfig = field(default_factory=FilesConfig)
    store: StoreConfig = field(default_factory=StoreConfig)
    routing: RoutingConfig = field(default_factory=RoutingConfig)  # keyword routing's bounds

    def target_problem(self, t: Target) -> str | None:
        """Why a target cannot be served from the catalog, or None if it can."""
        prov = self.providers.get(t.provider)
        if prov is None:
            return f"unknown provider {t.provider!r} (known: {', '.join(sorted(self.providers))})"
        if prov.model(t.model) is None:
            return (f"unknown model {t.model!r} for provider {t.provider!r} "
                    f"(known: {', '.join(sorted(prov.models)) or 'none'})")
        return None


# ---------------------------------------------------------------------------------------------- loading

def _read_toml(path: Path, problems: list[str]) -> dict:
    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except FileNotFoundError:
        problems.append(f"{path}: file not found")
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{path}: invalid TOML: {exc}")
    except OSError as exc:
        problems.append(f"{path}: cannot read: {exc.strerror}")
    return {}


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def _model(r: Reader, mid: str, t: dict, where: str) -> ModelSpec:
    return r.build(ModelSpec, t, where, key=mid)


def _provider(r: Reader, name: str, t: dict) -> ProviderConfig:
    where = f"providers.{name}"
    if "api_key" in t:
        r.problem(f"{where}.api_key", "keys do not belong in the file; "
                  "set api_key_env to the name of an environment variable")
        t = {k: v for k, v in t.items() if k != "api_key"}
    prov = r.build(ProviderConfig, t, where, key=name)
    prov = replace(prov, base_url=prov.base_url.rstrip("/"))
    if t.get("kind") != "simulator" and not prov.base_url.startswith(("http://", "https://")):
        r.problem(f"{where}.base_url", "must be an http(s) URL")
    return prov


def _unaliased(data: dict) -> dict:
    """Deprecated provider keys renamed file by file, so a user's old key still beats a bundled new one."""
    provs = data.get("providers")
    if isinstance(provs, dict):
        data = {**data, "providers": {n: unalias(ProviderConfig, t) if isinstance(t, dict) else t
                                      for n, t in provs.items()}}
    return data


def _chain(r: _Reader, val: Any, where: str) -> tuple[Target, ...]:
    items = [val] if isinstance(val, str) else val if isinstance(val, list) else None
    if not items:
        r.problems.append(f"{r.source}: {where}: expected 'provider,model' or a list of them")
        return ()
    out = []
    for i, item in enumerate(items):
        try:
            out.append(Target.parse(item) if isinstance(item, str) else Target.parse(repr(item)))
        except ValueError as exc:
            r.problems.append(f"{r.source}: {where}[{i}]: {exc}")
    return tuple(out)


def load_profile(path: Path, problems: list[str]) -> ProfileConfig | None:
    data = _read_toml(path, problems)
    if not data:
        return None
    r = _Reader(str(path), problems)
    name = path.stem
    chain = _chain(r, data.get("default", ""), "default")
    if data.get("fallbacks"):
        chain += _chain(r, data["fallbacks"], "fallbacks")
    scenarios = {}
    for scen, val in r.table(data, "scenarios", "").items():
        if scen not in SCENARIOS:
            problems.append(f"{path}: scenarios.{scen}: unknown scenario (known: {', '.join(SCENARIOS)})")
            continue
        scenarios[scen] = _chain(r, val, f"scenarios.{scen}")
    routing = r.table(data, "routing", "")
    kg = r.get(data, "kg", str, None, "")
    kg_dir = str((path.parent / kg).resolve()) if kg else None
    return ProfileConfig(
        name=name, description=r.get(data, "description", str, "", ""), source=str(path),
        default=chain, scenarios=scenarios,
        long_context_threshold=r.get(routing, "long_context_threshold", int, 60_000, "routing"),
        think_budget_threshold=r.get(routing, "think_budget_threshold", int, 0, "routing"),
        background_models=tuple(r.get(routing, "background_models", list, ["haiku"], "routing")),
        intent_threshold=r.get(routing, "intent_threshold", float, 0.0, "routing"),
        intent_veto=r.get(routing, "intent_veto", float, 0.0, "routing"),
        kg_dir=kg_dir, native_batches=r.get(data, "native_batches", bool, False, ""),
    )


def profile_dirs(extra: list[Path] | None = None) -> list[Path]:
    """Bundled profiles first; the user's and --profile-dir ones override by name."""
    return [paths.bundled_profiles_dir(), paths.user_profiles_dir(), *(extra or [])]


def load(config_path: Path | None = None, extra_profile_dirs: list[Path] | None = None,
         *, strict: bool = True) -> tuple[Config, list[str]]:
    """Load config and profiles. Returns (config, problems); raises ConfigError if strict and any problem."""
    problems: list[str] = []
    data = _unaliased(_read_toml(paths.default_config_file(), problems))
    source = "<bundled>"
    user_path = config_path or paths.config_file()
    if config_path is not None or user_path.exists():
        data = _merge(data, _unaliased(_read_toml(user_path, problems)))
        source = str(user_path)
    r = Reader(source, problems)
    for key in data:
        if key not in (*SECTIONS, "providers"):
            r.problem(key, "unknown key")
    server, log, auth, batches, files, store, routing = (r.section(cls, data, key)
                                                         for key, cls in SECTIONS.items())
    keys = list(auth.api_keys)
    if auth.api_keys_env and os.environ.get(auth.api_keys_env):
        keys += [k.strip() for k in os.environ[auth.api_keys_env].split(",") if k.strip()]
    providers = {}
    for n, t in r.table(data, "providers", "").items():
        if isinstance(t, dict):
            providers[n] = _provider(r, n, t)
        else:
            r.problem(f"providers.{n}", "expected a table")

    profiles: dict[str, ProfileConfig] = {}
    for d_ in profile_dirs(extra_profile_dirs):
        if d_.is_dir():
            for f in sorted(d_.glob("*.toml")):
                prof = load_profile(f, problems)
                if prof is not None:
                    profiles[prof.name] = prof
    cfg = Config(server=server, log=log, api_keys=tuple(keys), providers=providers,
                 profiles=profiles, source=source, auth=auth, batches=batches, files=files, store=store,
                 routing=routing)
    problems += check_references(cfg)
    if strict and problems:
        raise ConfigError(problems)
    return cfg, problems


def check_references(cfg: Config) -> list[str]:
    out = []
    if cfg.server.default_profile not in cfg.profiles:
        out.append(f"{cfg.source}: server.default_profile: unknown profile {cfg.server.default_profile!r} "
                   f"(known: {', '.join(sorted(cfg.profiles)) or 'none'})")
    for prof in cfg.profiles.values():
        if not prof.default:
            out.append(f"{prof.source}: default: a profile needs a default target")
        chains = {"default": prof.default, **{f"scenarios.{k}": v for k, v in prof.scenarios.items()}}
        for where, chain in chains.items():
            for t in chain:
                problem = cfg.target_problem(t)
                if problem:
                    out.append(f"{prof.source}: {where}: {problem}")
    return out


def missing_keys(cfg: Config) -> list[str]:
    """Providers used by some profile whose key env var is not set (a warning: the simulator stands in)."""
    used = {t.provider for p in cfg.profiles.values() for ch in (p.default, *p.scenarios.values()) for t in ch}
    return [f"providers.{n}.api_key_env: environment variable {p.api_key_env} is not set "
            f"(used by a profile; the simulator will stand in)"
            for n, p in sorted(cfg.providers.items())
            if n in used and p.api_key_env and not os.environ.get(p.api_key_env)]
