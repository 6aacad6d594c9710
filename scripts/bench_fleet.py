"""The fleet part of the benchmark (issue 26): batch items per second with 1 vs 3 llmproxy instances sharing
one PostgreSQL, the simulator at speed 0.

It starts a throwaway PostgreSQL cluster (``initdb`` into a temp dir — as ``nobody`` when run as root — and
``pg_ctl start`` on a free 127.0.0.1 port, ``fsync=off``), then for each instance count a fresh database and
that many ``llmproxy serve --simulate`` daemons (each its own LLMPROXY_HOME, all with
``LLMPROXY_DATABASE_URL``), creates one batch on instance 1 and times it from creation to ``ended``; every
instance executes it (claims under a lease). Then the live path's latency with the PostgreSQL store beside
the SQLite one: two daemons (one on each store) answer small /v1/messages requests in turns, A B A B …, so the
ratio of their medians is measured in the same rounds (nothing on the live path waits for the store: the
target is no difference beyond noise). Without PostgreSQL's binaries it says so and exits 0.

    python scripts/bench_fleet.py [--items 5000] [--instances 1,3] [--live 400] [--json out.json]
"""

from __future__ import annotations

import argparse
import glob
import json
import os
import pwd
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench.procs import REPO, cpu_seconds, free_port, log  # noqa: E402

USER = "llmproxy"


def pg_bindir() -> Path | None:
    dirs = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True)
    if shutil.which("pg_config"):
        dirs.insert(0, subprocess.run(["pg_config", "--bindir"], capture_output=True, text=True).stdout.strip())
    return next((Path(d) for d in dirs if d and (Path(d) / "initdb").exists()), None)


class Cluster:
    def __init__(self, bindir: Path):
        self.bindir, self.port, self.password = bindir, free_port(), "pw-" + secrets.token_hex(12)
        self.as_root = os.geteuid() == 0
        self.root = Path(tempfile.mkdtemp(prefix="llmproxy-bench-pg-", dir="/tmp" if self.as_root else None))
        self.as_user = ["runuser", "-u", "nobody", "--"] if self.as_root else []
        self.started = False

    def _run(self, *cmd: str) -> None:
        out = subprocess.run(self.as_user + list(cmd), capture_output=True, text=True, cwd=self.root, timeout=120)
        if out.returncode != 0:
            raise RuntimeError(f"{cmd[0]} failed: {out.stderr.strip()}")

    def start(self) -> None:
        pwfile = self.root / "pwfile"
        pwfile.write_text(self.password + "\n")
        if self.as_root:
            nobody = pwd.getpwnam("nobody")
            os.chown(self.root, nobody.pw_uid, nobody.pw_gid)
            os.chown(pwfile, nobody.pw_uid, -1)
        data = self.root / "data"
        self._run(str(self.bindir / "initdb"), "-D", str(data), "-U", USER, "-E", "UTF8", "--locale=C",
                  "--no-sync", "--auth-local=trust", "--auth-host=scram-sha-256", f"--pwfile={pwfile}")
        opts = (f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
                "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200")
        self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-l", str(self.root / "server.log"), "-o", opts,
                  "-w", "-t", "60", "start")
        self.started = True

    def new_database(self) -> str:
        name = "bench_" + secrets.token_hex(4)
        self._run(str(self.bindir / "psql"), "-h", str(self.root), "-p", str(self.port), "-U", USER, "-d",
                  "postgres", "-XAtq", "-c", f"CREATE DATABASE {name}")
        return f"postgresql://{USER}:{self.password}@127.0.0.1:{self.port}/{name}"

    def stop(self) -> None:
        if self.started:
            self._run(str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.root, ignore_errors=True)


def http(port: int, path: str, body: dict | None = None, timeout: float = 60) -> dict:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=None if body is None else
                                 json.dumps(body).encode(), headers={"content-type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def start_daemons(n: int, url: str | None, tmp: Path, first: int = 1) -> list[tuple[subprocess.Popen, int]]:
    env = {k: v for k, v in os.environ.items() if k != "LLMPROXY_DATABASE_URL"}
    if url is not None:
        env["LLMPROXY_DATABASE_URL"] = url
    out = []
    for k in range(n):
        home, port = tmp / f"inst{k + first}", free_port()
        home.mkdir()
        (home / "config.toml").write_text("[server]\nsimulator_speed = 0\n")
        proc = subprocess.Popen([sys.executable, "-m", "llmproxy", "serve", "--simulate", "--port", str(port)],
                                cwd=REPO, env={**env, "LLMPROXY_HOME": str(home)}, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        out.append((proc, port))
    for proc, port in out:
        deadline = time.monotonic() + 60
        while True:
            try:
                http(port, "/health", timeout=1)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"an instance on port {port} did not start") from None
                time.sleep(0.1)
    return out


def postgres_cpu(cluster: Cluster) -> float:
    """CPU seconds of the cluster's server processes (the postmaster's tree: backends included)."""
    pid = int((cluster.root / "data" / "postmaster.pid").read_text().split()[0])
    return cpu_seconds(pid, tree=True)


def run_one(n: int, items: int, cluster: Cluster) -> dict:
    tmp = Path(tempfile.mkdtemp(prefix="llmproxy-bench-fleet-"))
    daemons = start_daemons(n, cluster.new_database(), tmp)
    try:
        reqs = [{"custom_id": f"i{i}", "params": {"model": "claude-sonnet-4-5", "max_tokens": 64, "messages": [
            {"role": "user", "content": f"Summarise item {i} of the quarterly inventory in one sentence."}]}}
            for i in range(items)]
        port = daemons[0][1]
        cpu0 = [cpu_seconds(proc.pid) for proc, _ in daemons], postgres_cpu(cluster)
        t0 = time.monotonic()
        batch = http(port, "/v1/messages/batches", {"requests": reqs})
        created = time.monotonic()
        deadline = created + 600
        while (b := http(port, f"/v1/messages/batches/{batch['id']}"))["processing_status"] != "ended":
            if time.monotonic() > deadline:
                raise RuntimeError("the batch did not end within 600 s")
            time.sleep(0.05)
        took = time.monotonic() - created
        proxies = sum(cpu_seconds(proc.pid) for proc, _ in daemons) - sum(cpu0[0])
        return {"instances": n, "items": items, "create_s": round(created - t0, 3), "run_s": round(took, 2),
                "items_per_s": round(items / took), "succeeded": b["request_counts"]["succeeded"],
                "proxy_cpu_s": round(proxies, 2), "postgres_cpu_s": round(postgres_cpu(cluster) - cpu0[1], 2)}
    finally:
        stop_daemons(daemons)
        shutil.rmtree(tmp, ignore_errors=True)


def stop_daemons(daemons: list[tuple[subprocess.Popen, int]]) -> None:
    for proc, _ in daemons:
        proc.send_signal(signal.SIGTERM)
    for proc, _ in daemons:
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()


def live_latency(requests: int, cluster: Cluster) -> dict:
    """Median latency of a small /v1/messages (simulator, speed 0) through a daemon on PostgreSQL and one on
    SQLite, asked in turns; a few requests of each first, uncounted."""
    tmp = Path(tempfile.mkdtemp(prefix="llmproxy-bench-live-"))
    daemons = start_daemons(1, cluster.new_database(), tmp) + start_daemons(1, None, tmp, first=2)
    body = {"model": "claude-sonnet-4-5", "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]}
    times: dict[int, list[float]] = {port: [] for _, port in daemons}
    try:
        for i in range(requests + 20):
            for _, port in daemons:
                t0 = time.perf_counter()
                http(port, "/v1/messages", body)
                if i >= 20:
                    times[port].append(time.perf_counter() - t0)
    finally:
        stop_daemons(daemons)
        shutil.rmtree(tmp, ignore_errors=True)
    (_, pg), (_, lite) = daemons
    med = {k: sorted(v)[len(v) // 2] * 1000 for k, v in times.items()}
    ratios = sorted(a / b for a, b in zip(times[pg], times[lite], strict=True))
    return {"requests": requests, "postgres_p50_ms": round(med[pg], 3), "sqlite_p50_ms": round(med[lite], 3),
            "ratio_p50": round(ratios[len(ratios) // 2], 3)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--items", type=int, default=5000)
    ap.add_argument("--instances", default="1,3")
    ap.add_argument("--live", type=int, default=400, help="requests per store in the live-latency part (0: skip)")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()
    bindir = pg_bindir()
    if bindir is None:
        log("fleet: PostgreSQL's binaries are not installed (apt-get install postgresql): skipped")
        return 0
    cluster = Cluster(bindir)
    rows = []
    try:
        cluster.start()
        for n in (int(x) for x in args.instances.split(",")):
            log(f"fleet: {n} instance(s), {args.items} items")
            rows.append(run_one(n, args.items, cluster))
        live = live_latency(args.live, cluster) if args.live else None
    finally:
        cluster.stop()
    print(f"\nbatch items/s on PostgreSQL, simulator at speed 0 ({os.cpu_count()} CPUs):")
    for r in rows:
        print(f"  {r['instances']} instance(s): {r['items']} items in {r['run_s']} s = {r['items_per_s']} items/s "
              f"({r['succeeded']} succeeded); CPU: instances {r['proxy_cpu_s']} s, PostgreSQL {r['postgres_cpu_s']} s")
    if len(rows) > 1:
        print(f"  x{rows[-1]['items_per_s'] / rows[0]['items_per_s']:.2f} with {rows[-1]['instances']} instances")
    if live:
        print(f"\nlive path, /v1/messages (simulator at speed 0), {live['requests']} requests each, in turns: "
              f"p50 {live['postgres_p50_ms']} ms on PostgreSQL vs {live['sqlite_p50_ms']} ms on SQLite; "
              f"median pairwise ratio x{live['ratio_p50']}")
    if args.json:
        args.json.write_text(json.dumps({"batches": rows, "live": live}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
