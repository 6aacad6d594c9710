"""Routing benchmarks: decide() on the largest recorded Claude Code request (after JSON parsing) and the
knowledge-graph build for 10 000 terms. Targets: decide <= 100 us median, KG build <= 100 ms.

Usage: python scripts/bench_routing.py [--requests DIR]
Reads the recorded requests in place (../shared/claude-code/requests); without them it builds a large
Claude Code-shaped request from the test shapes.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from llmproxy import config, routing
from llmproxy.routing.kg import build, parse_concept

REPO = Path(__file__).resolve().parents[1]


def largest_request(directory: Path, accept=lambda body, headers: True) -> tuple[str, dict, dict, int]:
    best = None
    for f in directory.glob("*/*.json"):
        raw = f.read_bytes()
        rec = json.loads(raw)
        if isinstance(rec.get("body"), dict) and "messages" in rec["body"] and accept(
                rec["body"], {k.lower(): v for k, v in rec["headers"].items()}):
            body_raw = json.dumps(rec["body"]).encode()
            if best is None or len(body_raw) > best[3]:
                best = (f"{f.parent.name}/{f.name}", rec["body"], {k.lower(): v for k, v in rec["headers"].items()},
                        len(body_raw))
    if best is None:
        raise FileNotFoundError(directory)
    return best


def synthetic_request() -> tuple[str, dict, dict, int]:
    import sys

    sys.path.insert(0, str(REPO))
    from tests.routing import shapes

    body = shapes.tool_followup("help me plan out the migration of the storage layer")
    body["tools"] = shapes.CC_TOOLS * 3
    return "synthetic", body, {}, len(json.dumps(body).encode())


def bench(fn, *, repeat: int, number: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        out.append((time.perf_counter() - t0) / number)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--requests", type=Path, default=REPO.parent / "shared" / "claude-code" / "requests")
    args = ap.parse_args()
    cfg, _ = config.load(strict=False)
    ps = routing.compile_profiles(cfg)
    def full_path(body, headers):  # reaches keyword matching: no earlier scenario fires
        d = routing.decide(body, ps["intelligent"], cfg, ps, headers=headers)
        return d.scenario in ("keyword", "think", "default")

    try:
        cases = [largest_request(args.requests), largest_request(args.requests, full_path)]
    except FileNotFoundError:
        cases = [synthetic_request()]
    for name, body, headers, raw_len in cases:
        bench_decide(cfg, ps, name, body, headers, raw_len)
    bench_kg()


def bench_decide(cfg, ps, name, body, headers, raw_len) -> None:
    print(f"request: {name} ({raw_len / 1024:.0f} KiB, {len(body['messages'])} messages, {len(body.get('tools', []))} tools)")
    for prof in ("intelligent", "fast", "cheap"):
        d = routing.decide(body, ps[prof], cfg, ps, headers=headers, raw_len=raw_len)
        times = bench(lambda p=prof: routing.decide(body, ps[p], cfg, ps, headers=headers, raw_len=raw_len),
                      repeat=15, number=200)
        print(f"decide() [{prof:<11}] median {statistics.median(times) * 1e6:6.1f} us  "
              f"min {min(times) * 1e6:6.1f} us  -> {d.scenario}{':' + d.concept if d.concept else ''}  (target <= 100 us)")


def bench_kg() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        concepts = []
        for i in range(100):
            p = Path(tmp) / f"concept-{i}.md"
            terms = ", ".join(f"term{i}x{j} phrase {j}" for j in range(100))
            p.write_text(f"# c{i}\nsynonyms:: {terms}\nscenario:: keyword\npriority:: {i % 100}\n")
            concepts.append(parse_concept(p))
        n_terms = sum(len(c.terms) for c in concepts)
        builds = bench(lambda: build(concepts), repeat=7, number=1)
        kg = build(concepts)
        text = "please " + " ".join(f"term{i}x{i} phrase {i}" for i in range(0, 100, 7)) + " and then plan"
        matches = bench(lambda: kg.match(text), repeat=10, number=500)
    print(f"KG build ({n_terms} terms) median {statistics.median(builds) * 1e3:6.1f} ms  (target <= 100 ms)")
    print(f"KG match ({len(text)} chars on {n_terms} terms) median {statistics.median(matches) * 1e6:6.1f} us")


if __name__ == "__main__":
    main()
