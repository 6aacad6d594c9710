"""`llmproxy ui`: make sure the daemon runs, print the dashboard's URL, and open it in a browser when this
machine has one to show it (a desktop session; never a text-mode browser in the terminal)."""

from __future__ import annotations

import os
import sys

from llmproxy.cli.console import err, escape

TEXT_BROWSERS = frozenset({"www-browser", "lynx", "w3m", "links", "elinks"})


def dashboard_url(base_url: str) -> str:
    """The page's URL; a wildcard bind address is reached through loopback."""
    for wildcard in ("://0.0.0.0:", "://[::]:"):
        base_url = base_url.replace(wildcard, "://127.0.0.1:")
    return base_url.rstrip("/") + "/ui"


def can_open_browser() -> bool:
    """A graphical browser can show the page: macOS, Windows, or a desktop session on other systems, and a
    browser that ``webbrowser`` knows about (text-mode ones would take over this terminal)."""
    import webbrowser

    if sys.platform not in ("darwin", "win32") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False
    try:
        browser = webbrowser.get()
    except webbrowser.Error:
        return False
    return os.path.basename(getattr(browser, "name", "") or "") not in TEXT_BROWSERS


def run(port: int | None, open_browser: bool) -> int:
    from llmproxy.cli.common import ensure_daemon, load_lenient
    from llmproxy.cli.options import ConfigPaths

    base_url = ensure_daemon(port, "ui")
    url = dashboard_url(base_url)
    print(url, flush=True)
    cfg, _ = load_lenient(ConfigPaths())
    if cfg.api_keys:
        err.print(escape("the page asks once for a proxy API key (one of [auth] api_keys) and keeps it for that "
                         "tab only"))
    if open_browser and can_open_browser():
        import webbrowser

        if not webbrowser.open(url, new=2):
            err.print("could not open a browser: open the URL above")
    elif open_browser:
        from urllib.parse import urlsplit

        p = urlsplit(url).port
        err.print(f"no graphical browser here: open the URL above (from another machine: ssh -L {p}:127.0.0.1:{p} "
                  f"this-host, then the same URL there)")
    return 0
