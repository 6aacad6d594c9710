"""Pointing Claude Code at the proxy: the environment for a profile, `llmproxy env` (shell lines),
`llmproxy code` (exec claude) and the status-line setting both `code` and the demo seed."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys

from llmproxy import paths
from llmproxy.cli.console import CLIError
from llmproxy.cli.options import ConfigPaths
from llmproxy.demo.setup import STATUSLINE_COMMAND, seed_statusline, statusline_settings

__all__ = ["seed_statusline", "statusline_settings"]

# Claude Code would ask whether to use this key (or send it) instead of the proxy's token
UNSET_VARS = ("ANTHROPIC_API_KEY",)
SHELLS = ("bash", "zsh", "sh", "fish", "powershell")


def client_env(base_url: str, profile: str, token: str) -> dict[str, str]:
    """The variables that send Claude Code's requests through ``profile`` of the proxy at ``base_url``."""
    return {"ANTHROPIC_BASE_URL": f"{base_url.rstrip('/')}/p/{profile}", "ANTHROPIC_AUTH_TOKEN": token,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1"}


def statusline_command() -> str:
    """How Claude Code can start the status line from anywhere: ``llmproxy statusline`` when ``llmproxy`` is
    on PATH, else this interpreter with ``-m llmproxy``."""
    return STATUSLINE_COMMAND if shutil.which("llmproxy") else shlex.join([sys.executable, "-m", "llmproxy",
                                                                            "statusline"])


def shell_lines(values: dict[str, str], unset: tuple[str, ...], shell: str) -> list[str]:
    if shell == "fish":
        q = lambda v: "'" + v.replace("\\", "\\\\").replace("'", "\\'") + "'"  # noqa: E731
        return [f"set -gx {k} {q(v)};" for k, v in values.items()] + [f"set -e {k};" for k in unset]
    if shell == "powershell":
        q = lambda v: '"' + v.replace("`", "``").replace('"', '`"').replace("$", "`$") + '"'  # noqa: E731
        return [f"$env:{k} = {q(v)}" for k, v in values.items()] + \
               [f"Remove-Item Env:{k} -ErrorAction SilentlyContinue" for k in unset]
    return [f"export {k}={shlex.quote(v)}" for k, v in values.items()] + [f"unset {k}" for k in unset]


def _base_url(cfg) -> str:
    from llmproxy.daemonctl import running

    live, _ = running()
    host, port = (live["host"], live["port"]) if live else (cfg.server.host, cfg.server.port)
    return f"http://{host}:{port}"


def env(profile: str | None, shell: str) -> int:
    from llmproxy.cli.common import known_profile, load_lenient, proxy_token

    if shell not in SHELLS:
        raise CLIError(f"unknown shell {shell!r} ({', '.join(SHELLS)})", code=2)
    cfg, _ = load_lenient(ConfigPaths())
    name = known_profile(cfg, profile)
    for line in shell_lines(client_env(_base_url(cfg), name, proxy_token(cfg)), UNSET_VARS, shell):
        print(line)
    print("# Claude Code status line (profile, last route, cost as llmproxy logged it): add to "
          "~/.claude/settings.json")
    print(f"#   {json.dumps(statusline_settings())}")
    return 0


def code(profile: str | None, claude: str | None, args: list[str], port: int | None = None) -> int:
    """exec claude with the proxy's environment, the status line, and ``args`` exactly as given."""
    from llmproxy.cli.common import ensure_daemon, known_profile, load_lenient, proxy_token
    from llmproxy.demo import setup as S

    cfg, _ = load_lenient(ConfigPaths())
    name = known_profile(cfg, profile)
    path = S.find_claude(claude, paths.home())
    if path is None:
        raise CLIError("Claude Code was not found: `npm install -g @anthropic-ai/claude-code` or pass --claude PATH")
    base_url = ensure_daemon(port, "code")
    environ = {k: v for k, v in os.environ.items() if k not in S.CLEARED_VARS or k == "TMUX"}
    environ.update(client_env(base_url, name, proxy_token(cfg)))
    os.execvpe(path, code_argv(path, args), environ)
    return 0  # not reached


def code_argv(claude: str, args: list[str]) -> list[str]:
    """claude's argv: our status line as extra settings (unless the user passes --settings), then ``args``."""
    if any(a == "--settings" or a.startswith("--settings=") for a in args):
        return [claude, *args]
    settings = seed_statusline(paths.home() / "claude-settings", statusline_command())
    return [claude, "--settings", str(settings), *args]
