"""Where the proxy's CPU goes on one benchmark cell: py-spy samples the working tree's proxy while the bench
client drives it (same fake upstream, bodies and config as ``scripts/bench.py``).

Prints the functions with the most samples, inclusive ("in") and self ("self"), as % of the proxy's samples,
and keeps the collapsed stacks (``--out``, for speedscope or flamegraph.pl). Measure before optimising; keep an
optimisation only if ``make bench`` shows it.

Usage: python scripts/profile_proxy.py [--body cc|small] [--path pass|xlate] [--mode stream|json]
                                       [--requests 3000] [--concurrency 16] [--top 40] [--out FILE]
Needs py-spy (``pip install py-spy``; it reads the proxy process, which is our own child).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench.client import Stats, Target, batch, targets_for  # noqa: E402  (scripts/bench/: the bench's parts)
from bench.parties import Variant, start_proxy, start_upstream  # noqa: E402
from bench.procs import REPO, Cleanup  # noqa: E402


def summarize(collapsed: Path, top: int) -> str:
    incl: collections.Counter[str] = collections.Counter()
    self_: collections.Counter[str] = collections.Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if not stack or not n.isdigit():
            continue
        count = int(n)
        total += count
        frames = [f.split(" (")[0] + " " + f.split("(")[-1].rstrip(")").rsplit(":", 1)[0].split("/")[-1]
                  for f in stack.split(";")]
        for f in set(frames):
            incl[f] += count
        self_[frames[-1]] += count
    if not total:
        return "no samples"
    rows = [f"{'in %':>6} {'self %':>6}  function file"]
    for name, n in incl.most_common(top):
        rows.append(f"{100 * n / total:6.1f} {100 * self_[name] / total:6.1f}  {name}")
    rows.append("")
    rows.append("top self:")
    for name, n in self_.most_common(top // 2):
        rows.append(f"{100 * n / total:6.1f}  {name}")
    return f"{total} samples\n" + "\n".join(rows)


async def drive(t: Target, n: int, c: int) -> Stats:
    st = Stats()
    conn = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=conn, timeout=aiohttp.ClientTimeout(total=60)) as s:
        await batch(s, t, min(n, 200), c, Stats(), 60)  # warm-up, not sampled
        spy = subprocess.Popen([PYSPY, "record", "--pid", str(t.proc.pid), "--format", "raw", "--rate", "500",
                                "--nonblocking", "--output", str(OUT[0]), "--duration", "600"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        await asyncio.sleep(1.0)
        t0 = time.perf_counter()
        await batch(s, t, n, c, st, 300)
        st.wall = time.perf_counter() - t0
        spy.send_signal(2)
        spy.wait(30)
    return st


OUT: list[Path] = []
PYSPY = shutil.which("py-spy", path=str(Path(sys.executable).parent)) or shutil.which("py-spy")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--body", default="cc", choices=["cc", "small"])
    ap.add_argument("--path", default="pass", choices=["pass", "xlate"])
    ap.add_argument("--mode", default="stream", choices=["stream", "json"])
    ap.add_argument("--requests", type=int, default=3000)
    ap.add_argument("--concurrency", type=int, default=16)
    ap.add_argument("--top", type=int, default=40)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args()
    if not PYSPY:
        raise SystemExit("py-spy is not installed (pip install py-spy)")
    cl = Cleanup()
    work = Path(tempfile.mkdtemp(prefix="llmproxy-profile-"))
    cl.dirs.append(work)
    OUT.append(args.out or work / "stacks.txt")
    try:
        up = start_upstream(cl, work, 100, 100, 200)
        proxy, _, _ = start_proxy(cl, Variant("new", REPO, "working tree"), up.port)
        t = targets_for(args.body, args.path, args.mode == "stream", up, {"new": proxy})[1]
        cpu0 = proxy.cpu()
        st = asyncio.run(drive(t, args.requests, args.concurrency))
        cpu = proxy.cpu() - cpu0
        print(f"{args.body} {args.path} {args.mode} c={args.concurrency}: {st.n} requests, {st.errors} errors, "
              f"{st.n / st.wall:.0f} req/s, proxy CPU {1000 * cpu / max(1, st.n):.2f} ms/request "
              f"(py-spy's sampling included)")
        print(summarize(OUT[0], args.top))
        if args.out:
            print(f"collapsed stacks: {args.out}")
    finally:
        cl.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
