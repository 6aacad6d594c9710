"""stop / status: whether the daemon runs and how it is, and stopping it; one clear line per failure.
(serve is in servecmd.py, reload in reloadcmd.py.)"""

from __future__ import annotations

from llmproxy.cli.console import CLIError, err, out
from llmproxy.daemonctl import get_health, running


def not_running(note_: str | None) -> str:
    return f"llmproxy is not running{f' ({note_})' if note_ else ''}"


def stop() -> int:
    """Nothing to stop is not a failure: exit 0 with a message (the same rule as `demo stop`)."""
    from llmproxy.daemonctl import terminate

    live, stale = running()
    if live is None:
        out.print(f"{not_running(stale)}; nothing to stop")
        return 0
    if terminate(live["pid"], _grace()) == "killed":
        err.print(f"[yellow]pid {live['pid']} did not stop within the grace period; sent SIGKILL[/]")
        out.print(f"llmproxy killed (pid {live['pid']})")
    else:
        out.print(f"llmproxy stopped (pid {live['pid']})")
    return 0


def _grace() -> float:
    from llmproxy import config as config_mod

    try:
        return config_mod.load(strict=False)[0].server.grace_seconds
    except Exception:  # noqa: BLE001 - stopping must work even with a broken config
        return 10.0


def status(json_out: bool) -> int:
    """Exit 0 when a healthy daemon runs, 1 otherwise (scripts ask `llmproxy status` whether to start one)."""
    from llmproxy.cli.format import fmt_uptime, providers_table

    live, stale = running()
    if live is None:
        if json_out:
            out.print_json(data={"running": False, "note": stale})
        else:
            out.print(not_running(stale))
        return 1
    health = get_health(live["host"], live["port"])
    if json_out:
        out.print_json(data={"running": True, **live, "health": health})
        return 0 if health else 1
    out.print(f"llmproxy is [green]running[/]: pid {live['pid']}, http://{live['host']}:{live['port']}")
    if health is None:
        raise CLIError("the daemon does not answer /health")
    if "uptime_s" not in health:  # it told only whether it is up: our key is missing or not one of its keys
        raise CLIError("the daemon requires a proxy API key to say more, and the configured one is missing or "
                       "not one it accepts (auth.api_keys / api_keys_env in the config it runs with)")
    out.print(f"uptime {fmt_uptime(health['uptime_s'])}, requests served {health['requests_served']}, "
              f"in flight {health['in_flight']}")
    out.print(f"profiles: {', '.join(health['profiles'])} (default {health['default_profile']})")
    for line in stale_lines(health):
        out.print(line, soft_wrap=True)
    out.print(providers_table(health))
    return 0


def stale_lines(health: dict) -> list[str]:
    """'config stale since …' and why, when the last reload failed (the daemon keeps the previous config)."""
    since = health.get("config_stale_since")
    if not since:
        return []
    lines = [f"[bold yellow]config stale since {since}[/]: the last reload failed; the previous configuration "
             f"stays in force (fix it, then `llmproxy reload`)"]
    from llmproxy.cli.console import escape

    return lines + [f"  [red]{escape(p)}[/]" for p in health.get("reload_problems") or []]
