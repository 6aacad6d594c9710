"""No recorded Claude Code request changes route: every request recorded from Claude Code 2.1.197
(../shared/claude-code/requests, outside the repository) routed with every bundled profile gives the scenario,
concept and target it gave before issue 23 (recorded_routes.json, written at 8304c0d). Skipped where the
recordings are not present."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from llmproxy import config, routing

RECORDED = Path(__file__).resolve().parents[3] / "shared" / "claude-code" / "requests"
EXPECTED = json.loads(Path(__file__).with_name("recorded_routes.json").read_text(encoding="utf-8"))


@pytest.mark.skipif(not RECORDED.is_dir(), reason="the Claude Code recordings are not on this machine")
def test_recorded_claude_code_requests_keep_their_routes():
    cfg, _ = config.load(strict=False)
    ps = routing.compile_profiles(cfg)
    got = {}
    for f in sorted(RECORDED.glob("*/*.json")):
        rec = json.loads(f.read_bytes())
        body = rec.get("body")
        if not isinstance(body, dict) or "messages" not in body:
            continue
        headers = {k.lower(): v for k, v in rec["headers"].items()}
        endpoint = "count_tokens" if "-count-" in f.name else "messages"
        for name in sorted(ps):
            d = routing.decide(body, ps[name], cfg, ps, headers=headers, endpoint=endpoint)
            got[f"{f.parent.name}/{f.name}/{name}"] = [d.scenario, d.concept, str(d.target)]
    assert len(got) == len(EXPECTED)
    changed = {k: (EXPECTED[k], v) for k, v in got.items() if EXPECTED.get(k) != v}
    assert not changed, changed
