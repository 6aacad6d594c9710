"""The labelled prompt set: its composition, and the held-out bars for the intelligent profile."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmproxy import config, routing
from llmproxy.routing import evaluate

PROMPTS = Path(__file__).with_name("prompts.jsonl")
ROWS = evaluate.load(PROMPTS)
CFG, _ = config.load(strict=False)
PS = routing.compile_profiles(CFG)


def test_prompt_set_composition():
    assert len(ROWS) >= 300
    assert len({r["id"] for r in ROWS}) == len(ROWS)
    assert {r["split"] for r in ROWS} == {"tune", "heldout"}
    assert sum(r["kind"] == "trap" for r in ROWS) >= 0.40 * len(ROWS)
    assert sum(r["lang"] != "en" for r in ROWS) >= 0.15 * len(ROWS)
    for name, prof in PS.items():  # every routing concept of every bundled KG is covered, on both halves
        for c in prof.kg.concepts.values():
            if not c.absorber:
                for split in ("tune", "heldout"):
                    assert any(r["profile"] == name and r["label"] == c.name and r["split"] == split for r in ROWS), \
                        (name, c.name, split)


@pytest.fixture(scope="module")
def heldout():
    rows = [r for r in ROWS if r["split"] == "heldout" and r["profile"] == "intelligent"]
    return evaluate.run(rows, CFG, PS)


@pytest.mark.parametrize("part", ["all", "non-English"])
def test_heldout_bars(heldout, part):
    rs = heldout if part == "all" else [r for r in heldout if r.row["lang"] != "en"]
    e = evaluate.escalation(rs)
    assert e["precision"] >= 0.95 and e["recall"] >= 0.90, evaluate.report(rs, f"held-out, {part}")
