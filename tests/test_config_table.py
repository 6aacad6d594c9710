"""Config problems, table-driven: one row per kind of problem (files -> the problem line expected), rows for the
resilience options and the read_timeout alias, and a check that the keys a table accepts are exactly its
dataclass's fields (an option cannot again be declared in one place and forgotten in another)."""

from __future__ import annotations

import dataclasses
import textwrap
import typing

import pytest
import tomli_w

from llmproxy import config
from llmproxy.config import (
    AuthConfig,
    LogConfig,
    ModelSpec,
    ProviderConfig,
    Quirks,
    RoutingConfig,
    ServerConfig,
    option_names,
)

P = 'kind = "openai"\nbase_url = "http://127.0.0.1:9/v1"\n'  # a valid provider table body
Q = "[providers.p]\n" + P  # ...under its header


def load(home, files: dict[str, str]):
    for name, text in files.items():
        path = home / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
    return config.load(strict=False)


# (id, files, the problem expected: "<file>: " is checked separately)
PROBLEMS = [
    # the file itself
    ("invalid-toml", {"config.toml": "[server\n"}, "invalid TOML"),
    ("top-level-unknown", {"config.toml": "[sever]\nport = 1\n"}, "sever: unknown key"),
    ("section-not-a-table", {"config.toml": "server = 3\n"}, "server: expected a table"),
    # types
    ("str-for-int", {"config.toml": '[server]\nport = "x"\n'}, "server.port: expected int, got str"),
    ("bool-for-int", {"config.toml": "[server]\nport = true\n"}, "server.port: expected int, got bool"),
    ("float-for-int", {"config.toml": "[log]\nrotate_keep = 1.5\n"}, "log.rotate_keep: expected int, got float"),
    ("str-for-float", {"config.toml": '[server]\ngrace_seconds = "x"\n'},
     "server.grace_seconds: expected float, got str"),
    ("int-for-bool", {"config.toml": "[log]\nbodies = 1\n"}, "log.bodies: expected bool, got int"),
    ("list-expected", {"config.toml": '[auth]\napi_keys = "k"\n'}, "auth.api_keys: expected a list"),
    ("list-item-type", {"config.toml": "[auth]\napi_keys = [1]\n"}, "auth.api_keys[0]: expected str, got int"),
    # unknown keys, every table
    ("unknown-server", {"config.toml": "[server]\nprot = 1\n"}, "server.prot: unknown key"),
    ("unknown-log", {"config.toml": "[log]\nbody = true\n"}, "log.body: unknown key"),
    ("unknown-auth", {"config.toml": "[auth]\nkeys = []\n"}, "auth.keys: unknown key"),
    ("unknown-provider", {"config.toml": Q + "timeout = 3\n"}, "providers.p.timeout: unknown key"),
    ("unknown-model", {"config.toml": Q + "[providers.p.models.m]\ncontext = 3\n"},
     "providers.p.models.m.context: unknown key"),
    ("model-id-is-the-key", {"config.toml": Q + '[providers.p.models.m]\nid = "x"\n'},
     "providers.p.models.m.id: unknown key"),
    ("provider-name-is-the-key", {"config.toml": Q + 'name = "x"\n'}, "providers.p.name: unknown key"),
    # providers
    ("provider-not-a-table", {"config.toml": "[providers]\np = 3\n"}, "providers.p: expected a table"),
    ("api-key-in-file", {"config.toml": Q + 'api_key = "sk-secret"\n'},
     "providers.p.api_key: keys do not belong in the file; set api_key_env"),
    ("bad-kind", {"config.toml": '[providers.p]\nkind = "nope"\nbase_url = "http://x"\n'},
     "providers.p.kind: must be one of anthropic, openai, simulator, got 'nope'"),
    ("missing-kind", {"config.toml": '[providers.p]\nbase_url = "http://x"\n'},
     "providers.p.kind: required (one of anthropic, openai, simulator)"),
    ("base-url-not-http", {"config.toml": '[providers.p]\nkind = "openai"\nbase_url = "ftp://x"\n'},
     "providers.p.base_url: must be an http(s) URL"),
    ("base-url-missing", {"config.toml": '[providers.p]\nkind = "anthropic"\n'},
     "providers.p.base_url: must be an http(s) URL"),
    ("headers-not-a-table", {"config.toml": Q + 'headers = "x"\n'}, "providers.p.headers: expected a table"),
    ("header-value-type", {"config.toml": Q + "headers = { X-A = 1 }\n"},
     "providers.p.headers.X-A: expected str, got int"),
    ("models-not-a-table", {"config.toml": Q + "models = 3\n"}, "providers.p.models: expected a table"),
    ("model-not-a-table", {"config.toml": Q + "models = { m = 3 }\n"}, "providers.p.models.m: expected a table"),
    ("model-type", {"config.toml": Q + '[providers.p.models.m]\ncontext_window = "big"\n'},
     "providers.p.models.m.context_window: expected int, got str"),
    # quirks
    ("quirks-not-a-table", {"config.toml": Q + 'quirks = "x"\n'}, "providers.p.quirks: expected a table"),
    ("unknown-quirk", {"config.toml": Q + "quirks = { bogus = true }\n"},
     "providers.p.quirks.bogus: unknown quirk (known: cache_control, max_tokens_cap"),
    ("quirk-choice", {"config.toml": Q + 'quirks = { reasoning = "loud" }\n'},
     "providers.p.quirks.reasoning: must be one of none, openrouter, reasoning_effort"),
    ("quirk-structured-output", {"config.toml": Q + 'quirks = { structured_output = "xml" }\n'},
     "providers.p.quirks.structured_output: must be one of json_schema, json_object, none, got 'xml'"),
    ("quirk-type", {"config.toml": Q + 'quirks = { pdf = "yes" }\n'}, "providers.p.quirks.pdf: expected bool, got str"),
    ("quirk-negative-cap", {"config.toml": Q + "quirks = { max_tokens_cap = -1 }\n"},
     "providers.p.quirks.max_tokens_cap: must be at least 0"),
    # bounds, old and new options
    ("grace-seconds", {"config.toml": "[server]\ngrace_seconds = 0\n"},
     "server.grace_seconds: must be greater than 0 (seconds in-flight responses get)"),
    ("max-body-bytes", {"config.toml": "[server]\nmax_body_bytes = 0\n"}, "server.max_body_bytes: must be greater than 0"),
    ("max-concurrent", {"config.toml": "[server]\nmax_concurrent_requests = 0\n"},
     "server.max_concurrent_requests: must be greater than 0"),
    ("send-window", {"config.toml": "[server]\nsend_window = 0\n"}, "server.send_window: must be greater than 0"),
    ("max-header-bytes", {"config.toml": "[server]\nmax_header_bytes = -1\n"},
     "server.max_header_bytes: must be greater than 0"),
    ("max-headers", {"config.toml": "[server]\nmax_headers = 0\n"}, "server.max_headers: must be greater than 0"),
    ("max-headers-type", {"config.toml": "[server]\nmax_headers = 1.5\n"}, "server.max_headers: expected int, got float"),
    ("connect-timeout", {"config.toml": Q + "connect_timeout = 0\n"}, "providers.p.connect_timeout: must be greater than 0"),
    ("ttfb-timeout", {"config.toml": Q + "ttfb_timeout = -1\n"}, "providers.p.ttfb_timeout: must be greater than 0"),
    ("idle-timeout", {"config.toml": Q + "idle_timeout = 0\n"}, "providers.p.idle_timeout: must be greater than 0"),
    ("read-timeout-alias-checked", {"config.toml": Q + "read_timeout = 0\n"},
     "providers.p.idle_timeout: must be greater than 0"),
    ("read-timeout-alias-type", {"config.toml": Q + 'read_timeout = "slow"\n'},
     "providers.p.idle_timeout: expected float, got str"),
    ("total-timeout", {"config.toml": Q + "total_timeout = 0\n"}, "providers.p.total_timeout: must be greater than 0"),
    ("max-retries", {"config.toml": Q + "max_retries = -1\n"}, "providers.p.max_retries: must be at least 0"),
    ("max-retries-type", {"config.toml": Q + "max_retries = 1.0\n"}, "providers.p.max_retries: expected int, got float"),
    ("retry-budget", {"config.toml": Q + "retry_budget = -0.5\n"}, "providers.p.retry_budget: must be at least 0"),
    ("breaker-failures", {"config.toml": Q + "breaker_failures = 0\n"},
     "providers.p.breaker_failures: must be greater than 0"),
    ("breaker-cooldown", {"config.toml": Q + "breaker_cooldown = 0\n"},
     "providers.p.breaker_cooldown: must be greater than 0"),
    ("model-ttfb-timeout", {"config.toml": Q + "[providers.p.models.m]\nttfb_timeout = 0\n"},
     "providers.p.models.m.ttfb_timeout: must be greater than 0"),
    # profiles and references between files
    ("unknown-default-profile", {"config.toml": '[server]\ndefault_profile = "nope"\n'},
     "server.default_profile: unknown profile 'nope' (known: balanced"),
    ("profile-invalid-toml", {"profiles/mine.toml": "default = \n"}, "mine.toml: invalid TOML"),
    ("profile-unknown-provider", {"profiles/mine.toml": 'default = "ghost,model-x"\n'},
     "mine.toml: default: unknown provider 'ghost'"),
    ("profile-unknown-model", {"profiles/mine.toml": 'default = "deepseek,nope"\n'},
     "mine.toml: default: unknown model 'nope' for provider 'deepseek'"),
    ("profile-bad-target", {"profiles/mine.toml": 'default = "no-comma"\n'},
     "mine.toml: default[0]: expected 'provider,model'"),
    ("profile-no-default", {"profiles/mine.toml": 'description = "x"\n'},
     "mine.toml: default: a profile needs a default target"),
    ("profile-unknown-scenario", {"profiles/mine.toml": 'default = "simulator,sim-fast"\n[scenarios]\nbogus = "a,b"\n'},
     "mine.toml: scenarios.bogus: unknown scenario (known: override"),
    ("profile-scenario-target", {"profiles/mine.toml": 'default = "simulator,sim-fast"\n[scenarios]\nthink = "x,y"\n'},
     "mine.toml: scenarios.think: unknown provider 'x'"),
    ("profile-routing-type", {"profiles/mine.toml": 'default = "simulator,sim-fast"\n[routing]\n'
                                                    'long_context_threshold = "big"\n'},
     "mine.toml: routing.long_context_threshold: expected int, got str"),
]


@pytest.mark.parametrize("files,expected", [r[1:] for r in PROBLEMS], ids=[r[0] for r in PROBLEMS])
def test_problem(home, files, expected):
    _, problems = load(home, files)
    hits = [p for p in problems if expected in p]
    assert hits, f"{expected!r} not in {problems}"
    name = next(iter(files))
    assert all(p.startswith(f"{home / name}: ") for p in hits), hits  # "<file>: <key.path>: <message>"
    with pytest.raises(config.ConfigError):
        config.load()


def test_every_row_is_a_single_problem_and_the_bundled_config_has_none(home):
    assert config.load(strict=False)[1] == []
    for row_id, files, _ in PROBLEMS:
        for f in home.rglob("*.toml"):
            f.unlink()
        _, problems = load(home, files)
        if row_id not in ("profile-no-default", "profile-bad-target"):  # these also lack a default target
            assert len(problems) == 1, (row_id, problems)


def test_missing_config_file_given_explicitly(home):
    _, problems = config.load(home / "nope.toml", strict=False)
    assert problems == [f"{home / 'nope.toml'}: file not found"]


def test_api_key_value_never_appears(home):
    _, problems = load(home, {"config.toml": Q + 'api_key = "sk-secret-123"\n'})
    assert problems and not any("sk-secret-123" in p for p in problems)


# (id, config.toml, attribute path on the loaded Config, expected value)
VALUES = [
    ("provider-defaults", Q, "providers.p",
     dict(connect_timeout=10.0, ttfb_timeout=60.0, idle_timeout=120.0, read_timeout=120.0, total_timeout=1800.0,
          max_retries=2, retry_budget=20.0, breaker_failures=5, breaker_cooldown=30.0, quirks=Quirks())),
    ("provider-set", Q + "connect_timeout = 3\nttfb_timeout = 45.5\nidle_timeout = 90\ntotal_timeout = 600\n"
                         "max_retries = 0\nretry_budget = 0\nbreaker_failures = 1\nbreaker_cooldown = 5\n",
     "providers.p", dict(connect_timeout=3.0, ttfb_timeout=45.5, idle_timeout=90.0, total_timeout=600.0,
                         max_retries=0, retry_budget=0.0, breaker_failures=1, breaker_cooldown=5.0)),
    ("read-timeout-alias", Q + "read_timeout = 5\n", "providers.p", dict(idle_timeout=5.0, read_timeout=5.0)),
    ("idle-timeout-beats-alias", Q + "read_timeout = 5\nidle_timeout = 7\n", "providers.p",
     dict(idle_timeout=7.0, read_timeout=7.0)),
    ("user-alias-beats-bundled-idle", "[providers.ollama]\nread_timeout = 5\n", "providers.ollama",
     dict(idle_timeout=5.0, ttfb_timeout=900.0)),
    ("bundled-local-provider", "", "providers.vllm", dict(ttfb_timeout=900.0, idle_timeout=300.0)),
    ("model-ttfb-default", Q + "[providers.p.models.m]\n", "providers.p.models.m", dict(ttfb_timeout=None)),
    ("model-ttfb-set", Q + "[providers.p.models.m]\nttfb_timeout = 240\n", "providers.p.models.m",
     dict(ttfb_timeout=240.0)),
    ("bundled-reasoning-model", "", "providers.deepseek.models.deepseek-reasoner", dict(ttfb_timeout=180.0)),
    ("bundled-o-series", "", "providers.openai.models.gpt-5", dict(ttfb_timeout=180.0)),
    ("server-defaults", "", "server", dict(max_concurrent_requests=2048, send_window=64, max_header_bytes=16384,
                                                 max_headers=128)),
    ("server-set", "[server]\nmax_concurrent_requests = 10\nmax_header_bytes = 8190\nmax_headers = 64\n", "server",
     dict(max_concurrent_requests=10, max_header_bytes=8190, max_headers=64)),
    ("quirks-typed", Q + 'quirks = { reasoning = "openrouter", max_tokens_cap = 100 }\n', "providers.p.quirks",
     dict(reasoning="openrouter", max_tokens_cap=100, pdf=False)),
    ("bundled-quirks", "", "providers.deepseek.quirks", dict(reasoning="reasoning_content", max_tokens_cap=8192,
                                                             structured_output="json_object")),
    ("base-url-trailing-slash", '[providers.p]\nkind = "openai"\nbase_url = "http://x/v1/"\n', "providers.p",
     dict(base_url="http://x/v1")),
]


def _at(obj, path: str):
    for part in path.split("."):
        obj = obj[part] if isinstance(obj, dict) else getattr(obj, part)
    return obj


@pytest.mark.parametrize("text,path,expected", [r[1:] for r in VALUES], ids=[r[0] for r in VALUES])
def test_value(home, text, path, expected):
    cfg, problems = load(home, {"config.toml": text})
    assert problems == []
    obj = _at(cfg, path)
    for attr, want in expected.items():
        got = getattr(obj, attr)
        assert got == want and type(got) is type(want), (attr, got, want)


def test_quirks_are_parsed_once_and_from_config_still_works():
    q = Quirks(reasoning="reasoning")
    assert Quirks.from_config(q) is q
    assert Quirks.from_config({"pdf": True}) == Quirks(pdf=True)
    with pytest.raises(ValueError, match="quirks.reasoning: must be one of"):
        Quirks.from_config({"reasoning": "loud"})
    with pytest.raises(ValueError, match="unknown quirk"):
        Quirks.from_config({"bogus": 1})
    from llmproxy.convert.quirks import Quirks as Reexported

    assert Reexported is Quirks


def test_missing_key_is_a_warning_not_a_problem(home):
    cfg, problems = load(home, {"profiles/mine.toml": 'default = "deepseek,deepseek-chat"\n'})
    assert problems == []
    assert any("providers.deepseek.api_key_env: environment variable DEEPSEEK_API_KEY is not set" in w
               for w in config.missing_keys(cfg))


# ------------------------------------------------------------------ accepted keys == dataclass fields

TABLES = [(ServerConfig, ("server",)), (LogConfig, ("log",)), (AuthConfig, ("auth",)),
          (ProviderConfig, ("providers", "p")), (ModelSpec, ("providers", "p", "models", "m")),
          (Quirks, ("providers", "p", "quirks")), (RoutingConfig, ("routing",))]


def _sample(f: dataclasses.Field, typ):
    """A valid value for the field that differs from its default, as TOML data and as the loaded value."""
    choices = f.metadata.get("choices")
    if choices:
        v = next(c for c in choices if c != f.default)
        return v, v
    if f.name == "default_profile":
        return "fast", "fast"
    if f.name == "base_url":
        return "http://sample.example/v1", "http://sample.example/v1"
    origin, args = typing.get_origin(typ), typing.get_args(typ)
    if origin is typing.Union or type(typ).__name__ == "UnionType":
        typ = next(a for a in args if a is not type(None))
    if typ is bool:
        return not f.default, not f.default
    if typ is int:
        return f.default + 7, f.default + 7
    if typ is float:
        v = (f.default or 0) + 1.5
        return v, v
    if typ is str:
        return "sample", "sample"
    if origin is tuple:
        return ["sample"], ("sample",)
    if typ is Quirks:
        return {"pdf": True}, Quirks(pdf=True)
    if origin is dict and args[1] is str:
        return {"X-Sample": "v"}, {"X-Sample": "v"}
    if origin is dict and args[1] is ModelSpec:
        return {"sample-model": {}}, {"sample-model": ModelSpec(id="sample-model")}
    raise AssertionError(f"no sample for {f.name}: {typ}")


def _nest(path: tuple[str, ...], table: dict) -> dict:
    out = table
    for part in reversed(path):
        out = {part: out}
    return out


def _with_provider(data: dict) -> dict:
    p = data.setdefault("providers", {}).setdefault("p", {})
    p.setdefault("kind", "openai")
    p.setdefault("base_url", "http://127.0.0.1:9/v1")
    return data


def _loaded(cfg, path: tuple[str, ...]):
    if path[0] != "providers":
        return getattr(cfg, path[0])
    obj = cfg.providers["p"]
    if len(path) > 2:
        obj = obj.models["m"] if path[2] == "models" else obj.quirks
    return obj


@pytest.mark.parametrize("cls,path", TABLES, ids=[c.__name__ for c, _ in TABLES])
def test_every_field_is_an_option_and_nothing_else(home, cls, path):
    hints = typing.get_type_hints(cls)
    options = [f for f in dataclasses.fields(cls) if not f.metadata.get("key")]
    aliases = {a for f in options for a in f.metadata.get("aliases", ())}
    assert option_names(cls) == {f.name for f in options} | aliases
    for f in options:
        toml_value, loaded = _sample(f, hints[f.name])
        (home / "config.toml").write_text(tomli_w.dumps(_with_provider(_nest(path, {f.name: toml_value}))))
        cfg, problems = config.load(strict=False)
        assert problems == [], (f.name, problems)
        assert getattr(_loaded(cfg, path), f.name) == loaded, f.name  # read, not just tolerated
    (home / "config.toml").write_text(tomli_w.dumps(_with_provider(_nest(path, {"not_an_option": 1}))))
    problems = config.load(strict=False)[1]
    assert len(problems) == 1 and f"{'.'.join(path)}.not_an_option: unknown" in problems[0], problems
