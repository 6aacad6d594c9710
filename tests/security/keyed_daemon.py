"""A real daemon started through the CLI (``serve --daemon``) under a test's ``LLMPROXY_HOME``, with proxy API
keys in its config; shared by the tests of the file modes, the keyed life cycle, reload rules and daemon.log."""

from __future__ import annotations

import contextlib
import json
import textwrap
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from tests.conftest import PROXY_KEY, free_port
from tests.helpers import cli

KEYED = f"""
[server]
simulator_speed = 0
[auth]
api_keys = ["{PROXY_KEY}"]
"""


def write(home: Path, text: str) -> None:
    (home / "config.toml").write_text(textwrap.dedent(text))


@contextlib.contextmanager
def daemon(home: Path, *args: str, config: str = KEYED) -> Iterator[int]:
    """``serve --daemon --simulate`` on a free port with ``config``; its port. Stopped (by the CLI) on exit."""
    write(home, config)
    port = free_port()
    r = cli("serve", "--daemon", "--simulate", "--port", str(port), *args, home=home, timeout=60)
    assert r.returncode == 0, r.stderr + r.stdout
    try:
        yield port
    finally:
        cli("stop", home=home)


def get(port: int, path: str, key: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", headers={"x-api-key": key} if key else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")
