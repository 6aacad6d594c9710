"""Fitting a validated Anthropic request to the model it is sent to (``adapt_for_model``). Its edits touch
top-level fields only, and the body itself comes back when nothing changes, so a passthrough can forward the
client's bytes (``providers/base.RetryCopy`` keeps just the edited fields' original values for a fallback).
"""

from __future__ import annotations

THINKING_BUDGET_DEFAULT = 16_000


def adapt_for_model(body: dict, model: str, spec) -> dict:
    """The request as the target model accepts it. Returns ``body`` itself (same object) when nothing needs
    changing, so the caller can forward the original bytes untouched.

    A request routed away from the model it was written for may carry fields that model rejects:
    ``thinking: {type: adaptive}`` and ``output_config.effort`` (Claude Code sends both to Opus-class
    models), or a ``max_tokens`` above the model's output limit.
    """
    changes: dict = {}
    drop: list[str] = []
    if body.get("model") != model:
        changes["model"] = model
    if spec is not None:
        max_tokens = body.get("max_tokens")
        if isinstance(max_tokens, int) and max_tokens > spec.max_output:
            changes["max_tokens"] = max_tokens = spec.max_output
        th = body.get("thinking")
        if isinstance(th, dict) and th.get("type") in ("adaptive", "enabled"):
            if not spec.thinking:
                drop.append("thinking")
                if "context_management" in body:
                    drop.append("context_management")
            elif th.get("type") == "adaptive" and not spec.adaptive_thinking:
                if isinstance(max_tokens, int) and max_tokens > 1024 + 1:
                    changes["thinking"] = {"type": "enabled",
                                           "budget_tokens": min(THINKING_BUDGET_DEFAULT, max_tokens - 1)}
                else:
                    drop.append("thinking")
            elif th.get("type") == "enabled" and isinstance(max_tokens, int):
                budget = th.get("budget_tokens")
                if isinstance(budget, int) and budget >= max_tokens:
                    changes["thinking"] = {**th, "budget_tokens": max(1024, max_tokens - 1)}
        oc = body.get("output_config")
        if isinstance(oc, dict) and "effort" in oc and not spec.effort:
            rest = {k: v for k, v in oc.items() if k != "effort"}
            if rest:
                changes["output_config"] = rest
            else:
                drop.append("output_config")
    if not changes and not drop:
        return body
    out = {k: v for k, v in body.items() if k not in drop}
    out.update(changes)
    return out
