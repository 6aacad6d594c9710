"""Measure the offline token estimate (llmproxy.protocol.tokens) against a real BPE tokenizer.

Usage: python scripts/token_estimate_error.py --tokenizer PATH/tokenizer.json [--requests DIR]

The tokenizer is Claude's legacy BPE vocabulary (``anthropic/tokenizer.json`` inside the ``anthropic==0.34.2``
wheel on PyPI; needs the ``tokenizers`` package). It is not the tokenizer of current models, so the figure is
an order-of-magnitude check of the estimate, not a guarantee. Requests default to the recorded Claude Code
traffic in ../shared/claude-code/requests (read in place, never copied).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

from llmproxy.protocol import tokens


def texts(obj) -> list[str]:
    """Every string the model would read: text, tool names/descriptions/schemas, tool inputs and results."""
    out: list[str] = []
    if isinstance(obj, str):
        out.append(obj)
    elif isinstance(obj, list):
        for v in obj:
            out += texts(v)
    elif isinstance(obj, dict):
        if obj.get("type") in ("image", "document") and isinstance(obj.get("source"), dict):
            return out
        for k, v in obj.items():
            if k in ("cache_control", "type", "signature", "id", "tool_use_id"):
                continue
            out += texts(v) if not isinstance(v, (int, float, bool)) or isinstance(v, bool) else [str(v)]
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--requests", default=str(Path(__file__).resolve().parents[2] / "shared/claude-code/requests"))
    args = ap.parse_args()
    from tokenizers import Tokenizer

    tok = Tokenizer.from_file(args.tokenizer)
    rows = []
    for f in sorted(Path(args.requests).glob("*/*.json")):
        rec = json.loads(f.read_text())
        body = rec.get("body")
        if not isinstance(body, dict) or "messages" not in body:
            continue
        parts = {k: body[k] for k in ("system", "tools", "messages") if k in body}
        real = len(tok.encode("\n".join(texts(parts))).ids)
        est = tokens.estimate(body, len(json.dumps(body, separators=(",", ":")).encode()))
        rows.append((f.parent.name + "/" + f.name[:3], real, est, (est - real) / real))
    errs = [abs(r[3]) for r in rows]
    for name, real, est, e in rows:
        print(f"{name:<32} real {real:>7} est {est:>7} error {e:+.1%}")
    print(f"\n{len(rows)} requests: mean |error| {statistics.mean(errs):.1%}, median {statistics.median(errs):.1%}, "
          f"max {max(errs):.1%}; signed mean {statistics.mean(r[3] for r in rows):+.1%}")


if __name__ == "__main__":
    main()
