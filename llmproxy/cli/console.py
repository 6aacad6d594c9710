"""The CLI's one pair of consoles and its one way of saying that something went wrong.

Commands raise :class:`CLIError`; the app's top-level group renders it once (``error: …`` on stderr, with
any detail lines before it) and exits with its code. Nothing else prints ``error:``.
"""

from __future__ import annotations

from rich.console import Console

out = Console(highlight=False)
err = Console(stderr=True, highlight=False)


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
