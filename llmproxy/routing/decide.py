"""``decide(request, profile) -> Decision``: the single place routing happens. Pure, no I/O.

Scenario precedence (first that fires wins): override, image, long_context, web_search, background,
compact, subagent, keyword, think, default. The server calls this for every /v1/messages and count_tokens
request; ``llmproxy route-test`` and ``POST /api/route`` call the very same function.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property

import orjson

from llmproxy.config import Config, ProfileConfig, RoutingConfig, Target
from llmproxy.errors import InvalidRequest
from llmproxy.protocol import tokens
from llmproxy.routing import scenarios as sc
from llmproxy.routing.intent import INTENT_MIN_WORDS, VETO_MIN_WORDS, IntentModel
from llmproxy.routing.kg import Concept, KnowledgeGraph, Match
from llmproxy.routing.text import keyword_window, latest_human_text, turn_messages

#: keyword matching is skipped (the default route, saying why) when the text it reads holds more occurrences of
#: the profile's terms than ``routing.match_budget`` (by default this many): each occurrence is weighed in its
#: context, and a text made of little else (a term repeated thousands of times) is no request to route by; real
#: prompts hold a few, pasted documents tens
MAX_KEYWORD_HITS = RoutingConfig().match_budget


@dataclass(frozen=True)
class CompiledProfile:
    config: ProfileConfig
    kg: KnowledgeGraph
    intent: IntentModel | None = None  # the learned signal, when the profile sets routing.intent_threshold

    @property
    def name(self) -> str:
        return self.config.name


@dataclass
class Decision:
    profile: str
    scenario: str
    chain: tuple[Target, ...]
    reasons: list[str] = field(default_factory=list)
    concept: str | None = None
    matches: list[Match] = field(default_factory=list)
    estimated_tokens: int = 0
    text: str = ""  # the latest human text the decision read (the simulator echoes it)
    intent: float | None = None  # the learned signal's score, when the profile uses it
    signal: str = ""  # which signal decided: keyword:CONCEPT, intent:SCORE, or a keyword match the intent vetoed

    @property
    def target(self) -> Target:
        return self.chain[0]

    def header(self, served_by: Target | None = None) -> str:
        """The ``x-llmproxy-route`` value; ``served_by`` is the target that answered, when it was a fallback."""
        out = f"profile={self.profile}; scenario={self.scenario}; target={served_by or self.target}"
        if self.signal:
            out += f"; signal={self.signal}"
        if self.concept:
            out += f"; concept={self.concept}"
        return out

    def to_dict(self) -> dict:
        return {
            "profile": self.profile, "scenario": self.scenario, "concept": self.concept,
            "target": str(self.target),
            "chain": [{"provider": t.provider, "model": t.model} for t in self.chain],
            "matches": [{"term": m.term, "concept": m.concept, "start": m.start, "end": m.end,
                         **({"as": m.surface} if m.surface else {}),
                         **({"typo_of": m.typo} if m.typo else {}),
                         **({"suppressed": m.suppressed} if m.suppressed else {})} for m in self.matches],
            "reasons": self.reasons, "estimated_tokens": self.estimated_tokens,
            **({"intent": round(self.intent, 4), "signal": self.signal} if self.intent is not None else {}),
        }


def _dedup(*chains: tuple[Target, ...]) -> tuple[Target, ...]:
    seen: dict[Target, None] = {}
    for ch in chains:
        for t in ch:
            seen.setdefault(t, None)
    return tuple(seen)


def parse_override(model: str, cfg: Config) -> tuple[Target | None, str | None]:
    """(target, profile) named by an override model string, or (None, None) if it is not an override."""
    if model.startswith("profile:"):
        name = model[len("profile:"):].strip()
        if name not in cfg.profiles:
            raise InvalidRequest(f"model: unknown profile {name!r}; valid profiles: {', '.join(sorted(cfg.profiles))}")
        return None, name
    if "," in model:
        try:
            t = Target.parse(model)
        except ValueError as exc:
            raise InvalidRequest(f"model: {exc}") from None
        problem = cfg.target_problem(t)
        if problem:
            raise InvalidRequest(f"model: {problem}")
        return t, None
    return None, None


def _keywords(kg: KnowledgeGraph, human: str, bounds: RoutingConfig) -> tuple[Concept | None, list[Match],
                                                                             str | None, str]:
    """Keyword matching on the part of the human text it reads (``keyword_window``, at most
    ``bounds.window_chars``): (concept, matches with offsets into ``human``, the reason when it holds more than
    ``bounds.match_budget`` term occurrences and nothing was matched, a note on the part read when it is not the
    whole text)."""
    start = keyword_window(human, bounds.window_chars)
    window = human[start:]
    note = (f"keywords read the last {len(window)} of {len(human)} characters of the text (routing.window_chars "
            f"{bounds.window_chars})") if start else ""
    hits = len(kg.candidates(window.lower()))
    if hits > bounds.match_budget:
        where = f"the last {len(window)} characters of the text" if start else "the text"
        return None, [], (f"routing budget: {hits} occurrences of keyword terms in {where} (limit "
                          f"{bounds.match_budget}); keywords not matched (routing.match_budget)"), note
    concept, matches = kg.match(window)
    if start:
        matches = [replace(m, start=m.start + start, end=m.end + start) for m in matches]
    return concept, matches, None, note


def _intent(profile: CompiledProfile, human: str, concept: Concept | None,
            matches: list[Match]) -> tuple[float | None, str, str]:
    """The combination rule of the two signals: (score, signal, reason). The knowledge graph decides when it
    matches, unless the learned score is below ``intent_veto`` (a trigger word inside a small task: no
    escalation; a request shorter than VETO_MIN_WORDS words is never vetoed); without a graph match the score
    escalates when it reaches ``intent_threshold`` on a request of INTENT_MIN_WORDS words or more — unless a
    context rule of the graph suppressed a trigger word (negated, a name or value, a small edit): the explicit
    rule wins. A trigger hidden by masking does not count: the question around a quoted error is the signal."""
    p, model = profile.config, profile.intent
    if model is None or not human:
        return None, "", ""
    reading = model.read(human)
    score, words = reading.score, reading.words
    top = ", ".join(f"{name!r} {w:+.2f}" for name, w in reading.top)
    if concept is not None:
        if score < p.intent_veto and words >= VETO_MIN_WORDS:
            return score, f"keyword:{concept.name} vetoed by intent {score:.2f}", (
                f"keyword:{concept.name} vetoed by intent {score:.2f} (small task: below the veto "
                f"{p.intent_veto:g}; top features {top})")
        return score, f"keyword:{concept.name}", (f"intent {score:.2f} does not veto (veto below {p.intent_veto:g}, "
                                                  f"on {VETO_MIN_WORDS}+ words)")
    ruled = next((m for m in matches if m.suppressed and not m.suppressed.startswith("inside ")), None)
    if ruled is not None and score >= p.intent_threshold:
        return score, "", (f"intent {score:.2f} does not escalate: the graph suppressed {ruled.surface or ruled.term!r} "
                           f"({ruled.suppressed})")
    if score >= p.intent_threshold and words >= INTENT_MIN_WORDS:
        return score, f"intent:{score:.2f}", (f"intent:{score:.2f} escalates without a keyword match (threshold "
                                              f"{p.intent_threshold:g}; top features {top})")
    short = f", and fewer than {INTENT_MIN_WORDS} words" if words < INTENT_MIN_WORDS else ""
    return score, "", f"intent {score:.2f} below the threshold {p.intent_threshold:g}{short} (top features {top})"


def decide(body: dict, profile: CompiledProfile, cfg: Config, profiles: Mapping[str, CompiledProfile],
           headers: Mapping[str, str] | None = None, raw_len: int | None = None,
           endpoint: str = "messages") -> Decision:
    """Route one request. ``endpoint="count_tokens"`` skips keyword and think matching: Claude Code's
    /context sends system-prompt sections as user text there, and a count needs no reasoning model."""
    headers = headers or {}
    p = profile.config
    override = headers.get("x-llmproxy-model") or str(body.get("model", ""))
    target, switch = parse_override(override, cfg)
    if switch is not None and switch != p.name:
        d = decide({**body, "model": "claude"}, profiles[switch], cfg, profiles, headers={}, raw_len=raw_len,
                   endpoint=endpoint)
        d.reasons.insert(0, f"override: {override!r} switched to profile {switch!r}")
        return d
    if raw_len is None:
        raw_len = len(orjson.dumps(body))
    messages = body.get("messages") or []
    human, turn_start = latest_human_text(messages)
    req = _Request(body, headers, profile, tokens.estimate(body, raw_len), messages, human,
                   turn_messages(messages, turn_start))
    if target is not None:
        return req.done("override", (target,), f"override: model field names {target}")
    d = _by_shape(req, cfg)
    if d is not None:
        return d
    if endpoint == "count_tokens":
        return req.done("default", p.default, "count_tokens: keywords are not matched")
    return _by_text(req, cfg.routing)


@dataclass
class _Request:
    """What the scenario steps of one decision read; ``done`` makes the Decision."""

    body: dict
    headers: Mapping[str, str]
    profile: CompiledProfile
    est: int
    messages: list
    human: str
    turn: list

    @cached_property
    def claude_code(self) -> bool:
        """Whether Claude Code sent it (asked once, when a scenario first needs it)."""
        return sc.is_claude_code(self.body, self.headers)

    def route(self, scenario: str) -> tuple[Target, ...] | None:
        return self.profile.config.scenarios.get(scenario)

    def done(self, scenario: str, chain: tuple[Target, ...], reason: str, **kw) -> Decision:
        p = self.profile.config
        return Decision(profile=p.name, scenario=scenario, chain=_dedup(chain, p.default), reasons=[reason],
                        text=self.human, estimated_tokens=self.est, **kw)


def _by_shape(req: _Request, cfg: Config) -> Decision | None:
    """The scenarios the request's shape decides, in precedence order (image, long context, web search,
    background, compact, subagent), or None."""
    p, body, default, est = req.profile.config, req.body, req.profile.config.default, req.est
    if req.route("image") and (why := sc.image(req.turn)):
        return req.done("image", req.route("image"), why)
    primary_spec = cfg.providers[default[0].provider].model(default[0].model) if default else None
    window = primary_spec.context_window if primary_spec else None
    if req.route("long_context") and (est > p.long_context_threshold or (window and est > window)):
        limit = p.long_context_threshold if est > p.long_context_threshold else window
        return req.done("long_context", req.route("long_context"), f"~{est} input tokens > {limit}")
    if (why := sc.web_search(body)) and req.route("web_search"):
        return req.done("web_search", req.route("web_search"), why)
    subagent_why = sc.subagent(body, req.headers)
    if subagent_why is None and (why := sc.background(body, p.background_models, req.claude_code)):
        return req.done("background", req.route("background") or default, why)
    if why := sc.compact(body):
        return req.done("compact", req.route("compact") or default, why)
    if subagent_why:
        return req.done("subagent", req.route("subagent") or default, subagent_why)
    return None


def _by_text(req: _Request, bounds: RoutingConfig) -> Decision:
    """What the human text decides: the budget, plan mode, a concept (unless the learned signal vetoes it),
    think, the learned signal alone, else the default. ``bounds``: what keyword matching may read of it."""
    profile, default = req.profile, req.profile.config.default
    concept, matches, over_budget, note = _keywords(profile.kg, req.human, bounds)
    if over_budget:
        return req.done("default", default, over_budget)
    extra = [note] if note else []
    extra += [f"{m.surface or m.term!r} ({m.concept}) suppressed: {m.suppressed}" for m in matches if m.suppressed]
    hook = profile.kg.hooks.get("plan_mode")
    if hook is not None and (plan_why := sc.plan_mode(req.messages)) and (
            concept is None or hook.priority > concept.priority):
        chain = hook.routes or (req.route(hook.scenario or "keyword") or default)
        d = req.done("keyword", chain, f"concept {hook.name!r} fired by plan mode: {plan_why}", concept=hook.name,
                     matches=matches)
    else:
        d = _concept_or_rest(req, concept, matches, extra)
    d.reasons += extra
    return d


def _concept_or_rest(req: _Request, concept, matches: list, extra: list[str]) -> Decision:
    default = req.profile.config.default
    score, signal, intent_why = _intent(req.profile, req.human, concept, matches)
    extra += [intent_why] if intent_why else []
    if concept is not None and "vetoed" not in signal:
        first = next(m for m in matches if m.concept == concept.name and m.suppressed is None)
        chain = concept.routes or (req.route(concept.scenario or "keyword") or default)
        written = f" as {first.surface!r}" if first.surface else ""
        written += f" (typo of {first.typo!r})" if first.typo else ""
        why = f"concept {concept.name!r} matched {first.term!r}{written} (priority {concept.priority})"
        return req.done("keyword", chain, why, concept=concept.name, matches=matches, intent=score, signal=signal)
    p = req.profile.config
    if (why := sc.think(req.body, req.human, req.claude_code, p.think_budget_threshold, req.turn)) and req.route("think"):
        return req.done("think", req.route("think"), why, matches=matches, intent=score, signal=signal)
    if signal.startswith("intent:"):
        extra.remove(intent_why)
        return req.done("keyword", req.route("keyword") or default, intent_why, matches=matches, intent=score,
                        signal=signal)
    reason = "no scenario fired" if req.human or not req.messages else "no human text and no scenario fired"
    return req.done("default", default, reason, matches=matches, intent=score, signal=signal)
