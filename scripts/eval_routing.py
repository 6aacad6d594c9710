"""Score keyword routing on the labelled prompt set: precision/recall per concept and overall, on the tuning
half and on the held-out half, plus a confusion list.

Usage: python scripts/eval_routing.py [--prompts FILE] [--split tune|heldout|all] [--quiet]
The bar (tests/routing/test_eval.py): on the held-out half, the intelligent profile escalates with
precision >= 0.95 and recall >= 0.90, overall and on its non-English prompts.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from llmproxy import config, routing
from llmproxy.routing import evaluate

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--prompts", type=Path, default=REPO / "tests" / "routing" / "prompts.jsonl")
    ap.add_argument("--split", choices=("tune", "heldout", "all"), default="all")
    ap.add_argument("--quiet", action="store_true", help="no confusion list")
    args = ap.parse_args()
    cfg, _ = config.load(strict=False)
    ps = routing.compile_profiles(cfg)
    rows = evaluate.load(args.prompts)
    for split in (("tune", "heldout") if args.split == "all" else (args.split,)):
        results = evaluate.run([r for r in rows if r["split"] == split], cfg, ps)
        text = evaluate.report(results, split)
        if args.quiet:
            text = text.split("\nconfusions")[0]
        print(text, end="\n\n")


if __name__ == "__main__":
    main()
