"""config init / config check / kg check."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console

from llmproxy import paths

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)

_SECTIONS = [
    ("server", "Where the daemon listens and which profile the bare root uses.",
     {"host": "127.0.0.1", "port": 3456, "default_profile": "balanced"}),
    ("auth", "Proxy API keys. Empty: no auth, and only loopback may be bound (unless --allow-remote).\n"
             "Keys may also come from the variable named by api_keys_env (comma-separated).",
     {"api_keys": [], "api_keys_env": "LLMPROXY_API_KEYS"}),
    ("log", "The request log in $LLMPROXY_HOME/logs/requests.jsonl.",
     {"bodies": False, "body_max_bytes": 65536, "rotate_bytes": 52428800, "rotate_keep": 5}),
    ("providers.anthropic", "A provider: kind (anthropic | openai | simulator), base_url, and the NAME of the\n"
                            "environment variable holding its key (keys never live in this file).\n"
                            "forward_client_key = true uses the client's own Anthropic key when the variable is unset.",
     {"kind": "anthropic", "base_url": "https://api.anthropic.com", "api_key_env": "ANTHROPIC_API_KEY",
      "forward_client_key": False}),
    ("providers.myollama", "An example local OpenAI-compatible provider with one catalog model.",
     {"kind": "openai", "base_url": "http://127.0.0.1:11434/v1", "api_key_env": "", "allow_any_model": True,
      "models": {"llama3.1:8b": {"context_window": 131072, "max_output": 8192, "input_price": 0.0,
                                 "output_price": 0.0, "images": False}}}),
]


def starter_config() -> str:
    import tomli_w

    parts = ["# llmproxy configuration. Anything left out falls back to the bundled defaults\n"
             "# (see llmproxy/data/default.toml); profiles live in $LLMPROXY_HOME/profiles/*.toml.\n"]
    for dotted, comment, data in _SECTIONS:
        nested: dict = data
        for key in reversed(dotted.split(".")):
            nested = {key: nested}
        parts.append("\n".join(f"# {line}" for line in comment.splitlines()) + "\n" + tomli_w.dumps(nested))
    return "\n".join(parts)


def init(path: Path | None, force: bool) -> int:
    path = path or paths.config_file()
    if path.exists() and not force:
        err.print(f"[red]error:[/] {path} exists; pass --force to overwrite")
        return 1
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(starter_config())
    except OSError as exc:
        err.print(f"[red]error:[/] cannot write {path}: {exc.strerror}")
        return 1
    out.print(f"wrote {path}")
    return 0


def check(config: Path | None, profile_dirs: list[Path]) -> int:
    from llmproxy import config as config_mod
    from llmproxy.routing import KGError, compile_profiles

    cfg, problems = config_mod.load(config, profile_dirs, strict=False)
    try:
        compile_profiles(cfg)
    except KGError as exc:
        problems.append(str(exc))
    for p in problems:
        out.print(f"[red]error:[/] {p}")
    for w in config_mod.missing_keys(cfg):
        out.print(f"[yellow]warning:[/] {w}")
    if problems:
        out.print(f"[red]{len(problems)} problem(s)[/] in {cfg.source}")
        return 1
    out.print(f"[green]ok[/]: {cfg.source}, {len(cfg.profiles)} profiles, {len(cfg.providers)} providers")
    return 0


def kg_problems(cfg, compiled) -> list[str]:
    out_: list[str] = []
    for name, prof in sorted(compiled.items()):
        kg = prof.kg
        for term, kept, dropped in kg.duplicates:
            out_.append(f"{name}: term {term!r} is in both {kept!r} and {dropped!r} (the first wins)")
        for c in kg.concepts.values():
            if len(c.terms) <= 1:
                out_.append(f"{c.source}: concept {c.name!r} has no synonyms")
            for t in c.terms:
                if len(t.replace(" ", "")) < 2:
                    out_.append(f"{c.source}: term {t!r} is shorter than two letters")
            for r in c.routes:
                if problem := cfg.target_problem(r):
                    out_.append(f"{c.source}: route:: {problem}")
            if c.scenario and c.scenario not in prof.config.scenarios and c.scenario != "default":
                out_.append(f"{c.source}: scenario:: profile {name!r} has no {c.scenario!r} route "
                            f"(its default will be used)")
    return out_


def kg_check(profile: str | None, config: Path | None, profile_dirs: list[Path]) -> int:
    from llmproxy import config as config_mod
    from llmproxy.routing import KGError, compile_profiles

    cfg, problems = config_mod.load(config, profile_dirs, strict=False)
    try:
        compiled = compile_profiles(cfg)
    except KGError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 1
    if profile:
        if profile not in compiled:
            err.print(f"[red]error:[/] unknown profile {profile!r} (known: {', '.join(sorted(compiled))})")
            return 1
        compiled = {profile: compiled[profile]}
    found = kg_problems(cfg, compiled)
    for p in found:
        out.print(f"[yellow]problem:[/] {p}")
    for name, prof in sorted(compiled.items()):
        out.print(f"{name}: {len(prof.kg.concepts)} concepts, {prof.kg.term_count} terms"
                  f"{'' if prof.config.kg_dir else ' (no knowledge graph)'}")
    return 1 if found else 0
