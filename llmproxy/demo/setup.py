"""Pure pieces of the demo: what each session gets (seeded Claude Code config, environment, prompt) and how
to read a pane's screen. No tmux here."""

from __future__ import annotations

import json
import shutil
import tomllib
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


def seed_claude_config(config_dir: Path, workdir: Path) -> dict:
    """Write ``.claude.json`` so the TUI opens at its prompt: onboarding done, the workdir trusted."""
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / ".claude.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        data = {}
    data.update({"hasCompletedOnboarding": True, "theme": data.get("theme", "dark"),
                 "autoUpdates": False, "hasSeenTasksHint": True})
    projects = data.setdefault("projects", {})
    proj = projects.setdefault(str(workdir.resolve()), {})
    proj.update({"hasTrustDialogAccepted": True, "hasCompletedProjectOnboarding": True})
    path.write_text(json.dumps(data, indent=2))
    return data


def session_env(profile: str, base_url: str, token: str, config_dir: Path) -> dict[str, str]:
    """The environment one demo session's Claude Code runs with."""
    return {"ANTHROPIC_BASE_URL": f"{base_url.rstrip('/')}/p/{profile}", "ANTHROPIC_AUTH_TOKEN": token,
            "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1", "CLAUDE_CONFIG_DIR": str(config_dir),
            "DISABLE_AUTOUPDATER": "1", "LLMPROXY_PROFILE": profile}


def claude_command(claude: str, env: dict[str, str]) -> str:
    """A shell command for tmux: clear inherited variables, set ours, run Claude Code."""
    import shlex

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

