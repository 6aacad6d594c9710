"""Routing: scenarios, the keyword knowledge graph and ``decide()``. Pure; depends on config and protocol."""

from __future__ import annotations

from llmproxy.config import Config
from llmproxy.routing.decide import CompiledProfile, Decision, decide, parse_override
from llmproxy.routing.kg import KGError, KnowledgeGraph, load_dir

__all__ = ["CompiledProfile", "Decision", "decide", "parse_override", "compile_profiles", "KGError"]


def compile_profiles(cfg: Config) -> dict[str, CompiledProfile]:
    """Build every profile's automaton. Raises KGError on a malformed concept file."""
    out = {}
    for name, prof in cfg.profiles.items():
        kg = load_dir(prof.kg_dir) if prof.kg_dir else KnowledgeGraph()
        out[name] = CompiledProfile(prof, kg)
    return out
