"""Pure pieces of the demo: what each session gets (seeded Claude Code config, environment, prompt) and how
to read a pane's screen. No tmux here."""

from __future__ import annotations

import json
import os
import shlex
import shutil
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

PROFILES = ("fast", "intelligent", "balanced", "cheap")
SESSION_PREFIX = "llmproxy-"
GRID = "llmproxy-demo"

DEFAULT_PROMPTS = {
    "fast": "make a quick edit: change the README title to 'Todo CLI'",
    "intelligent": "plan a refactor of storage.py into a repository layer, step by step",
    "balanced": "what does the add command in todo.py do?",
    "cheap": "summarise this project in two sentences",
}

# variables that would point Claude Code somewhere else (or at another credential) if inherited
CLEARED_VARS = ("ANTHROPIC_API_KEY", "ANTHROPIC_MODEL", "ANTHROPIC_SMALL_FAST_MODEL", "ANTHROPIC_DEFAULT_HAIKU_MODEL",
                "ANTHROPIC_DEFAULT_SONNET_MODEL", "ANTHROPIC_DEFAULT_OPUS_MODEL", "CLAUDE_CODE_USE_BEDROCK",
                "CLAUDE_CODE_USE_VERTEX", "ANTHROPIC_CUSTOM_HEADERS", "TMUX")


def session_name(profile: str) -> str:
    return SESSION_PREFIX + profile


def demo_home(home: Path) -> Path:
    return home / "demo"


def pane_title(profile: str, description: str) -> str:
    """``fast · fast & expensive``: the profile and the short part of its description (before the colon)."""
    short = description.split(":", 1)[0].strip()
    if short[1:2].islower():  # "Fast & expensive" -> "fast & expensive"; an acronym stays as it is
        short = short[0].lower() + short[1:]
    return f"{profile} · {short}" if short else profile


# ---------------------------------------------------------------------------------------- the grid's geometry

MIN_LOG_ROWS = 8  # request lines the log pane must show
MIN_PANE_ROWS = 13  # Claude Code's prompt, an answer's first lines, and its input box
MIN_PANE_COLS = 50


@dataclass(frozen=True)
class Geometry:
    """Pane sizes of the grid in a ``width`` × ``height`` terminal: two rows of two Claude Code panes and the
    log below, each pane with its title on the border line above it (tmux ``pane-border-status top``)."""
    width: int
    height: int
    left: int  # columns of the left panes (the right ones get the rest, less the border)
    top: int  # rows of the upper Claude Code panes
    bottom: int  # rows of the lower ones
    log: int  # rows of the log pane

    @property
    def right(self) -> int:
        return self.width - 1 - self.left

    @property
    def fits(self) -> bool:
        return min(self.top, self.bottom) >= MIN_PANE_ROWS and min(self.left, self.right) >= MIN_PANE_COLS \
            and self.log >= MIN_LOG_ROWS

    @property
    def minimum(self) -> str:
        return f"{2 * MIN_PANE_COLS + 1}×{3 + 2 * MIN_PANE_ROWS + MIN_LOG_ROWS}"


def geometry(width: int, height: int) -> Geometry:
    # the log gets a fifth of the height, at least 8 request lines (its cursor stays on the last one); three
    # border lines carry the titles (above each pane row and above the log); the upper row gets the odd row
    # (its answers are the longer ones)
    log = max(MIN_LOG_ROWS, height // 5)
    panes = max(2, height - 3 - log)
    left = max(1, (width - 1) // 2 + (width - 1) % 2)
    return Geometry(width, height, left, panes - panes // 2, panes // 2, log)


# ---------------------------------------------------------------------------------- Claude Code's config dir

def llmproxy_command() -> list[str]:
    """How to run this llmproxy from another program: the console script next to our interpreter when there is
    one, else ``python -m llmproxy``."""
    exe = Path(sys.executable).with_name("llmproxy")
    if exe.exists():
        return [str(exe)]
    found = shutil.which("llmproxy")
    return [found] if found else [sys.executable, "-m", "llmproxy"]


STATUSLINE_COMMAND = "llmproxy statusline"


def statusline_settings(command: str = STATUSLINE_COMMAND) -> dict:
    return {"statusLine": {"type": "command", "command": command, "padding": 0}}


def seed_statusline(config_dir: Path, command: str = STATUSLINE_COMMAND) -> Path:
    """Set ``statusLine`` in ``config_dir/settings.json`` (a Claude Code config dir: CLAUDE_CONFIG_DIR), keeping
    every other setting; returns the file. Idempotent. Used by the demo and by ``llmproxy code``."""
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / "settings.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    if not isinstance(data, dict):
        data = {}
    data.update(statusline_settings(command))
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    os.replace(tmp, path)
    return path


def seed_claude_config(config_dir: Path, workdir: Path) -> dict:
    """Write ``.claude.json`` so the TUI opens at its prompt (onboarding done, the workdir trusted, no hint
    line under the prompt), and
    ``settings.json`` so Claude Code's status line is ``llmproxy statusline``."""
    seed_statusline(config_dir, shlex.join([*llmproxy_command(), "statusline"]))
    path = config_dir / ".claude.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    # leftArrowOpensAgents off: no "← for agents" hint line, one more row for the answer in a small pane
    data.update({"hasCompletedOnboarding": True, "theme": data.get("theme", "dark"),
                 "autoUpdates": False, "hasSeenTasksHint": True, "leftArrowOpensAgents": False})
    projects = data.setdefault("projects", {})
    proj = projects.setdefault(str(workdir.resolve()), {})
    proj.update({"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True})
    path.write_text(json.dumps(data, indent=2))
    return data


def session_env(profile: str, base_url: str, token: str, config_dir: Path,
                home: Path | None = None) -> dict[str, str]:
    """The environment one demo session's Claude Code runs with (``LLMPROXY_HOME`` so that the status line
    reads this demo's daemon, whatever environment the tmux server was started with)."""
    env = {"ANTHROPIC_BASE_URL": f"{base_url.rstrip('/')}/p/{profile}", "ANTHROPIC_AUTH_TOKEN": token,
           "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CONFIG_DIR": str(config_dir),
           "DISABLE_AUTOUPDATER": "1", "LLMPROXY_PROFILE": profile}
    if home is not None:
        env["LLMPROXY_HOME"] = str(home)
    return env


def claude_command(claude: str, env: dict[str, str]) -> str:
    """A shell command for tmux: clear inherited variables, set ours, run Claude Code."""
    args = ["env"] + [f"-u{v}" for v in CLEARED_VARS] + [f"{k}={v}" for k, v in env.items()] + [claude]
    return shlex.join(args)


def load_prompts(path: Path | None) -> dict[str, str]:
    """Default prompts, overridden by a TOML file of ``profile = "prompt"`` lines."""
    prompts = dict(DEFAULT_PROMPTS)
    if path is None:
        return prompts
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"{path}: {exc}") from None
    for k, v in data.items():
        if k not in PROFILES or not isinstance(v, str):
            raise ValueError(f"{path}: {k}: expected one of {', '.join(PROFILES)} = \"prompt\"")
        prompts[k] = v
    return prompts


def prompt_ready(lines: list[str]) -> bool:
    """Claude Code's input prompt is on screen."""
    return any("? for shortcuts" in ln or ln.lstrip().startswith("❯") for ln in lines)


def answered(lines: list[str], prompt: str) -> bool:
    """The prompt was submitted, an answer line (``●`` at the start) follows it, and Claude Code has finished
    the turn (its ``✻ <verb> for Ns`` line; the ``● high · /effort`` indicator on the status line is not an
    answer, since that line starts with ``?``)."""
    key = prompt[:30]
    start = next((i for i, ln in enumerate(lines) if key in ln), None)
    if start is None:
        return False
    rest = [ln.lstrip() for ln in lines[start + 1:]]
    answer = next((i for i, ln in enumerate(rest) if ln.startswith("●")), None)
    return answer is not None and any(ln.startswith("✻") and " for " in ln for ln in rest[answer:])


def find_claude(explicit: str | None, home: Path) -> str | None:
    if explicit:
        return explicit if Path(explicit).exists() or shutil.which(explicit) else None
    local = demo_home(home) / "claude-code" / "node_modules" / ".bin" / "claude"
    for cand in (shutil.which("claude"), str(local) if local.exists() else None):
        if cand:
            return cand
    return None


WORKSPACE_FILES = {
    "README.md": "# todo\n\nA tiny command-line todo list (the llmproxy demo's scratch project).\n",
    "todo.py": ('"""A tiny todo CLI."""\nimport sys\n\nfrom storage import load, save\n\n\n'
                'def add(text):\n    items = load()\n    items.append({"text": text, "done": False})\n'
                '    save(items)\n\n\nif __name__ == "__main__":\n    if sys.argv[1:2] == ["add"]:\n'
                '        add(" ".join(sys.argv[2:]))\n'),
    "storage.py": ('import json\nimport os\n\nPATH = os.path.expanduser("~/.todo.json")\n\n\n'
                   'def load():\n    if not os.path.exists(PATH):\n        return []\n'
                   '    with open(PATH) as f:\n        return json.load(f)\n\n\n'
                   'def save(items):\n    with open(PATH, "w") as f:\n        json.dump(items, f)\n'),
}


def ensure_workspace(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    if not any(path.iterdir()):
        for name, text in WORKSPACE_FILES.items():
            (path / name).write_text(text)
    return path


def tmux_available() -> bool:
    return shutil.which("tmux") is not None

