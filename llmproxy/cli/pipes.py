"""A reader that goes away early is not a failure: the one exception the app's group raises for it, caught by
the entry point (``cli/main.py``). Its own module so the entry point stays free of Typer and Rich."""

from __future__ import annotations


class PipeClosed(Exception):
    """Raised by the app's group for a BrokenPipeError (Click would turn that into exit status 1)."""
