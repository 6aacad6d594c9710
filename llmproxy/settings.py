"""The options, each written once: one dataclass field per config key, read by one generic reader.

A field's type annotation is the type the TOML value must have; ``opt(...)`` adds what else is checked
(``choices``, ``gt``/``ge``/``le`` bounds, deprecated ``aliases``). A key that is not a field is reported as
unknown.
Pure data, no I/O, and no imports from convert/providers/server: this is the bottom layer.
"""

from __future__ import annotations

import os
import types
import typing
from dataclasses import MISSING, dataclass, field, fields, is_dataclass
from typing import Any, ClassVar

PROVIDER_KINDS = ("anthropic", "openai", "simulator")
REASONING_STYLES = ("none", "openrouter", "reasoning_effort", "reasoning_content", "reasoning")
STRUCTURED_OUTPUT_STYLES = ("json_schema", "json_object", "none")


def opt(default: Any = MISSING, *, choices: tuple = (), gt: float | None = None, ge: float | None = None,
        le: float | None = None, why: str = "", aliases: tuple[str, ...] = (), key: bool = False,
        fallback: Any = None) -> Any:
    """A field with checks. ``key``: filled from the table's own key (not an option). ``fallback``: the value
    a required field takes when missing or invalid (the problem is still reported)."""
    meta = {"choices": choices, "gt": gt, "ge": ge, "le": le, "why": why, "aliases": aliases, "key": key,
            "fallback": fallback}
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class Quirks:
    """Per-provider quirks of OpenAI-compatible upstreams: a provider's ``quirks`` table (docs/providers.md)."""

    unknown_key: ClassVar[str] = "unknown quirk"

    #: how a request asks for reasoning, and which response field carries it:
    #: "openrouter" (request `reasoning` object; response `reasoning`/`reasoning_details`),
    #: "reasoning_effort" (OpenAI: request `reasoning_effort`), "reasoning_content" (DeepSeek, vLLM),
    #: "reasoning" (Ollama), "none" (never sent).
    reasoning: str = opt("none", choices=REASONING_STYLES)
    #: echo earlier thinking back as `reasoning_content` on assistant messages (DeepSeek thinking-mode tool turns)
    reasoning_in_history: bool = False
    #: keep `cache_control` on content parts (OpenRouter to Anthropic/Gemini models); dropped by default
    cache_control: bool = False
    #: strip JSON-schema keys strict providers reject ($schema, format, …) from tool parameters
    strict_schema: bool = False
    #: cap for max_tokens regardless of the request (0 = the model's catalog limit only)
    max_tokens_cap: int = opt(0, ge=0)
    #: the request field for the output cap ("max_tokens", or "max_completion_tokens" for OpenAI's own API)
    max_tokens_field: str = "max_tokens"
    #: ask for usage in the stream (stream_options.include_usage)
    stream_usage: bool = True
    #: the provider accepts PDF documents as `file` content parts
    pdf: bool = False
    #: the provider accepts top_k
    top_k: bool = False
    #: forward tool-call argument fragments as they arrive (only for providers whose tool JSON is constrained);
    #: otherwise each call is emitted complete, with its JSON checked, when the stream ends
    stream_tool_args: bool = False
    #: how `output_config.format` (JSON-schema output) is asked for: "json_schema" (response_format with the
    #: schema), "json_object" (DeepSeek: JSON mode plus the schema in the system prompt), "none"
    structured_output: str = opt("json_schema", choices=STRUCTURED_OUTPUT_STYLES)

    @classmethod
    def from_config(cls, data: Quirks | dict[str, Any]) -> Quirks:
        """A Quirks from a ``quirks`` table (ValueError listing every problem); an instance is returned as is."""
        if isinstance(data, Quirks):
            return data
        problems: list[str] = []
        q = Reader("", problems).build(cls, dict(data), "quirks")
        if problems:
            raise ValueError("; ".join(problems))
        return q


@dataclass(frozen=True)
class ModelSpec:
    id: str = opt(key=True)
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
    # overrides the provider's ttfb_timeout (reasoning models can think for minutes before the first token)
    ttfb_timeout: float | None = opt(None, gt=0)


@dataclass(frozen=True)
class ProviderConfig:
    name: str = opt(key=True)
    kind: str = opt(choices=PROVIDER_KINDS, fallback="simulator")
    base_url: str = ""
    api_key_env: str = ""  # the *name* of the env var; "" means no key is needed
    forward_client_key: bool = False
    # seconds; see docs/operations.md for what each one bounds
    connect_timeout: float = opt(10.0, gt=0)
    ttfb_timeout: float = opt(60.0, gt=0)  # request sent -> response headers and the first event/chunk
    idle_timeout: float = opt(120.0, gt=0, aliases=("read_timeout",))  # most silence between stream chunks
    total_timeout: float = opt(1800.0, gt=0)  # the whole request
    max_retries: int = opt(2, ge=0)  # retries of the same target before the next one in the chain
    retry_budget: float = opt(20.0, ge=0)  # most time one request may wait between retries (incl. retry-after)
    # the circuit opens on breaker_failures health failures that are at least half of the last breaker_window
    # outcomes (docs/operations.md); it is skipped only while the route has another target
    breaker_failures: int = opt(5, gt=0)
    breaker_window: int = opt(20, gt=0)
    breaker_cooldown: float = opt(30.0, gt=0)  # seconds an open circuit stays open; the most a reopening holds
    headers: dict[str, str] = field(default_factory=dict)
    allow_any_model: bool = False
    models: dict[str, ModelSpec] = field(default_factory=dict)
    quirks: Quirks = field(default_factory=Quirks)  # OpenAI-kind quirks (see docs/providers.md)

    @property
    def read_timeout(self) -> float:
        """Deprecated name of ``idle_timeout``."""
        return self.idle_timeout

    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) or None if self.api_key_env else None

    def model(self, model_id: str) -> ModelSpec | None:
        spec = self.models.get(model_id)
        if spec is None and self.allow_any_model:
            spec = ModelSpec(id=model_id)
        return spec


@dataclass(frozen=True)
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = 3456
    default_profile: str = "balanced"
    max_body_bytes: int = opt(32 * 1024 * 1024, gt=0)
    grace_seconds: float = opt(10.0, gt=0, why="seconds in-flight responses get")
    ping_interval: float = 10.0
    simulator_speed: float = 1.0  # 0 = instant (tests); 2 = twice as fast as the catalog says
    max_concurrent_requests: int = opt(2048, gt=0)  # beyond it requests are answered 529 (overloaded)
    send_window: int = opt(64, gt=0)  # request bodies being sent to one provider at once (server/request/sending.py)
    max_header_bytes: int = opt(16384, gt=0)  # one request header line
    max_headers: int = opt(128, gt=0)
    # seconds a client has to send a request's head once it connects (or starts its next request); then the
    # connection is closed (server/process/connection.py)
    header_timeout: float = opt(10.0, gt=0)
    max_pending_heads: int = opt(1024, gt=0)  # connections sending their head at once; beyond it, closed at once


@dataclass(frozen=True)
class LogConfig:
    enabled: bool = True  # write the JSONL request log (metrics and -v lines work either way)
    bodies: bool = False
    body_max_bytes: int = 64 * 1024
    rotate_bytes: int = 50 * 1024 * 1024
    rotate_keep: int = 5


@dataclass(frozen=True)
class AuthConfig:
    api_keys: tuple[str, ...] = ()
    api_keys_env: str = ""  # a variable holding more keys, comma-separated
    #: store keys while the store cannot be read: "closed" answers 503; "open" goes on with each key, budget and
    #: rpm/tpm count as last read and this process's own counts (docs/operations.md "Keys")
    on_store_down: str = opt("closed", choices=("open", "closed"))


@dataclass(frozen=True)
class BatchConfig:
    """Message Batches run by the proxy itself (docs/operations.md "Batches and Files")."""
    concurrency: int = opt(16, gt=0)  # items of one batch in flight at once
    per_provider_concurrency: int = opt(32, gt=0)  # batch items in flight per provider, all batches together
    max_requests: int = opt(100_000, gt=0)  # items per batch
    max_bytes: int = opt(256 * 1024 * 1024, gt=0)  # size of one create request
    expiry_hours: float = opt(24.0, gt=0)  # unfinished items then end as "expired"
    #: batch work pauses while at least this many live requests are in flight (0: never pause)
    yield_in_flight: int = opt(4, ge=0)
    native_poll_seconds: float = opt(30.0, gt=0)  # how often a native (Anthropic) batch's status is mirrored
    #: how often each instance looks for unfinished batches, their cancels and leases that passed
    poll_seconds: float = opt(1.0, gt=0)
    #: an item's lease (renewed every third of it while the item runs): how long a dead instance's items wait
    lease_seconds: float = opt(15.0, gt=0)


@dataclass(frozen=True)
class FilesConfig:
    max_bytes: int = opt(500 * 1024 * 1024, gt=0)  # one uploaded file
    #: what the files a request references may add to it once inlined (base64 counted), all references
    #: together; more is a 413. Anthropic takes requests up to 32 MB.
    max_inline_bytes: int = opt(32 * 1024 * 1024, gt=0)


#: the environment variable naming the store's database; when set it wins over ``[store] url``
DATABASE_URL_ENV = "LLMPROXY_DATABASE_URL"


@dataclass(frozen=True)
class StoreConfig:
    """Where batches and files are kept (docs/scaling.md): SQLite under LLMPROXY_HOME unless a PostgreSQL URL
    is given here or in $LLMPROXY_DATABASE_URL (which wins)."""
    url: str = ""  # postgresql://user:password@host:port/db (its password is never shown); "" = SQLite
    pool_size: int = opt(10, gt=0)  # connections this instance keeps to PostgreSQL at most
    heartbeat_seconds: float = opt(5.0, gt=0)  # how often this instance writes its registry row (status --fleet)
    ledger_flush_seconds: float = opt(1.0, gt=0)  # how often the usage ledger's buffer is written to the store


@dataclass(frozen=True)
class RoutingConfig:
    """What keyword routing may spend on one request's text, whatever the profile (docs/routing.md "Bounded
    work"). Global, not per profile: the client picks the profile, so the bound on the event loop is the
    operator's, one number for every request. The upper bounds keep the worst case near 0.2 s of the loop."""
    #: keyword matching reads at most the last this many characters of the latest human text (~0.6 ms per KiB)
    window_chars: int = opt(32 * 1024, ge=1024, le=256 * 1024, why="characters keyword matching reads")
    #: more occurrences of the profile's terms than this in what it reads: keywords are not matched (the default
    #: route, with a "routing budget" reason); each occurrence is weighed in its context (~20 us)
    match_budget: int = opt(512, ge=16, le=10_000, why="term occurrences keyword matching weighs")


# ---------------------------------------------------------------------------------------------- reading

_BAD = object()  # a value that failed its check (the problem is already recorded)
_hints: dict[type, dict[str, Any]] = {}


def option_names(cls: type) -> set[str]:
    """The keys a ``cls`` table accepts: its fields (minus the one named by the table key) and their aliases."""
    return {n for f in fields(cls) if not f.metadata.get("key") for n in (f.name, *f.metadata.get("aliases", ()))}


def unalias(cls: type, table: dict) -> dict:
    """``table`` with deprecated keys renamed to their field (the field's own key wins if both are given)."""
    out = dict(table)
    for f in fields(cls):
        for alias in f.metadata.get("aliases", ()):
            if alias in out:
                out.setdefault(f.name, out.pop(alias))
    return out


class Reader:
    """Typed reads from TOML tables with problems recorded as 'file: key.path: message'."""

    def __init__(self, source: str, problems: list[str]):
        self.source, self.problems = source, problems

    def problem(self, where: str, message: str) -> None:
        self.problems.append(f"{self.source}: {where}: {message}" if self.source else f"{where}: {message}")

    def get(self, table: dict, key: str, typ: Any, default: Any, where: str) -> Any:
        if key not in table:
            return default
        val = self.value(table[key], typ, f"{where}.{key}" if where else key)
        return default if val is _BAD else val

    def table(self, table: dict, key: str, where: str) -> dict:
        val = table.get(key, {})
        if not isinstance(val, dict):
            self.problem(f"{where}.{key}" if where else key, "expected a table")
            return {}
        return val

    def section(self, cls: type, data: dict, key: str) -> Any:
        val = self.value(data.get(key, {}), cls, key)
        return cls() if val is _BAD else val

    def build(self, cls: type, table: dict, where: str, key: str | None = None) -> Any:
        """``cls`` from a table: every field read and checked, every other key reported unknown."""
        if cls not in _hints:
            _hints[cls] = typing.get_type_hints(cls)
        hints = _hints[cls]
        table, kw = unalias(cls, table), {}
        for f in fields(cls):
            meta, here = f.metadata, f"{where}.{f.name}"
            required = f.default is MISSING and f.default_factory is MISSING
            if meta.get("key"):
                kw[f.name] = key
                continue
            if f.name in table:
                val = self.value(table[f.name], hints[f.name], here)
                if val is not _BAD and (val := self.check(val, meta, here)) is not _BAD:
                    kw[f.name] = val
                    continue
            elif required:
                choices = meta.get("choices")
                self.problem(here, "required" + (f" (one of {', '.join(choices)})" if choices else ""))
            if required:
                kw[f.name] = meta.get("fallback")
        known = option_names(cls)
        special = getattr(cls, "unknown_key", None)  # e.g. "unknown quirk": then the known ones are listed
        for k in table:
            if k not in known:
                self.problem(f"{where}.{k}", f"{special} (known: {', '.join(sorted(known))})" if special
                             else "unknown key")
        return cls(**kw)

    def check(self, val: Any, meta: Any, where: str) -> Any:
        why = f" ({meta['why']})" if meta.get("why") else ""
        if meta.get("choices") and val not in meta["choices"]:
            self.problem(where, f"must be one of {', '.join(meta['choices'])}, got {val!r}")
        elif meta.get("gt") is not None and val is not None and val <= meta["gt"]:
            self.problem(where, f"must be greater than {meta['gt']}{why}")
        elif meta.get("ge") is not None and val is not None and val < meta["ge"]:
            self.problem(where, f"must be at least {meta['ge']}{why}")
        elif meta.get("le") is not None and val is not None and val > meta["le"]:
            self.problem(where, f"must be at most {meta['le']}{why}")
        else:
            return val
        return _BAD

    def value(self, val: Any, typ: Any, where: str, key: str | None = None) -> Any:
        """``val`` checked against a type annotation (int is accepted for float, bool is not an int)."""
        origin, args = typing.get_origin(typ), typing.get_args(typ)
        if origin in (types.UnionType, typing.Union):
            return self.value(val, next(a for a in args if a is not type(None)), where, key)
        if is_dataclass(typ) or origin is dict:
            if not isinstance(val, dict):
                self.problem(where, "expected a table")
                return _BAD
            if origin is not dict:
                return self.build(typ, val, where, key)
            items = {str(k): self.value(v, args[1], f"{where}.{k}", str(k)) for k, v in val.items()}
            return {k: v for k, v in items.items() if v is not _BAD}
        if origin in (tuple, list):
            if not isinstance(val, list):
                self.problem(where, "expected a list")
                return _BAD
            items = [self.value(v, args[0], f"{where}[{i}]") for i, v in enumerate(val)]
            return origin(v for v in items if v is not _BAD)
        ok_types = typ if isinstance(typ, tuple) else (typ,)
        if float in ok_types and isinstance(val, int) and not isinstance(val, bool):
            val = float(val)
        if not isinstance(val, ok_types) or (isinstance(val, bool) and bool not in ok_types):
            names = "/".join(t.__name__ for t in ok_types)
            self.problem(where, f"expected {names}, got {type(val).__name__}")
            return _BAD
        return val
