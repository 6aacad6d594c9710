"""The demo's record and its one error type.

What the demo created is recorded in $LLMPROXY_HOME/demo/state.json, so `demo stop` removes exactly that:
its sessions, the processes in them, the tmux server (and its socket file) if the demo started it, and the
daemon if the demo started it. A second `demo` reuses the recorded demo while it is up and cleans up what is
left of it otherwise, so the record is never overwritten; ``demo_lock`` keeps two of them from interleaving.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

from llmproxy import paths
from llmproxy.demo import setup as S


class DemoError(Exception):
    """One clear line for the user."""


@dataclass
class DemoState:
    socket: str | None
    sessions: list[str]
    pane_pids: dict[str, int] = field(default_factory=dict)
    started_daemon: bool = False
    started_server: bool = False
    base_url: str = ""
    workdir: str = ""
    daemon_pid: int | None = None  # the daemon the demo started: `demo stop` stops that process, no other
    grid_pids: list[int] = field(default_factory=list)  # the grid's nested clients and log pane
    started: float = 0.0  # when the demo started (epoch seconds): `demo status` shows the routes since then

    @staticmethod
    def path() -> Path:
        return S.demo_home(paths.home()) / "state.json"

    def save(self) -> None:
        self.path().parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path().with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        os.replace(tmp, self.path())

    @classmethod
    def load(cls) -> DemoState | None:
        try:
            data = json.loads(cls.path().read_text())
            known = {f for f in cls.__dataclass_fields__}
            return cls(**{k: v for k, v in data.items() if k in known})
        except (OSError, ValueError, TypeError):
            return None


@contextlib.contextmanager
def demo_lock():
    """One `demo` (or `demo stop`) at a time per LLMPROXY_HOME: two starts would each record only their own."""
    import fcntl

    path = S.demo_home(paths.home()) / "lock"
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise DemoError("another `llmproxy demo` is starting or stopping right now; try again in a moment") \
                from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)
