"""The Router: compiled profiles plus the config they route over, and the one place where the profile a
request uses is resolved.

Precedence, highest first (each caller passes the names it has, in this order):

1. an explicit choice made for this one call (``route-test --profile``, the ``profile`` field of
   ``POST /api/route``);
2. the URL prefix ``/p/<name>/…``;
3. the ``x-llmproxy-profile`` request header;
4. ``server.default_profile``.

A request may still switch profile from inside: ``model: "profile:<name>"`` is an override that
``decide()`` honours (it is part of the request, so it is a routing decision, not a resolution).
An unknown name is a 400 naming the valid ones, whichever way it came in.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from llmproxy.config import Config
from llmproxy.errors import InvalidRequest
from llmproxy.routing import intent
from llmproxy.routing.decide import CompiledProfile, Decision, decide
from llmproxy.routing.kg import KnowledgeGraph, load_dir

PROFILE_HEADER = "x-llmproxy-profile"


class UnknownProfile(InvalidRequest):
    """A profile name that no profile file defines."""


def compile_profiles(cfg: Config) -> dict[str, CompiledProfile]:
    """Build every profile's automaton, and load the learned intent model for the profiles that use it (one copy
    per process). Raises KGError on a malformed concept file."""
    out = {}
    for name, prof in cfg.profiles.items():
        kg = load_dir(prof.kg_dir) if prof.kg_dir else KnowledgeGraph()
        out[name] = CompiledProfile(prof, kg, intent.load() if prof.intent_threshold > 0 else None)
    return out


@dataclass(frozen=True)
class Router:
    cfg: Config
    profiles: Mapping[str, CompiledProfile]

    @classmethod
    def build(cls, cfg: Config) -> Router:
        """Compile every profile of ``cfg``. Raises KGError on a malformed concept file."""
        return cls(cfg, compile_profiles(cfg))

    @property
    def default_profile(self) -> str:
        return self.cfg.server.default_profile

    def names(self) -> list[str]:
        return sorted(self.profiles)

    def profile(self, *names: str | None) -> CompiledProfile:
        """The first non-empty name in ``names`` (callers pass them in the precedence order above), else the
        default profile. Raises UnknownProfile (400) for a name no profile has."""
        name = next((n for n in names if n), None) or self.default_profile
        prof = self.profiles.get(name)
        if prof is None:
            raise UnknownProfile(f"unknown profile {name!r}; valid profiles: {', '.join(self.names())}")
        return prof

    def decide(self, body: dict, profile: CompiledProfile | str | None = None, *,
               headers: Mapping[str, str] | None = None, raw_len: int | None = None,
               endpoint: str = "messages") -> Decision:
        """Route one request with ``profile`` (a compiled profile, a name, or None for the default)."""
        prof = profile if isinstance(profile, CompiledProfile) else self.profile(profile)
        return decide(body, prof, self.cfg, self.profiles, headers=headers, raw_len=raw_len, endpoint=endpoint)
