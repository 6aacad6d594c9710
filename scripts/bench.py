"""llmproxy's benchmark of record (`make bench`): proxy cost measured side by side with a direct client.

Every party runs in its own process on 127.0.0.1: a fake upstream (``scripts/bench/upstream.py``, Anthropic
and OpenAI kinds), the working tree's proxy (``python -m llmproxy serve``) and, with ``--baseline REF``, the
proxy of REF from a temporary ``git worktree``. The client (this process) sends the same requests to the
upstream directly ("direct") and through each proxy, in interleaved rounds with the parties' order shuffled
every round, so a noisy machine shifts all of them alike; figures are medians and ratios.

Matrix: bodies (1 KB, ~90 KB Claude-Code-shaped, see ``scripts/bench/bodies.py``) x paths (passthrough to
the Anthropic-kind provider; translated to the OpenAI-kind provider, for which "direct" is the equivalent
Chat Completions request) x stream / non-stream x concurrency 1 / 16 / 64. Measured per cell: latency and
stream TTFB at c=1 (added = proxy - direct, p50/p99), throughput at each c (req/s and x direct), proxy CPU
ms/request (utime+stime of the proxy's processes from /proc/PID/stat around each batch, pooled), RSS.
Then: start-up to ready (until /health answers) and idle RSS; N concurrent long streams of the ~90 KB body
per proxy and path, each on a fresh proxy (errors, RSS peak, RSS 30 s after); ``--workers 2`` vs 1 when
``llmproxy serve --help`` offers ``--workers``.

Results: markdown on stdout and in docs/BENCHMARKS.md, where each kind of run (the full run; ``--streams N``
alone) replaces only its own section and the hand-written notes below the marker line are kept. The issue's
targets are listed with met / not met. Everything runs on loopback; every loop is bounded in count and time;
processes, temp homes and the worktree are removed at the end, on failure and on Ctrl-C / SIGTERM.

This file is the entry point (arguments, the order of the phases); the parts are in ``scripts/bench/``:
``procs`` (processes, /proc readings, Cleanup), ``parties`` (starting the upstream, the relay and the
proxies; Variant, the baseline worktree), ``client`` (Target, Stats, one request, a batch), ``phases``
(sanity, the matrix, long streams, start-ups), ``figures`` and ``report`` (the summary and the markdown),
``doc`` (the machine, docs/BENCHMARKS.md), ``bodies``, ``upstream`` and ``relay``.

Usage: python scripts/bench.py [--baseline REF] [--rounds 3] [--quick] [--parts startup,matrix,streams]
       python scripts/bench.py --streams 1000 [--baseline REF]   # the 1,000-streams run alone (~2 min)
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import signal
import sys
import tempfile
import time
from pathlib import Path

from bench.doc import machine, write_doc
from bench.parties import Variant, create_baseline, start_proxy, start_relay, start_upstream
from bench.phases import measure_startups, run_matrix, run_streams, sanity
from bench.procs import REPO, Cleanup, get_json, log, rss_mb
from bench.report import render


def parse_args() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--baseline", metavar="REF", help="also run the proxy of this git ref, side by side")
    ap.add_argument("--parts", help="comma list of startup, matrix, streams (default: all three; with --streams "
                                    "given, streams alone)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--n1", type=int, default=40, help="requests per batch at c=1")
    ap.add_argument("--n16", type=int, default=96, help="requests per batch at c=16")
    ap.add_argument("--n64", type=int, default=192, help="requests per batch at c=64")
    ap.add_argument("--batch-seconds", type=float, default=20, help="a batch stops issuing requests after this")
    ap.add_argument("--concurrency", default="1,16,64")
    ap.add_argument("--bodies", default="small,cc")
    ap.add_argument("--paths", default="pass,xlate")
    ap.add_argument("--modes", default="stream,json")
    ap.add_argument("--deltas", type=int, default=200, help="text deltas per streamed answer")
    ap.add_argument("--streams", type=int, help="concurrent long streams per proxy and path (default 200)")
    ap.add_argument("--stream-seconds", type=float, default=0, help="length of a long stream (default: "
                                                                   "max(10, streams/50))")
    ap.add_argument("--startups", type=int, default=3, help="start-ups measured per proxy")
    ap.add_argument("--workers", type=int, default=2, help="worker count compared with 1, if serve offers it")
    ap.add_argument("--quick", action="store_true", help="a short smoke run (1 round, small batches, 50 streams)")
    ap.add_argument("--out", default=str(REPO / "docs" / "BENCHMARKS.md"))
    ap.add_argument("--no-write", action="store_true", help="print only; leave docs/BENCHMARKS.md alone")
    a = ap.parse_args()
    a.parts = a.parts or ("streams" if a.streams else "startup,matrix,streams")
    a.streams = a.streams or 200
    if a.quick:
        a.rounds, a.n1, a.n16, a.n64, a.startups = 1, 10, 32, 64, 1
        a.streams = min(a.streams, 50)
    a.parts = a.parts.split(",")
    a.concurrency = [int(x) for x in a.concurrency.split(",")]
    a.bodies, a.paths, a.modes = a.bodies.split(","), a.paths.split(","), a.modes.split(",")
    a.stream_seconds = a.stream_seconds or max(10.0, a.streams / 50)
    a.slow_deltas = 100
    a.slow_delay_ms = a.stream_seconds * 1000 / a.slow_deltas
    for name, allowed in (("bodies", {"small", "cc"}), ("paths", {"pass", "xlate"}), ("modes", {"stream", "json"}),
                          ("parts", {"startup", "matrix", "streams"})):
        bad = set(getattr(a, name)) - allowed
        if bad:
            ap.error(f"--{name}: unknown {', '.join(sorted(bad))} (known: {', '.join(sorted(allowed))})")
    return a


def main() -> int:
    args = parse_args()
    def interrupted(signum, frame):  # SIGTERM/SIGHUP clean up like Ctrl-C
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupted)
    signal.signal(signal.SIGHUP, interrupted)
    cl = Cleanup()
    t_run = time.perf_counter()
    try:
        mach = machine()
        work = Path(tempfile.mkdtemp(prefix="llmproxy-bench-"))
        cl.dirs.append(work)
        variants = [Variant("new", REPO, mach["rev"])]
        if args.baseline:
            log(f"creating a worktree of {args.baseline}")
            variants.append(create_baseline(cl, args.baseline))
        for v in variants:
            v.check(work)
            log(f"{v.label}: llmproxy from {v.imported_from}; --workers {'offered' if v.has_workers else 'not offered'}")
        up = start_upstream(cl, work, args.slow_deltas, args.slow_delay_ms, args.deltas)
        notes = [f"fake upstream pid {up.pid} (`scripts/bench/upstream.py`), one process for both kinds"]
        startup = res = streams = None
        rss_after: dict = {}
        if "startup" in args.parts:
            log(f"start-up: {args.startups} per proxy")
            startup = measure_startups(cl, variants, up, args.startups)
        if "matrix" in args.parts:
            proxies = {}
            for v in variants:
                p, _, _ = start_proxy(cl, v, up.port, workers=1 if v.has_workers else None)
                proxies[v.label] = p
            w2 = None
            if variants[0].has_workers:
                w2, _, _ = start_proxy(cl, variants[0], up.port, workers=args.workers)
            else:
                notes.append("`--workers 1` vs `--workers 2`: skipped, the working tree's `serve` has no `--workers`")
            notes += asyncio.run(sanity(up, proxies | ({"new-w2": w2} if w2 else {})))
            relay = start_relay(cl, work, up.port) if "pass" in args.paths else None
            if relay is not None:
                notes.append(f"bare relay pid {relay.pid} (`scripts/bench/relay.py`): the passthrough floor")
            gc.collect()
            gc.freeze()  # the client's own garbage collection should not run through the big payloads
            res = asyncio.run(run_matrix(args, up, proxies, w2, relay))
            if relay is not None:
                cl.stop(relay)
            for name, p in {**proxies, **({"new-w2": w2} if w2 else {})}.items():
                rss_after[name] = (p.rss(), rss_mb(p.pid, p.tree, "VmHWM"))
            bad = get_json(up.port, "/stats")["bad"]
            notes.append(f"the upstream checked a sample of the proxied requests: {len(bad)} malformed"
                         + (f" ({bad[0]})" if bad else ""))
            for p in list(proxies.values()) + ([w2] if w2 else []):
                cl.stop(p)
        if "streams" in args.parts:
            streams = asyncio.run(run_streams(args, cl, variants, up))
        text, targets = render(args, mach, variants, notes, startup, res, rss_after, streams)
        text += f"\n\nWall time of the run: {time.perf_counter() - t_run:.0f} s."
        print(text)
        if not args.no_write:
            write_doc(Path(args.out), text, args.parts, args.streams)
            log(f"written to {args.out}")
        return 0
    except KeyboardInterrupt:
        log("interrupted; cleaning up")
        return 130
    finally:
        cl.close()


if __name__ == "__main__":
    sys.exit(main())
