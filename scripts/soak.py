"""Soak: N concurrent streams through a real llmproxy daemon for a bounded time.

Starts, on 127.0.0.1 only, a slow upstream (an Anthropic-kind fault upstream in "ok" mode whose every stream
takes ``--stream-seconds``) and ``python -m llmproxy serve --port P`` with ``LLMPROXY_HOME`` in a temporary
directory and the ``anthropic`` provider pointed at that upstream. Then ``--streams`` clients each open a
streamed /v1/messages request, read it to ``message_stop``, and start the next, until ``--duration`` is over.
Reports errors (target 0: a non-200, an ``event: error``, a stream without ``message_stop``, a transport
failure), the daemon's RSS at start/peak/end (/proc/PID/status VmRSS) and its open fds before/after
(/proc/PID/fd). Everything it starts it stops, and the temporary directory is removed.

Usage: python scripts/soak.py [--streams 200] [--duration 20] [--stream-seconds 3]
Exit status 1 when any stream failed or the daemon kept more than a few fds it did not have before.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import json
import os
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

REPO = Path(__file__).resolve().parents[1]
MAX_STREAMS, MAX_DURATION = 5000, 600   # the bounds: a soak is never unbounded
UPSTREAM = """
import sys
sys.path.insert(0, {repo!r})
from aiohttp import web
from tests.faults.upstream import FaultUpstream
up = FaultUpstream("slow")
up.delay = {delay!r}
web.run_app(up.app(), host="127.0.0.1", port={port}, print=None, access_log=None, backlog=4096,
            handler_cancellation=True)
"""
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 256, "stream": True,
        "messages": [{"role": "user", "content": "soak: tell me about proxies"}]}
EVENTS_PER_STREAM = 18  # what the fault upstream's "ok" stream sends (for the delay between events)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process {proc.args[:4]} exited with {proc.returncode}")
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"nothing listens on {port}")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def cpu_seconds(pid: int) -> float:
    """User + system CPU time the process has used (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def listen_overflows() -> int:
    """The host's count of connections dropped because a listen queue was full (TcpExt ListenOverflows)."""
    with contextlib.suppress(OSError, ValueError, IndexError):
        head, vals = [ln.split() for ln in Path("/proc/net/netstat").read_text().splitlines()[:2]]
        return int(vals[head.index("ListenOverflows")])
    return 0


def fds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


def upstream_sockets(pid: int, up_port: int) -> int:
    """How many of the daemon's fds are connections to the upstream (idle ones are its keep-alive pool)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        with contextlib.suppress(OSError):
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    n = 0
    for table in ("tcp", "tcp6"):
        with contextlib.suppress(OSError):
            for row in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
                cols = row.split()
                if cols[9] in inodes and int(cols[2].rsplit(":", 1)[1], 16) == up_port:
                    n += 1
    return n


def raise_fd_limit(need: int) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, max(soft, need))
    if want > soft:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))  # inherited by the processes we start
    if want < need:
        print(f"warning: the fd limit ({want}) is below what {need} streams need", file=sys.stderr)


class Stats:
    def __init__(self) -> None:
        self.ok = 0
        self.errors: collections.Counter[str] = collections.Counter()
        self.samples: list[str] = []
        self.ttfb: list[float] = []
        self.durations: list[float] = []

    def error(self, kind: str, detail: str) -> None:
        self.errors[kind] += 1
        if len(self.samples) < 5:
            self.samples.append(f"{kind}: {detail[:300]}")


async def one_stream(session: aiohttp.ClientSession, url: str, payload: bytes, st: Stats) -> None:
    t0 = time.monotonic()
    try:
        async with session.post(url + "/v1/messages", data=payload,
                                headers={"content-type": "application/json"}) as r:
            if r.status != 200:
                st.error(f"status {r.status}", (await r.read()).decode("utf-8", "replace"))
                return
            first, body = None, bytearray()
            async for chunk in r.content.iter_any():
                if first is None:
                    first = time.monotonic() - t0
                body += chunk
        if b"event: error" in body:
            st.error("error event", body[body.find(b"event: error"):].decode("utf-8", "replace"))
        elif not body.endswith(b'event: message_stop\ndata: {"type": "message_stop"}\n\n'):
            st.error("no message_stop", body[-200:].decode("utf-8", "replace"))
        else:
            st.ok += 1
            st.ttfb.append(first or 0.0)
            st.durations.append(time.monotonic() - t0)
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        st.error(type(exc).__name__, str(exc))


async def drive(url: str, streams: int, duration: float, ramp: float, st: Stats) -> None:
    payload = json.dumps(BODY).encode()
    timeout = aiohttp.ClientTimeout(total=120, sock_connect=30)
    connector = aiohttp.TCPConnector(limit=0, force_close=False)
    deadline = time.monotonic() + duration

    async def client(i: int) -> None:
        await asyncio.sleep(ramp * i / streams)  # spread the first connects (the real world does not sync)
        while time.monotonic() < deadline:
            await one_stream(session, url, payload, st)

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        async with asyncio.timeout(duration + 150):  # hard bound whatever happens
            await asyncio.gather(*(client(i) for i in range(streams)))


class Sampler:
    """The daemon's RSS every 0.2 s while the load runs."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak, self._task = pid, rss_kib(pid), None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError):
                self.peak = max(self.peak, rss_kib(self.pid))
            await asyncio.sleep(0.2)

    def __enter__(self) -> Sampler:
        self._task = asyncio.get_running_loop().create_task(self._run())
        return self

    def __exit__(self, *exc) -> None:
        self._task.cancel()


async def health(url: str) -> dict:
    async with aiohttp.ClientSession() as s, s.get(url + "/health") as r:
        return await r.json()


async def soak(url: str, pid: int, up_pid: int, up_port: int, args) -> tuple[Stats, dict]:
    st = Stats()
    # warm-up: one stream, so "start" is a daemon that has served (imports and pools settled)
    await drive(url, 1, 0.1, 0, Stats())
    await asyncio.sleep(0.5)
    fig = {"rss_start_kib": rss_kib(pid), "fds_before": fds(pid)}
    cpu0, up0, me0 = cpu_seconds(pid), cpu_seconds(up_pid), time.process_time()
    overflows0 = listen_overflows()
    t0 = time.monotonic()
    with Sampler(pid) as sampler:
        await drive(url, args.streams, args.duration, args.ramp, st)
        fig["wall_s"] = round(time.monotonic() - t0, 1)
        fig["cpu_s"] = round(cpu_seconds(pid) - cpu0, 1)
        fig["upstream_cpu_s"] = round(cpu_seconds(up_pid) - up0, 1)
        fig["client_cpu_s"] = round(time.process_time() - me0, 1)
        fig["listen_overflows"] = listen_overflows() - overflows0
        await asyncio.sleep(2.0)  # let connections close and the log drain
        fig["rss_peak_kib"] = max(sampler.peak, rss_kib(pid))
    fig["rss_end_kib"] = rss_kib(pid)
    fig["fds_after"] = fds(pid)
    fig["pooled_after"] = upstream_sockets(pid, up_port)
    h = await health(url)
    fig["in_flight_after"] = h.get("in_flight")
    fig["circuits_after"] = h.get("circuits")
    fig["request_log"] = h.get("request_log")
    return st, fig


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--streams", type=int, default=200, help="concurrent streams (default 200)")
    ap.add_argument("--duration", type=float, default=20, help="seconds of load (default 20)")
    ap.add_argument("--stream-seconds", type=float, default=3, help="how long each upstream stream lasts")
    ap.add_argument("--ramp", type=float, default=2, help="seconds over which the streams start")
    ap.add_argument("--keep", action="store_true", help="keep the temporary LLMPROXY_HOME")
    args = ap.parse_args()
    if not 1 <= args.streams <= MAX_STREAMS or not 0 < args.duration <= MAX_DURATION:
        ap.error(f"--streams must be 1..{MAX_STREAMS} and --duration 0..{MAX_DURATION} s")
    raise_fd_limit(3 * args.streams + 256)

    home = Path(tempfile.mkdtemp(prefix="llmproxy-soak-"))
    up_port, port = free_port(), free_port()
    (home / "profiles").mkdir()
    (home / "profiles" / "soak.toml").write_text('description = "soak"\ndefault = "anthropic,claude-sonnet-4-5"\n'
                                                 'fallbacks = []\n')
    (home / "config.toml").write_text(f"""
[server]
default_profile = "soak"
max_concurrent_requests = {max(2048, 2 * args.streams)}
[providers.anthropic]
base_url = "http://127.0.0.1:{up_port}"
""")
    env = {**os.environ, "LLMPROXY_HOME": str(home), "ANTHROPIC_API_KEY": "sk-ant-soak-0000000000",
           "NO_PROXY": "127.0.0.1,localhost"}
    procs: list[subprocess.Popen] = []
    try:
        delay = args.stream_seconds / EVENTS_PER_STREAM
        upstream = subprocess.Popen([sys.executable, "-c", UPSTREAM.format(repo=str(REPO), port=up_port, delay=delay)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=REPO)
        procs.append(upstream)
        wait_port(up_port, upstream)
        with open(home / "daemon.out", "wb") as out:
            daemon = subprocess.Popen([sys.executable, "-m", "llmproxy", "serve", "--port", str(port)], env=env,
                                      stdout=out, stderr=subprocess.STDOUT, cwd=REPO)
        procs.append(daemon)
        wait_port(port, daemon)
        st, fig = asyncio.run(soak(f"http://127.0.0.1:{port}", daemon.pid, upstream.pid, up_port, args))
        alive = daemon.poll() is None
    finally:
        for p in reversed(procs):
            if p.poll() is None:
                p.terminate()
        for p in procs:
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        if args.keep:
            print(f"LLMPROXY_HOME kept: {home}")
        else:
            shutil.rmtree(home, ignore_errors=True)

    errors = sum(st.errors.values())
    pct = lambda xs, q: (statistics.quantiles(xs, n=100)[q - 1] if len(xs) >= 2 else (xs[0] if xs else 0.0))  # noqa: E731
    print(f"soak: {args.streams} concurrent streams for {args.duration:g} s (each ~{args.stream_seconds:g} s), "
          f"through llmproxy pid {daemon.pid} on 127.0.0.1")
    print(f"  streams completed  {st.ok}   errors {errors}" + (f"  {dict(st.errors)}" if errors else ""))
    for s in st.samples:
        print(f"    {s}")
    if st.ttfb:
        print(f"  time to first byte p50 {pct(st.ttfb, 50) * 1000:.0f} ms  p99 {pct(st.ttfb, 99) * 1000:.0f} ms; "
              f"stream p50 {pct(st.durations, 50):.2f} s  p99 {pct(st.durations, 99):.2f} s")
    print(f"  daemon CPU         {fig['cpu_s']:.1f} s in {fig['wall_s']:.1f} s of load "
          f"({fig['cpu_s'] / fig['wall_s'] * 100:.0f} % of one core; {os.cpu_count()} cores shared with the "
          f"clients ({fig['client_cpu_s']:.1f} s) and the upstream ({fig['upstream_cpu_s']:.1f} s))")
    print(f"  listen-queue overflows on the host during the load: {fig['listen_overflows']} "
          f"(a full accept queue delays a connect by a SYN retransmit, 1 s or more)")
    mib = lambda k: f"{k / 1024:.1f} MiB"  # noqa: E731
    print(f"  daemon RSS         start {mib(fig['rss_start_kib'])}  peak {mib(fig['rss_peak_kib'])}  "
          f"end {mib(fig['rss_end_kib'])}")
    print(f"  daemon open fds    before {fig['fds_before']}  after {fig['fds_after']} (of which "
          f"{fig['pooled_after']} idle keep-alive connections to the upstream, closed by the pool within 60 s)")
    print(f"  after the load     in_flight {fig['in_flight_after']}  circuits {fig['circuits_after'] or '{}'}  "
          f"request_log {fig['request_log']}")
    print(f"  daemon alive at the end: {alive}")
    leaked = fig["fds_after"] - fig["pooled_after"] - fig["fds_before"] > 8
    return 1 if errors or leaked or not alive else 0


if __name__ == "__main__":
    sys.exit(main())
