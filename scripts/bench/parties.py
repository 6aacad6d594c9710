"""The parties of a benchmark run and how each is started: the fake upstream (``upstream.py``), the bare
relay (``relay.py``), and a proxy (``python -m llmproxy serve``) with its own temp home, config and
profiles, for a ``Variant``: the working tree, or a baseline revision checked out in a ``git worktree``.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from bench.procs import REPO, Cleanup, Proc, cpu_seconds, free_port, wait_http

UPSTREAM_PY = Path(__file__).resolve().parent / "upstream.py"
RELAY_PY = Path(__file__).resolve().parent / "relay.py"


def _spawn(cl: Cleanup, workdir: Path, name: str, script: Path, args: list[str], ready_path: str) -> Proc:
    """``script`` on a free port (``--port P`` + ``args``) in its own session, logging to ``workdir/name.log``;
    owned by ``cl``; returned once ``ready_path`` answers."""
    port = free_port()
    logf = workdir / f"{name}.log"
    with logf.open("wb") as out:
        popen = subprocess.Popen([sys.executable, str(script), "--port", str(port), *args],
                                 stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 start_new_session=True, cwd=workdir)
    p = Proc(name, popen, port, logfile=logf)
    cl.procs.append(p)
    wait_http(port, ready_path, 20, popen)
    return p


def start_upstream(cl: Cleanup, workdir: Path, slow_deltas: int, slow_delay_ms: float, deltas: int) -> Proc:
    return _spawn(cl, workdir, "upstream", UPSTREAM_PY, ["--deltas", str(deltas), "--slow-deltas", str(slow_deltas),
                                                         "--slow-delay-ms", str(slow_delay_ms)], "/stats")


def start_relay(cl: Cleanup, workdir: Path, upstream_port: int) -> Proc:
    """The bare relay (``scripts/bench/relay.py``): the passthrough path's floor, a party of the matrix."""
    return _spawn(cl, workdir, "relay", RELAY_PY, ["--upstream", f"http://127.0.0.1:{upstream_port}"], "/health")


CONFIG = """# written by scripts/bench.py: only keys both the working tree and older revisions understand
[server]
default_profile = "bench-pass"

[providers.anthropic]
kind = "anthropic"
base_url = "http://127.0.0.1:{up}"
api_key_env = "ANTHROPIC_API_KEY"

[providers.slowant]
kind = "anthropic"
base_url = "http://127.0.0.1:{up}/slow"
api_key_env = "ANTHROPIC_API_KEY"

[providers.slowant.models.claude-sonnet-4-5]
display_name = "Bench Sonnet (long streams)"
context_window = 1000000
max_output = 64000

[providers.benchoai]
kind = "openai"
base_url = "http://127.0.0.1:{up}/v1"
api_key_env = "BENCH_OPENAI_API_KEY"

[providers.benchoai.models.bench-gpt]
display_name = "Bench GPT"
context_window = 400000
max_output = 64000

[providers.slowoai]
kind = "openai"
base_url = "http://127.0.0.1:{up}/slow/v1"
api_key_env = "BENCH_OPENAI_API_KEY"

[providers.slowoai.models.bench-gpt]
display_name = "Bench GPT (long streams)"
context_window = 400000
max_output = 64000
"""
PROFILES = {"bench-pass": "anthropic,claude-sonnet-4-5", "bench-xlate": "benchoai,bench-gpt",
            "bench-slow-pass": "slowant,claude-sonnet-4-5", "bench-slow-xlate": "slowoai,bench-gpt"}


@dataclass
class Variant:
    """One proxy build: the working tree, or a baseline worktree."""
    label: str
    code_dir: Path
    rev: str
    has_workers: bool = False
    imported_from: str = ""

    def env(self, home: Path) -> dict:
        drop = ("ANTHROPIC_", "OPENAI_", "LLMPROXY_", "CLAUDE_")
        env = {k: v for k, v in os.environ.items()
               if not k.startswith(drop) and not k.endswith(("_API_KEY", "_API_KEYS", "_AUTH_TOKEN"))}
        env.update(LLMPROXY_HOME=str(home), PYTHONPATH=str(self.code_dir), ANTHROPIC_API_KEY="sk-ant-bench-0000000000",
                   BENCH_OPENAI_API_KEY="sk-bench-0000000000", PYTHONUNBUFFERED="1")
        return env

    def check(self, workdir: Path) -> None:
        """The interpreter really imports this variant's code; does its serve have --workers?"""
        env = self.env(workdir)
        out = subprocess.run([sys.executable, "-c", "import llmproxy; print(llmproxy.__file__)"], env=env,
                             cwd=self.code_dir, capture_output=True, text=True, timeout=60)
        self.imported_from = out.stdout.strip()
        if not self.imported_from.startswith(str(self.code_dir) + os.sep):
            raise RuntimeError(f"{self.label}: llmproxy imports from {self.imported_from or out.stderr!r}, "
                               f"not from {self.code_dir}")
        helptext = subprocess.run([sys.executable, "-m", "llmproxy", "serve", "--help"], env=env,
                                  cwd=self.code_dir, capture_output=True, text=True, timeout=60).stdout
        self.has_workers = "--workers" in helptext


def start_proxy(cl: Cleanup, v: Variant, upstream_port: int, workers: int | None = None,
                timeout: float = 60) -> tuple[Proc, float, float]:
    """Start a proxy with its own home; returns (proc, seconds to ready, CPU seconds spent by then)."""
    home = Path(tempfile.mkdtemp(prefix="llmproxy-bench-home-"))
    cl.dirs.append(home)
    (home / "config.toml").write_text(CONFIG.format(up=upstream_port))
    (home / "profiles").mkdir()
    for name, target in PROFILES.items():
        (home / "profiles" / f"{name}.toml").write_text(f'description = "benchmark: everything to {target}"\n'
                                                        f'default = "{target}"\n')
    port = free_port()
    cmd = [sys.executable, "-m", "llmproxy", "serve", "--port", str(port)]
    if workers is not None:
        cmd += ["--workers", str(workers)]
    logf = home / "serve.log"
    t0 = time.perf_counter()
    with logf.open("wb") as out:
        popen = subprocess.Popen(cmd, env=v.env(home), cwd=v.code_dir, stdout=out, stderr=subprocess.STDOUT,
                                 stdin=subprocess.DEVNULL, start_new_session=True)
    p = Proc(f"{v.label}{'' if workers in (None, 1) else f'-w{workers}'}", popen, port, home, logf,
             tree=workers is not None)
    cl.procs.append(p)
    try:
        wait_http(port, "/health", timeout, popen)
    except RuntimeError as e:
        raise RuntimeError(f"{p.name} did not start: {e}\n{p.tail()}") from None
    ready = time.perf_counter() - t0
    return p, ready, cpu_seconds(p.pid, True)


def create_baseline(cl: Cleanup, ref: str) -> Variant:
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", ref + "^{commit}"], capture_output=True,
                         text=True, timeout=30)
    if rev.returncode:
        raise SystemExit(f"--baseline {ref}: not a commit ({rev.stderr.strip()})")
    parent = Path(tempfile.mkdtemp(prefix="llmproxy-baseline-"))
    cl.dirs.append(parent)
    tree = parent / "tree"
    for _ in range(20):  # another engineer's git command may hold a lock for a moment
        r = subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), ref],
                           capture_output=True, text=True, timeout=120)
        if r.returncode == 0:
            break
        time.sleep(0.5)
    else:
        raise SystemExit(f"git worktree add failed: {r.stderr.strip()}")
    cl.worktrees.append(tree)
    return Variant("baseline", tree, rev.stdout.strip())
