"""config init / config check / kg check."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from llmproxy import paths
from llmproxy.cli.console import CLIError, escape, out
from llmproxy.cli.options import ConfigPaths

if TYPE_CHECKING:
    from llmproxy.config import Config
    from llmproxy.routing import CompiledProfile, KnowledgeGraph

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
        raise CLIError(f"{path} exists; pass --force to overwrite")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(starter_config())
    except OSError as exc:
        raise CLIError(f"cannot write {path}: {exc.strerror}") from None
    out.print(f"wrote {path}")
    return 0


def check(paths: ConfigPaths) -> int:
    """Every problem of config, profiles and knowledge graphs, each naming its own file; the summary names the
    files that have problems (not the config file when the problems are elsewhere)."""
    from llmproxy import config as config_mod
    from llmproxy.cli.common import load_lenient, problem_files

    cfg, problems = load_lenient(paths)
    problems += compile_all(cfg, sorted(cfg.profiles))[1]
    for p in problems:
        out.print(f"[red]problem:[/] {escape(p)}", soft_wrap=True)
    for w in config_mod.missing_keys(cfg):
        out.print(f"[yellow]warning:[/] {escape(w)}", soft_wrap=True)
    if problems:
        where = problem_files(problems)
        out.print(f"[red]{len(problems)} problem(s)[/]" + (f" in {', '.join(where)}" if where else ""), soft_wrap=True)
        return 1
    out.print(f"[green]ok[/]: {cfg.source}, {len(cfg.profiles)} profiles, {len(cfg.providers)} providers")
    return 0


def load_kg(kg_dir: str | None) -> tuple[KnowledgeGraph, list[str]]:
    """(the knowledge graph of the concept files that parse, every problem of those that do not)."""
    from llmproxy.routing import KGError, KnowledgeGraph
    from llmproxy.routing.kg import build, parse_concept

    if not kg_dir:
        return KnowledgeGraph(), []
    d = Path(kg_dir)
    if not d.is_dir():
        return KnowledgeGraph(), [f"{d}: knowledge-graph directory not found"]
    concepts, problems = [], []
    for f in sorted(d.glob("*.md")):
        try:
            concepts.append(parse_concept(f))
        except KGError as exc:
            problems += exc.problems
    return build(concepts), problems


def compile_all(cfg: Config, names: list[str]) -> tuple[dict[str, CompiledProfile], list[str]]:
    """Every named profile compiled from the concept files that parse, and every file problem once (profiles
    may share a directory)."""
    from llmproxy.routing import CompiledProfile

    compiled: dict[str, CompiledProfile] = {}
    problems: dict[str, None] = {}
    for name in names:
        kg, found = load_kg(cfg.profiles[name].kg_dir)
        compiled[name] = CompiledProfile(cfg.profiles[name], kg)
        problems.update(dict.fromkeys(found))
    return compiled, list(problems)


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


def kg_check(profile: str | None, paths: ConfigPaths) -> int:
    """All problems at once: concept files that do not parse, then what the graphs that do load get wrong."""
    from llmproxy.cli.common import known_profile, load_lenient

    cfg, _ = load_lenient(paths)
    names = [known_profile(cfg, profile)] if profile else sorted(cfg.profiles)
    compiled, found = compile_all(cfg, names)
    found += kg_problems(cfg, compiled)
    for p in found:
        out.print(f"[yellow]problem:[/] {escape(p)}", soft_wrap=True)
    for name, prof in sorted(compiled.items()):
        out.print(f"{name}: {len(prof.kg.concepts)} concepts, {prof.kg.term_count} terms"
                  f"{'' if prof.config.kg_dir else ' (no knowledge graph)'}")
    if found:
        out.print(f"{len(found)} problem(s)")
    return 1 if found else 0
