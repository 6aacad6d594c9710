"""The blind labelled set (blind.jsonl, written without seeing the concept files; see BLIND.md): its composition and
the escalation bars of the intelligent profile on its held-out half, which no tuning has read.

Issue 23's bar on the blind held-out half is precision >= 0.95 and recall >= 0.90. Reached (knowledge graph with
question forms, typo tolerance, the small-task guard, and the learned signal trained on the tune halves plus
blind_train.jsonl, a second set written blind for training only): precision 0.974, recall 0.905 (76 of 84;
non-English 0.963 / 0.812). Failure messages print numbers only, never held-out texts.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llmproxy import config, routing
from llmproxy.routing import evaluate

ROWS = evaluate.load(Path(__file__).with_name("blind.jsonl"))
CFG, _ = config.load(strict=False)
PS = routing.compile_profiles(CFG)

ISSUE_PRECISION = 0.95
ISSUE_RECALL = 0.90


def test_blind_set_composition():
    assert len(ROWS) >= 300 and len({r["id"] for r in ROWS}) == len(ROWS)
    assert {r["split"] for r in ROWS} == {"tune", "heldout"}
    assert sum(r["kind"] == "trap" for r in ROWS) >= 0.5 * len(ROWS)
    assert sum(r["lang"] != "en" for r in ROWS) >= 0.25 * len(ROWS)


@pytest.fixture(scope="module")
def heldout():
    rows = [r for r in ROWS if r["split"] == "heldout" and r["profile"] == "intelligent"]
    return evaluate.escalation(evaluate.run(rows, CFG, PS))


def _numbers(e: dict) -> str:
    return f"precision {e['precision']:.3f} recall {e['recall']:.3f} (tp {e['tp']} fp {e['fp']} fn {e['fn']})"


def test_blind_heldout_precision_meets_the_issue_bar(heldout):
    assert heldout["precision"] >= ISSUE_PRECISION, _numbers(heldout)


def test_blind_heldout_recall_meets_the_issue_bar(heldout):
    assert heldout["recall"] >= ISSUE_RECALL, _numbers(heldout)
