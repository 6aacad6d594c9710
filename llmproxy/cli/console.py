"""The CLI's one pair of consoles and its one way of saying that something went wrong.

Commands raise :class:`CLIError`; the app's top-level group renders it once (``error: …`` on stderr, with
any detail lines before it) and exits with its code. Nothing else prints ``error:``.

Written to a pipe or a file, nothing is wrapped (a line is whole, a path or URL is never split): Rich would
otherwise hard-wrap at 80 columns. Tables that must fit a width ask :func:`fit_width`.
"""

from __future__ import annotations

import errno
import os

from rich.console import Console


class _Console(Console):
    def on_broken_pipe(self) -> None:
        """Rich would exit 1; the reader going away is not a failure (``cli/main.py`` exits 0)."""
        raise BrokenPipeError(errno.EPIPE, "the reader closed the pipe")


out = _Console(highlight=False)
out.soft_wrap = not out.is_terminal
err = _Console(stderr=True, highlight=False)
err.soft_wrap = not err.is_terminal


def fit_width(console: Console | None = None) -> int | None:
    """The width output should fit: the terminal's, or ``COLUMNS`` in a pipe; None (a pipe without
    ``COLUMNS``) means whole lines, never cut or wrapped."""
    console = console or out
    if console.is_terminal:
        return console.width
    cols = os.environ.get("COLUMNS", "")
    return int(cols) if cols.isdigit() and int(cols) > 0 else None


class CLIError(Exception):
    """A user-facing failure: ``message`` is the one line the user reads, ``details`` (each already
    prefixed, e.g. ``config: …``) come before it, ``code`` is the exit status."""

    def __init__(self, message: str, code: int = 1, details: list[str] | None = None):
        super().__init__(message)
        self.message, self.code, self.details = message, code, list(details or ())


def render_error(exc: CLIError) -> None:
    for line in exc.details:
        err.print(line, markup=False, soft_wrap=True)
    err.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)


def warn(message: str) -> None:
    err.print(f"[yellow]warning:[/] {escape(message)}", soft_wrap=True)


def note(message: str) -> None:
    err.print(f"[yellow]note:[/] {escape(message)}", soft_wrap=True)


def escape(text: str) -> str:
    from rich.markup import escape as _escape

    return _escape(text)
