"""The ``llmproxy`` entry point. ``llmproxy statusline`` runs without Typer or Rich (Claude Code starts it
for every status-bar refresh); everything else goes to the Typer app in ``cli/app.py``."""

from __future__ import annotations

import sys


def run() -> None:
    if sys.argv[1:2] == ["statusline"] and len(sys.argv) == 2:
        from llmproxy.cli.statusline import main

        raise SystemExit(main())
    from llmproxy.cli.app import app

    app()


def __getattr__(name: str):  # `from llmproxy.cli.main import app` keeps working
    if name == "app":
        from llmproxy.cli.app import app

        return app
    raise AttributeError(name)
