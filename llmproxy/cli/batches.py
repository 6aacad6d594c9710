"""``llmproxy batches list|show|results|cancel|submit``: the running daemon's Message Batches API, from the
shell. Also the small HTTP client ``llmproxy files`` uses (the daemon's address from its pid file, the proxy
key a client sends). Typer only at import time; everything else when a command runs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperCommand


class Command(TyperCommand):
    """A command whose usage line names a required argument plainly (``BATCH_ID``, not Typer's ``{BATCH_ID}``)."""

    def collect_usage_pieces(self, ctx) -> list[str]:
        return [p.replace("{", "").replace("}", "") for p in super().collect_usage_pieces(ctx)]


batches_app = typer.Typer(no_args_is_help=True, help="Message Batches run by the daemon (any provider, any profile).")

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
BatchId = Annotated[str, typer.Argument(metavar="BATCH_ID", help="the batch's id (msgbatch_…)")]


# ---------------------------------------------------------------------------------------------- the client

KEY_HINT = ("the CLI sends the first proxy key of the configuration it reads ([auth] api_keys in "
            "$LLMPROXY_HOME/config.toml, then the variable [auth] api_keys_env names, LLMPROXY_API_KEYS by "
            "default): give it a key the daemon accepts")

class Daemon:
    """The running daemon, spoken to over HTTP (``http.client``: no aiohttp in the CLI)."""

    def __init__(self) -> None:
        from llmproxy import config as config_mod
        from llmproxy.cli.common import proxy_token
        from llmproxy.cli.console import CLIError
        from llmproxy.daemonctl import running

        live, stale = running()
        if live is None:
            raise CLIError("llmproxy is not running" + (f" ({stale})" if stale else "") + "; start it with "
                           "'llmproxy serve --daemon'")
        self.host, self.port = live["host"], live["port"]
        if self.host in ("0.0.0.0", "::", ""):
            self.host = "127.0.0.1"
        self.token = proxy_token(config_mod.load(strict=False)[0])

    def open(self, method: str, path: str, body=None, headers: dict | None = None, timeout: float = 300):
        """The response, open (the caller reads it); an error answer becomes a CLIError with its message."""
        import http.client

        from llmproxy.cli.console import CLIError

        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request(method, path, body=body, headers={"x-api-key": self.token, **(headers or {})})
            resp = conn.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            raise CLIError(f"the daemon on {self.host}:{self.port} does not answer ({exc})") from None
        if resp.status >= 400:
            raw = resp.read()
            conn.close()
            raise CLIError(f"{method} {path}: HTTP {resp.status}: {_error_text(raw)}"
                           + (f"; {KEY_HINT}" if resp.status == 401 else ""))
        return resp

    def json(self, method: str, path: str, data: object = None) -> dict:
        import json

        body = json.dumps(data).encode() if data is not None else None
        resp = self.open(method, path, body, {"content-type": "application/json"} if body else None)
        return json.loads(resp.read())


def _error_text(raw: bytes) -> str:
    import json

    try:
        return str(json.loads(raw)["error"]["message"])
    except (ValueError, KeyError, TypeError):
        return raw[:300].decode("utf-8", "replace")


def _print_json(data: object) -> None:
    import json

    from llmproxy.cli.console import out

    out.print_json(json.dumps(data))


# ---------------------------------------------------------------------------------------------- commands

def _progress(b: dict) -> dict:
    """The batch's counts: ``llmproxy_progress`` (live while it runs) when the daemon sends it, else
    ``request_counts`` (the API's, final only once the batch has ended)."""
    live = b.get("llmproxy_progress")
    return live if isinstance(live, dict) and live else b["request_counts"]


def _counts(b: dict) -> str:
    c = _progress(b)
    return " ".join(f"{k} {c[k]}" for k in ("processing", "succeeded", "errored", "canceled", "expired") if c.get(k))


@batches_app.command("list", cls=Command)
def list_cmd(limit: Annotated[int, typer.Option(metavar="N", help="how many, newest first")] = 20, json_out: JsonOpt = False) -> None:
    """The daemon's batches, newest first."""
    from llmproxy.cli.console import fit_width, out

    page = Daemon().json("GET", f"/v1/messages/batches?limit={limit}")
    if json_out:
        return _print_json(page)
    if not page["data"]:
        out.print("no batches")
        return
    rows = [(b["id"], b["processing_status"], b["created_at"][:19].replace("T", " "),
             str(sum(_progress(b).values())), _counts(b)) for b in page["data"]]
    for line in batch_lines(rows, fit_width()):
        out.print(line, markup=False, soft_wrap=True)


def batch_lines(rows: list[tuple[str, ...]], width: int | None) -> list[str]:
    """``batches list`` as aligned lines. The id is the one column a user copies: it is never cut; when the
    line does not fit ``width``, the counts go to a line of their own under it, indented."""
    from llmproxy.cli.format import columns

    head = ("id", "status", "created", "requests", "counts")
    lines = columns([head, *rows], right=(3,))
    if width is None or max(map(len, lines)) <= width:
        return lines
    short = columns([head[:4], *(r[:4] for r in rows)], right=(3,))
    return [short[0]] + [x for line, r in zip(short[1:], rows, strict=True) for x in (line, f"    {r[4]}") if x.strip()]


@batches_app.command("show", cls=Command)
def show(batch_id: BatchId, json_out: JsonOpt = False) -> None:
    """One batch: status, counts, times, where its results are."""
    from llmproxy.cli.console import out

    b = Daemon().json("GET", f"/v1/messages/batches/{batch_id}")
    if json_out:
        return _print_json(b)
    out.print(f"{b['id']}  {b['processing_status']}  ({_counts(b) or 'no requests'})", markup=False)
    for key in ("created_at", "expires_at", "cancel_initiated_at", "ended_at", "results_url"):
        if b.get(key):
            out.print(f"  {key:20} {b[key]}", markup=False, soft_wrap=True)  # a URL is never split


@batches_app.command("results", cls=Command)
def results(batch_id: BatchId,
            output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE", help="write the JSONL here (default: stdout)")] = None
            ) -> None:
    """An ended batch's results, one JSON line per request (streamed)."""
    import sys

    resp = Daemon().open("GET", f"/v1/messages/batches/{batch_id}/results")
    sink = output.open("wb") if output else sys.stdout.buffer
    try:
        while chunk := resp.read(64 * 1024):
            sink.write(chunk)
    finally:
        if output:
            sink.close()
        else:
            sink.flush()


@batches_app.command("cancel", cls=Command)
def cancel(batch_id: BatchId) -> None:
    """Stop a batch: in-flight requests finish, the rest end as canceled."""
    from llmproxy.cli.console import out

    b = Daemon().json("POST", f"/v1/messages/batches/{batch_id}/cancel")
    out.print(f"{b['id']}  {b['processing_status']}  ({_counts(b)})", markup=False)


def read_jsonl(path: Path) -> list[dict]:
    """``{custom_id, params}`` per line (blank lines skipped); a bad line is a CLIError naming it."""
    import json

    from llmproxy.cli.console import CLIError

    try:
        text = sys_stdin_text() if str(path) == "-" else path.read_text()
    except OSError as exc:
        raise CLIError(f"cannot read {path}: {exc.strerror}") from None
    reqs = []
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except ValueError as exc:
            raise CLIError(f"{path}:{n}: not JSON ({exc})") from None
        if not isinstance(item, dict) or "params" not in item:
            raise CLIError(f"{path}:{n}: expected an object with custom_id and params")
        reqs.append(item)
    if not reqs:
        raise CLIError(f"{path}: no requests")
    return reqs


def sys_stdin_text() -> str:
    import sys

    return sys.stdin.read()


@batches_app.command("submit", cls=Command)
def submit(
    file: Annotated[Path, typer.Argument(metavar="FILE", help="JSONL: one {\"custom_id\", \"params\"} per line (- for stdin)")],
    profile: Annotated[str | None, typer.Option("--profile", "-p", metavar="NAME", help="profile to route through (default: server.default_profile)")] = None,
    watch: Annotated[bool, typer.Option("--watch", help="show a progress bar until the batch ends")] = False,
    json_out: JsonOpt = False,
) -> None:
    """Create a batch from a JSONL file; with --watch, follow it to the end."""
    from llmproxy.cli.console import out

    reqs = read_jsonl(file)
    d = Daemon()
    prefix = f"/p/{profile}" if profile else ""
    b = d.json("POST", f"{prefix}/v1/messages/batches", {"requests": reqs})
    if json_out and not watch:
        return _print_json(b)
    out.print(f"submitted {b['id']} ({len(reqs)} requests{', profile ' + profile if profile else ''})", markup=False)
    if watch:
        b = _watch(d, b["id"], len(reqs))
        out.print(f"{b['id']}  {b['processing_status']}  ({_counts(b)})", markup=False)
        out.print(f"results: llmproxy batches results {b['id']}", markup=False)


def _watch(d: Daemon, batch_id: str, total: int) -> dict:
    import time

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from llmproxy.cli.console import err

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[detail]}"),
                  TimeElapsedColumn(), console=err, transient=False) as bar:
        task = bar.add_task(batch_id, total=total, detail="")
        while True:
            b = d.json("GET", f"/v1/messages/batches/{batch_id}")
            c = _progress(b)
            bar.update(task, completed=total - c.get("processing", 0),
                       detail=" ".join(f"{k} {c[k]}" for k in ("errored", "canceled", "expired") if c.get(k)))
            if b["processing_status"] == "ended":
                return b
            time.sleep(0.5)
