"""Routing: scenarios, the keyword knowledge graph, ``decide()`` and the ``Router`` that resolves profiles.
Pure; depends on config and protocol."""

from __future__ import annotations

from llmproxy.routing.decide import CompiledProfile, Decision, decide, parse_override
from llmproxy.routing.kg import KGError, KnowledgeGraph, load_dir
from llmproxy.routing.router import PROFILE_HEADER, Router, UnknownProfile, compile_profiles

__all__ = ["CompiledProfile", "Decision", "decide", "parse_override", "compile_profiles", "KGError",
           "KnowledgeGraph", "load_dir", "PROFILE_HEADER", "Router", "UnknownProfile"]
