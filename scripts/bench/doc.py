"""What a run is recorded with: the machine and revision it ran on (``machine``), and ``write_doc``, which
replaces this kind of run's section of docs/BENCHMARKS.md and keeps the other sections and the notes written
by hand below the marker line.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import platform
import re
import subprocess
from pathlib import Path

import aiohttp

from bench.procs import REPO

NOTES_MARKER = "<!-- Notes below this line are written by hand and kept by scripts/bench.py -->"


def machine() -> dict:
    model = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError):
        for line in open("/proc/meminfo"):
            if line.startswith("MemTotal"):
                mem = f"{int(line.split()[1]) / 1024 / 1024:.1f} GiB"
    rev = subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                         timeout=30).stdout.strip()
    dirty = subprocess.run(["git", "-C", str(REPO), "status", "--porcelain", "--", "llmproxy"], capture_output=True,
                           text=True, timeout=30).stdout.splitlines()
    return {"nproc": os.cpu_count(), "cpu": model, "mem": mem, "python": platform.python_version(),
            "aiohttp": aiohttp.__version__, "rev": rev, "dirty": len(dirty),
            "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"), "load": os.getloadavg()}


def write_doc(path: Path, text: str, parts: list[str], streams: int) -> None:
    """Replace this kind of run's section of the file; other sections and the hand-written notes stay."""
    key = ",".join(sorted(parts))
    old = path.read_text() if path.exists() else ""
    notes = old.split(NOTES_MARKER, 1)[1] if NOTES_MARKER in old else "\n"
    sections = dict(re.findall(r"<!-- bench:section (\S+) -->\n(.*?)<!-- bench:end -->\n", old, re.S))
    title = ("Full run (`make bench`)" if key == "matrix,startup,streams" else
             f"{streams} concurrent streams (`--streams {streams}`)" if key == "streams" else f"Run of {key}")
    sections[key] = f"## {title}\n\n{text}\n\n"
    order = sorted(sections, key=lambda k: (k != "matrix,startup,streams", k))
    head = ("# Benchmarks\n\nWritten by `make bench` (`python scripts/bench.py`; the method is in that script's "
            "docstring). Every party runs in its own process on 127.0.0.1 (fake upstream, direct client, proxies), "
            "in interleaved rounds with the order shuffled each round. The machine is shared, so compare figures "
            "of the same run (ratios), not across runs. Each kind of run (the full run, `--streams N` alone) "
            "replaces only its own section.\n\n")
    body = "".join(f"<!-- bench:section {k} -->\n{sections[k]}<!-- bench:end -->\n" for k in order)
    path.write_text(head + body + "\n" + NOTES_MARKER + notes)
