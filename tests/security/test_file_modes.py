"""Private by default: under umask 022, everything a real daemon keeps under LLMPROXY_HOME — the request log
and its rotated files, daemon.log and its rotated files, the pid file, the SQLite database with its -wal and
-shm, uploaded file bodies — is 0600, every directory 0700; what an older version left readable is tightened
at start-up."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import anthropic
import pytest

from llmproxy import paths
from tests.conftest import PROXY_KEY
from tests.security.keyed_daemon import KEYED, daemon

SMALL_LOGS = KEYED + """
[log]
rotate_bytes = 2048
rotate_keep = 2
"""


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


def modes(home: Path) -> dict[str, str]:
    """Every entry under ``home`` (and ``home`` itself) that others could read or enter: {path: mode}."""
    found = {}
    for p in [home, *home.rglob("*")]:
        mode = stat.S_IMODE(p.lstat().st_mode)
        if mode & 0o077:
            found[str(p.relative_to(home))] = oct(mode)
    return found


def test_everything_under_home_is_private(home, umask_022):
    home.chmod(0o755)
    (home / "logs").mkdir(mode=0o755)
    (home / "logs" / "requests.jsonl.1").write_text('{"old": "record"}\n')  # an older version's, 0644
    (home / "profiles").mkdir(mode=0o755)
    (home / "profiles" / "mine.toml").write_text('default = "anthropic,claude-haiku-4-5"\n')
    with daemon(home, "-v", config=SMALL_LOGS) as port:
        client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key=PROXY_KEY, max_retries=0)
        for i in range(12):  # enough records and -v lines to rotate both logs
            client.messages.create(model="claude-haiku-4-5", max_tokens=20,
                                   messages=[{"role": "user", "content": f"hello {i} " + "x" * 300}])
        up = client.beta.files.upload(file=("notes.txt", b"secret notes\n" * 100, "text/plain"),
                                      betas=["files-api-2025-04-14"])
        running = {str(p.relative_to(home)) for p in home.rglob("*")}
        assert {"llmproxy.db-wal", "llmproxy.db-shm", "llmproxy.pid", f"files/{up.id}"} <= running, sorted(running)
        assert modes(home) == {}
    # the log writers have flushed and rotated by now (the daemon stopped)
    names = {str(p.relative_to(home)) for p in home.rglob("*")}
    assert {"logs/requests.jsonl.2", "logs/daemon.log", "logs/daemon.log.1"} <= names, sorted(names)
    assert modes(home) == {}


def test_tighten_leaves_what_is_not_llmproxys(tmp_path):
    """A home shared with other things (say ``~``): only llmproxy's own entries are walked; symlinks and an
    executable's owner bits are kept."""
    (tmp_path / "logs").mkdir(mode=0o755)
    (tmp_path / "logs" / "daemon.log").write_text("x")
    (tmp_path / "logs" / "tool").write_text("#!/bin/sh\n")
    (tmp_path / "logs" / "tool").chmod(0o755)
    (tmp_path / "public_html").mkdir(mode=0o755)
    (tmp_path / "public_html" / "index.html").write_text("hi")
    (tmp_path / "public_html" / "index.html").chmod(0o644)
    (tmp_path / "files").symlink_to(tmp_path / "public_html")
    paths.tighten(tmp_path)
    mode = lambda p: oct(stat.S_IMODE(p.stat().st_mode))  # noqa: E731
    assert mode(tmp_path) == oct(0o700)
    assert mode(tmp_path / "logs") == oct(0o700)
    assert mode(tmp_path / "logs" / "daemon.log") == oct(0o600)
    assert mode(tmp_path / "logs" / "tool") == oct(0o700)
    assert mode(tmp_path / "public_html") == oct(0o755)
    assert mode(tmp_path / "public_html" / "index.html") == oct(0o644)


async def test_store_files_are_private_whatever_the_umask(tmp_path, umask_022):
    """The store on its own (no daemon, so no umask 077): the database, its -wal and -shm, the files
    directory, an upload's .part file while it is written and the file it becomes are private."""
    from llmproxy.store import open_store

    store = open_store(tmp_path)
    part_modes = []

    async def chunks():
        yield b"a" * 100
        part_modes.extend(oct(stat.S_IMODE(p.stat().st_mode)) for p in (tmp_path / "files").glob(".*.part"))
        yield b"b" * 100

    try:
        meta = await store.put_file("notes.txt", "text/plain", chunks(), 10_000)
        assert part_modes == [oct(0o600)]
        names = {p.name for p in tmp_path.rglob("*")}
        assert {"llmproxy.db", "llmproxy.db-wal", "llmproxy.db-shm", "files", meta.id} <= names, names
        assert modes(tmp_path) == {}
    finally:
        await store.close()


def test_a_shared_home_keeps_its_own_mode(tmp_path):
    """LLMPROXY_HOME set to a sticky shared directory (like /tmp): its entries are tightened, not the directory."""
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)
    (shared / "config.toml").write_text("")
    (shared / "config.toml").chmod(0o644)
    paths.tighten(shared)
    assert stat.S_IMODE(shared.stat().st_mode) == 0o1777
    assert stat.S_IMODE((shared / "config.toml").stat().st_mode) == 0o600
