"""Helpers shared by subprocess-level tests."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def cli(*args: str, home: Path, timeout: float = 30, env: dict | None = None) -> subprocess.CompletedProcess:
    e = {**os.environ, "LLMPROXY_HOME": str(home), "COLUMNS": "200", **(env or {})}
    return subprocess.run([sys.executable, "-m", "llmproxy", *args], capture_output=True, text=True,
                          timeout=timeout, env=e, cwd=REPO)


def find_claude() -> str | None:
    for cand in (shutil.which("claude"), REPO / ".claude-code" / "node_modules" / ".bin" / "claude"):
        if cand and Path(cand).exists():
            return str(cand)
    return None


def require_claude() -> str:
    path = find_claude()
    if path is None:
        if os.environ.get("CI"):
            pytest.fail("Claude Code is not installed; .ci/run must install it (make claude-code)")
        pytest.skip("SKIPPED LOUDLY: Claude Code is not installed (run `make claude-code`); "
                    "the end-to-end test needs it")
    return path


def claude_env(base_url: str, config_dir: Path, workdir: Path, token: str = "sk-llmproxy-test") -> dict:
    """The environment that makes Claude Code talk to the proxy, offline, with no first-run dialogs."""
    config_dir.mkdir(parents=True, exist_ok=True)
    workdir.mkdir(parents=True, exist_ok=True)
    seed = {"hasCompletedOnboarding": True, "theme": "dark", "bypassPermissionsModeAccepted": True,
            "projects": {str(workdir): {"hasTrustDialogAccepted": True, "allowedTools": []}}}
    (config_dir / ".claude.json").write_text(json.dumps(seed))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ANTHROPIC_", "CLAUDE"))}
    env.update({"ANTHROPIC_BASE_URL": base_url, "ANTHROPIC_AUTH_TOKEN": token,
                "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CONFIG_DIR": str(config_dir),
                "DISABLE_AUTOUPDATER": "1", "HOME": str(config_dir.parent)})
    return env


def post_status(port: int, key: str, body: dict, path: str = "/v1/messages") -> int:
    """POST ``body`` to a daemon on ``port`` with ``x-api-key: key``, from a thread (blocking); the status,
    0 when nothing answered."""
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=json.dumps(body).encode(),
                                 headers={"content-type": "application/json", "x-api-key": key})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return 0
