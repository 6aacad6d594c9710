"""Configuration: the bundled default TOML, overlaid by the user's file, plus profile files.

Everything here is pure data: frozen dataclasses built from TOML, with every problem collected (file and key
path) rather than stopping at the first. Nothing in this module does network I/O.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmproxy import paths

PROVIDER_KINDS = ("anthropic", "openai", "simulator")
SCENARIOS = ("override", "image", "long_context", "web_search", "background", "compact", "subagent",
             "keyword", "think", "default")


class ConfigError(Exception):
    """Raised with every problem found; ``problems`` holds one line each."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


@dataclass(frozen=True)
class ModelSpec:
    id: str
    display_name: str = ""
    context_window: int = 200_000
    max_output: int = 64_000
    input_price: float | None = None  # USD per million tokens; None = unknown (never shown as zero)
    output_price: float | None = None
    cache_read_price: float | None = None
    cache_write_price: float | None = None
    images: bool = True
    thinking: bool = False
    adaptive_thinking: bool = False  # accepts thinking {type: adaptive} (else converted to a budget)
    effort: bool = False  # accepts output_config.effort
    tools: bool = True
    created: str = "2025-01-01T00:00:00Z"
    # how the simulator paces a stand-in for this model
    sim_ttft_ms: float = 300.0
    sim_tokens_per_second: float = 80.0


@dataclass(frozen=True)
class ProviderConfig:
    name: str
    kind: str
    base_url: str = ""
    api_key_env: str = ""  # the *name* of the env var; "" means no key is needed
    forward_client_key: bool = False
    connect_timeout: float = 10.0
    read_timeout: float = 600.0
    headers: dict[str, str] = field(default_factory=dict)
    allow_any_model: bool = False
    models: dict[str, ModelSpec] = field(default_factory=dict)
    # OpenAI-kind quirks (see docs/providers.md)
    quirks: dict[str, Any] = field(default_factory=dict)

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None if self.api_key_env else None

    def model(self, model_id: str) -> ModelSpec | None:
        spec = self.models.get(model_id)
        if spec is None and self.allow_any_model:
            spec = ModelSpec(id=model_id)
        return spec


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
    kg_dir: str | None = None  # directory of concept markdown files


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 3456
    default_profile: str = "balanced"
    max_body_bytes: int = 32 * 1024 * 1024
    grace_seconds: float = 10.0
    ping_interval: float = 10.0
    simulator_speed: float = 1.0  # 0 = instant (tests); 2 = twice as fast as the catalog says


@dataclass(frozen=True)
class LogConfig:
    enabled: bool = True  # write the JSONL request log (metrics and -v lines work either way)
    bodies: bool = False
    body_max_bytes: int = 64 * 1024
    rotate_bytes: int = 50 * 1024 * 1024
    rotate_keep: int = 5


@dataclass(frozen=True)
class Config:
    server: ServerConfig
    log: LogConfig
    api_keys: tuple[str, ...]
    providers: dict[str, ProviderConfig]
    profiles: dict[str, ProfileConfig]
    source: str = "<bundled>"

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


class _Reader:
    """Typed reads from a TOML table with problems recorded as 'file: key.path: message'."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = source, problems

    def get(self, table: dict, key: str, typ: type | tuple, default: Any, where: str) -> Any:
        if key not in table:
            return default
        val = table[key]
        ok_types = typ if isinstance(typ, tuple) else (typ,)
        if float in ok_types and isinstance(val, int) and not isinstance(val, bool):
            val = float(val)
        if not isinstance(val, ok_types) or (isinstance(val, bool) and bool not in ok_types):
            names = "/".join(t.__name__ for t in ok_types)
            self.problems.append(f"{self.source}: {where}.{key}: expected {names}, got {type(val).__name__}")
            return default
        return val

    def table(self, table: dict, key: str, where: str) -> dict:
        val = table.get(key, {})
        if not isinstance(val, dict):
            self.problems.append(f"{self.source}: {where}.{key}: expected a table")
            return {}
        return val


def _model(r: _Reader, mid: str, t: dict, where: str) -> ModelSpec:
    kw: dict[str, Any] = {"id": mid}
    for name, typ in (("display_name", str), ("context_window", int), ("max_output", int),
                      ("input_price", float), ("output_price", float), ("cache_read_price", float),
                      ("cache_write_price", float), ("images", bool), ("thinking", bool), ("tools", bool),
                      ("adaptive_thinking", bool), ("effort", bool),
                      ("created", str), ("sim_ttft_ms", float), ("sim_tokens_per_second", float)):
        if name in t:
            kw[name] = r.get(t, name, typ, None, where)
            if kw[name] is None:
                del kw[name]
    for k in t:
        if k not in kw and k != "id":
            r.problems.append(f"{r.source}: {where}.{k}: unknown key")
    return ModelSpec(**kw)


def _provider(r: _Reader, name: str, t: dict) -> ProviderConfig:
    where = f"providers.{name}"
    declared = kind = r.get(t, "kind", str, "", where)
    if kind not in PROVIDER_KINDS:
        r.problems.append(f"{r.source}: {where}.kind: must be one of {', '.join(PROVIDER_KINDS)}, got {kind!r}")
        kind = "simulator"
    if "api_key" in t:
        r.problems.append(f"{r.source}: {where}.api_key: keys do not belong in the file; "
                          f"set api_key_env to the name of an environment variable")
    models = {mid: _model(r, mid, mt, f"{where}.models.{mid}")
              for mid, mt in r.table(t, "models", where).items() if isinstance(mt, dict)}
    headers = r.table(t, "headers", where)
    known = {"kind", "base_url", "api_key_env", "forward_client_key", "connect_timeout", "read_timeout",
             "headers", "allow_any_model", "models", "quirks", "api_key"}
    for k in t:
        if k not in known:
            r.problems.append(f"{r.source}: {where}.{k}: unknown key")
    quirks = dict(r.table(t, "quirks", where))
    if quirks:
        from llmproxy.convert.quirks import Quirks

        known_q = set(Quirks.__dataclass_fields__)
        for k in quirks:
            if k not in known_q:
                r.problems.append(f"{r.source}: {where}.quirks.{k}: unknown quirk (known: {', '.join(sorted(known_q))})")
        try:
            Quirks.from_config(quirks)
        except (ValueError, TypeError) as exc:
            r.problems.append(f"{r.source}: {where}.quirks: {exc}")
    base_url = r.get(t, "base_url", str, "", where).rstrip("/")
    if declared != "simulator" and not base_url.startswith(("http://", "https://")):
        r.problems.append(f"{r.source}: {where}.base_url: must be an http(s) URL")
    return ProviderConfig(
        name=name, kind=kind, base_url=base_url,
        api_key_env=r.get(t, "api_key_env", str, "", where),
        forward_client_key=r.get(t, "forward_client_key", bool, False, where),
        connect_timeout=r.get(t, "connect_timeout", float, 10.0, where),
        read_timeout=r.get(t, "read_timeout", float, 600.0, where),
        headers={str(k): str(v) for k, v in headers.items()},
        allow_any_model=r.get(t, "allow_any_model", bool, False, where),
        models=models, quirks=quirks,
    )


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
        kg_dir=kg_dir,
    )


def profile_dirs(extra: list[Path] | None = None) -> list[Path]:
    """Bundled profiles first; the user's and --profile-dir ones override by name."""
    return [paths.bundled_profiles_dir(), paths.user_profiles_dir(), *(extra or [])]


def load(config_path: Path | None = None, extra_profile_dirs: list[Path] | None = None,
         *, strict: bool = True) -> tuple[Config, list[str]]:
    """Load config and profiles. Returns (config, problems); raises ConfigError if strict and any problem."""
    problems: list[str] = []
    data = _read_toml(paths.default_config_file(), problems)
    source = "<bundled>"
    user_path = config_path or paths.config_file()
    if config_path is not None or user_path.exists():
        data = _merge(data, _read_toml(user_path, problems))
        source = str(user_path)
    r = _Reader(source, problems)
    s = r.table(data, "server", "")
    d = ServerConfig()
    server = ServerConfig(
        host=r.get(s, "host", str, d.host, "server"), port=r.get(s, "port", int, d.port, "server"),
        default_profile=r.get(s, "default_profile", str, d.default_profile, "server"),
        max_body_bytes=r.get(s, "max_body_bytes", int, d.max_body_bytes, "server"),
        grace_seconds=r.get(s, "grace_seconds", float, d.grace_seconds, "server"),
        ping_interval=r.get(s, "ping_interval", float, d.ping_interval, "server"),
        simulator_speed=r.get(s, "simulator_speed", float, d.simulator_speed, "server"),
    )
    if server.grace_seconds <= 0:
        problems.append(f"{source}: server.grace_seconds: must be greater than 0 (seconds in-flight responses get)")
    lg, dl = r.table(data, "log", ""), LogConfig()
    log = LogConfig(
        enabled=r.get(lg, "enabled", bool, dl.enabled, "log"),
        bodies=r.get(lg, "bodies", bool, dl.bodies, "log"),
        body_max_bytes=r.get(lg, "body_max_bytes", int, dl.body_max_bytes, "log"),
        rotate_bytes=r.get(lg, "rotate_bytes", int, dl.rotate_bytes, "log"),
        rotate_keep=r.get(lg, "rotate_keep", int, dl.rotate_keep, "log"),
    )
    auth = r.table(data, "auth", "")
    keys = list(r.get(auth, "api_keys", list, [], "auth"))
    keys_env = r.get(auth, "api_keys_env", str, "", "auth")
    if keys_env and os.environ.get(keys_env):
        keys += [k.strip() for k in os.environ[keys_env].split(",") if k.strip()]
    providers = {n: _provider(r, n, t) for n, t in r.table(data, "providers", "").items() if isinstance(t, dict)}

    profiles: dict[str, ProfileConfig] = {}
    for d_ in profile_dirs(extra_profile_dirs):
        if d_.is_dir():
            for f in sorted(d_.glob("*.toml")):
                prof = load_profile(f, problems)
                if prof is not None:
                    profiles[prof.name] = prof
    cfg = Config(server=server, log=log, api_keys=tuple(str(k) for k in keys), providers=providers,
                 profiles=profiles, source=source)
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
