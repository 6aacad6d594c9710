"""The ``llmproxy`` entry point. ``llmproxy statusline`` runs without Typer or Rich (Claude Code starts it
for every status-bar refresh); everything else goes to the Typer app in ``cli/app.py``.

A reader that goes away early (``llmproxy status | grep -q running``, ``| head``) is not a failure: the
command stops writing and exits 0, as the Python documentation's note on SIGPIPE does it."""

from __future__ import annotations

import os
import sys

from llmproxy.cli.pipes import PipeClosed


def run() -> None:
    try:
        _run()
    except (BrokenPipeError, PipeClosed):
        _pipe_closed()


def _run() -> None:
    if sys.argv[1:2] == ["statusline"] and len(sys.argv) == 2:
        from llmproxy.cli.statusline import main

        raise SystemExit(main())
    from llmproxy.cli.app import app

    app(prog_name="llmproxy")


def _pipe_closed() -> None:
    """Point stdout at /dev/null so the interpreter's last flush does not fail again, and exit 0."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    raise SystemExit(0)
