"""``llmproxy route-test``: the routing decision for a prompt or a recorded request, offline. Without
``--profile`` every usable profile gets a row; a broken profile is reported and left out, not fatal."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from typing import TYPE_CHECKING

from rich.text import Text

from llmproxy.cli.console import CLIError, out, warn
from llmproxy.cli.options import RouteTestOptions

if TYPE_CHECKING:
    from llmproxy.routing import Router


def highlight(text: str, matches: list[dict], winner: str | None) -> Text:
    t = Text(text)
    for m in matches:
        style = "bold black on yellow" if m["concept"] == winner else "underline"
        t.stylize(style, m["start"], m["end"])
    return t


def request_of(opts: RouteTestOptions) -> tuple[dict, dict[str, str]]:
    """(request body, lower-cased headers) from --request FILE (a body, or a recorded {headers, body}) or the
    prompt text."""
    if opts.request is None:
        if opts.text is None:
            raise CLIError("give a prompt, or --request FILE.json", code=2)
        return {"model": "claude", "max_tokens": 1, "messages": [{"role": "user", "content": opts.text}]}, {}
    try:
        data = json.loads(sys.stdin.read() if str(opts.request) == "-" else opts.request.read_text())
    except (OSError, ValueError) as exc:
        raise CLIError(f"cannot read request {opts.request}: {exc}") from None
    if isinstance(data, dict) and isinstance(data.get("body"), dict):  # a recorded {headers, body} file
        return data["body"], {k.lower(): str(v) for k, v in (data.get("headers") or {}).items()}
    if not isinstance(data, dict):
        raise CLIError(f"{opts.request}: expected a JSON object (a request body)")
    return data, {}


def load_router(opts: RouteTestOptions) -> Router:
    """A Router over every profile that works; the others (and problems elsewhere) become warnings."""
    from llmproxy.cli.common import load_lenient, usable_router

    cfg, problems = load_lenient(opts.paths)
    router, broken = usable_router(cfg, problems)
    for name, why in broken.items():
        warn(f"profile {name!r} left out: {why}")
    sources = {p.source for p in cfg.profiles.values()}
    for p in problems:
        if not any(p.startswith(s + ":") for s in sources):
            warn(p)
    if not router.profiles:
        raise CLIError("no usable profile; run 'llmproxy config check'")
    return router


def decisions(router: Router, names: list[str | None], body: dict, headers: dict[str, str]) -> list[dict]:
    from llmproxy.errors import ProxyError

    found = []
    for name in names:
        try:
            found.append(router.decide(body, router.profile(name), headers=headers).to_dict())
        except ProxyError as exc:
            raise CLIError(exc.message) from None
    return found


def print_table(found: list[dict]) -> None:
    """One aligned row per profile; the reason runs on at the end (never cut, also in a pipe)."""
    from llmproxy.cli.format import columns

    rows = [(d["profile"], d["scenario"] + (f":{d['concept']}" if d["concept"] else ""), d["target"],
             "; ".join(d["reasons"])) for d in found]
    head, *body = columns([("profile", "scenario", "target", "reason"), *rows])
    out.print(head, style="bold", markup=False, soft_wrap=True)
    for line in body:
        out.print(line, markup=False, soft_wrap=True)
    out.print("[dim]one profile in detail: --profile NAME[/]")


def print_one(d: dict, body: dict) -> None:
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


def explain_miss(router: Router, opts: RouteTestOptions) -> int:
    """``--why-not CONCEPT``: for each profile whose graph has the concept (or the one given), why it did or
    did not fire for the text."""
    from llmproxy.routing.whynot import why_not

    if opts.text is None:
        raise CLIError("--why-not needs the prompt text", code=2)
    names = [opts.profile] if opts.profile else router.names()
    having = [n for n in names if opts.why_not in router.profile(n).kg.concepts]
    if not having:
        known = sorted({c for n in names for c in router.profile(n).kg.concepts})
        raise CLIError(f"no profile has a concept {opts.why_not!r} (known: {', '.join(known) or 'none'})", code=2)
    found = [(name, why_not(router.profile(name).kg, opts.why_not, opts.text)) for name in having]
    if opts.json_out:
        out.print_json(data=[{"profile": name, **asdict(w)} for name, w in found])
        return 0
    for name, w in found:
        out.print(f"{name}: {w}", markup=False, soft_wrap=True)
    return 0


def run(opts: RouteTestOptions) -> int:
    body, headers = request_of(opts)
    router = load_router(opts)
    if opts.profile and opts.profile not in router.profiles:  # a wrong value, like an unknown concept: exit 2
        raise CLIError(f"unknown profile {opts.profile!r}; valid profiles: {', '.join(router.names())}", code=2)
    if opts.why_not:
        return explain_miss(router, opts)
    names: list[str | None] = [opts.profile] if opts.profile else list(router.names())
    found = decisions(router, names, body, headers)
    if opts.json_out:
        out.print_json(data=found[0] if opts.profile else found)
    elif opts.profile:
        print_one(found[0], body)
    else:
        print_table(found)
    return 0
