"""From what the client measured to the figures of the tables: percentiles, the matrix summarised per body,
path and mode (``summarize``), and the formatting of milliseconds, differences, ratios and markdown tables.
"""

from __future__ import annotations

PATHS = {"pass": "passthrough (Anthropic kind)", "xlate": "translated (OpenAI kind)"}
BODY_NAMES = {"small": "1 KB", "cc": "Claude Code ~90 KB"}


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    s = sorted(xs)
    return s[min(len(s) - 1, max(0, round(q * (len(s) - 1))))]


def ms(x: float) -> str:
    return "–" if x != x else f"{x * 1000:.2f}"


def plus(x: float) -> str:
    return "–" if x != x else f"{x * 1000:+.2f}"


def ratio(a: float, b: float) -> str:
    return "–" if not b or a != a or b != b else f"{a / b:.2f}"


def table(head: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def summarize(res: dict, proxies: list[str]) -> dict:
    """Per (body, path, mode): added latency at c=1, CPU/request pooled over all c; per cell throughput."""
    s: dict = {}
    for (b, p, m, c), parties in res.items():
        key = (b, p, m)
        d = s.setdefault(key, {"cpu": {}, "tput": {}, "lat": {}, "err": {}})
        for party, st in parties.items():
            d["err"][party] = d["err"].get(party, 0) + st.errors
            if st.wall:
                d["tput"][(party, c)] = st.n / st.wall
            if party != "direct":
                cpu_s, n = d["cpu"].get(party, (0.0, 0))
                d["cpu"][party] = (cpu_s + st.cpu, n + st.n)
                d.setdefault("cpu_c", {})[(party, c)] = st.cpu / st.n if st.n else float("nan")
            if c == 1:
                d["lat"][party] = st
    return s
