"""``llmproxy route-test``: the routing decision for a prompt or a recorded request, offline."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from rich.console import Console
from rich.table import Table
from rich.text import Text

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


def highlight(text: str, matches: list[dict], winner: str | None) -> Text:
    t = Text(text)
    for m in matches:
        style = "bold black on yellow" if m["concept"] == winner else "underline"
        t.stylize(style, m["start"], m["end"])
    return t


def run(text: str | None, profile: str | None, all_profiles: bool, json_out: bool, request: Path | None,
        config: Path | None, profile_dirs: list[Path]) -> int:
    from llmproxy import config as config_mod
    from llmproxy.errors import ProxyError
    from llmproxy.routing import KGError, compile_profiles, decide

    try:
        cfg, _ = config_mod.load(config, profile_dirs)
        compiled = compile_profiles(cfg)
    except config_mod.ConfigError as exc:
        for p in exc.problems:
            err.print(f"[red]config:[/] {p}")
        return 1
    except KGError as exc:
        err.print(f"[red]error:[/] {exc}")
        return 1
    headers: dict[str, str] = {}
    if request is not None:
        try:
            data = json.loads(sys.stdin.read() if str(request) == "-" else request.read_text())
        except (OSError, ValueError) as exc:
            err.print(f"[red]error:[/] cannot read request {request}: {exc}")
            return 1
        if isinstance(data, dict) and isinstance(data.get("body"), dict):  # a recorded {headers, body} file
            headers = {k.lower(): str(v) for k, v in (data.get("headers") or {}).items()}
            data = data["body"]
        body = data
    elif text is not None:
        body = {"model": "claude", "max_tokens": 1, "messages": [{"role": "user", "content": text}]}
    else:
        err.print("[red]error:[/] give a prompt, or --request FILE.json")
        return 2
    names = sorted(compiled) if all_profiles else [profile or cfg.server.default_profile]
    decisions = []
    for name in names:
        if name not in compiled:
            err.print(f"[red]error:[/] unknown profile {name!r} (known: {', '.join(sorted(compiled))})")
            return 1
        try:
            decisions.append(decide(body, compiled[name], cfg, compiled, headers=headers).to_dict())
        except ProxyError as exc:
            err.print(f"[red]error:[/] {exc.message}")
            return 1
    if json_out:
        out.print_json(data=decisions if all_profiles else decisions[0])
        return 0
    if all_profiles:
        tbl = Table(show_edge=False)
        for col in ("profile", "scenario", "concept", "target", "reason"):
            tbl.add_column(col)
        for d in decisions:
            tbl.add_row(d["profile"], d["scenario"], d["concept"] or "", d["target"], "; ".join(d["reasons"]))
        out.print(tbl)
        return 0
    d = decisions[0]
    from llmproxy.routing.text import latest_human_text

    human, _ = latest_human_text(body.get("messages") or [])
    out.print(Text.assemble(("profile  ", "dim"), (d["profile"], "bold")))
    out.print(Text.assemble(("scenario ", "dim"), (d["scenario"], "bold magenta"),
                            (f"  concept {d['concept']}" if d["concept"] else "", "magenta")))
    out.print(Text.assemble(("text     ", "dim"), highlight(human[:2000], d["matches"], d["concept"])))
    if d["matches"]:
        out.print(Text("matches  ", style="dim") + Text(", ".join(
            f"{m['term']!r}→{m['concept']}" for m in d["matches"])))
    out.print(Text("chain    ", style="dim") + Text(" → ".join(
        f"{c['provider']}/{c['model']}" for c in d["chain"]), style="cyan"))
    for r in d["reasons"]:
        out.print(Text("reason   ", style="dim") + Text(r))
    out.print(Text(f"~{d['estimated_tokens']} input tokens", style="dim"))
    return 0
