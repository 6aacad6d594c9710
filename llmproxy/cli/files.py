"""``llmproxy files list|upload|show|download|delete``: the daemon's Files API from the shell. Uploads are
streamed from disk (multipart, never read whole), downloads streamed to disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

files_app = typer.Typer(no_args_is_help=True, help="Files stored by the daemon (referenced by file_id in messages).")

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]


def _daemon():
    from llmproxy.cli.batches import Daemon

    return Daemon()


def _row(f: dict) -> str:
    return f"{f['id']}  {f['size_bytes']:>10}  {f['mime_type']:24}  {f['filename']}"


@files_app.command("list")
def list_cmd(limit: Annotated[int, typer.Option(help="how many, newest first")] = 100, json_out: JsonOpt = False) -> None:
    """Stored files, newest first."""
    from llmproxy.cli.batches import _print_json
    from llmproxy.cli.console import out

    page = _daemon().json("GET", f"/v1/files?limit={limit}")
    if json_out:
        return _print_json(page)
    if not page["data"]:
        out.print("no files")
    for f in page["data"]:
        out.print(_row(f), markup=False, soft_wrap=True)


@files_app.command("upload")
def upload(path: Annotated[Path, typer.Argument(help="the file to store")],
           mime_type: Annotated[str | None, typer.Option("--mime-type", help="default: guessed from the name")] = None,
           json_out: JsonOpt = False) -> None:
    """Store a file; prints its id (use it as source {type: "file", file_id} in a message)."""
    import json
    import mimetypes
    import secrets

    from llmproxy.cli.batches import _print_json
    from llmproxy.cli.console import CLIError, out

    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    mime = mime_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    boundary = "llmproxy-" + secrets.token_hex(12)
    name = path.name.replace('"', "_").replace("\r", "_").replace("\n", "_")
    head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n"
            f"Content-Type: {mime}\r\n\r\n").encode()
    tail = f"\r\n--{boundary}--\r\n".encode()
    size = path.stat().st_size

    def body():
        yield head
        with path.open("rb") as fh:
            while chunk := fh.read(256 * 1024):
                yield chunk
        yield tail

    resp = _daemon().open("POST", "/v1/files", body(), {
        "content-type": f"multipart/form-data; boundary={boundary}",
        "content-length": str(len(head) + size + len(tail))})
    meta = json.loads(resp.read())
    if json_out:
        return _print_json(meta)
    out.print(_row(meta), markup=False, soft_wrap=True)


@files_app.command("show")
def show(file_id: str, json_out: JsonOpt = False) -> None:
    """One file's metadata."""
    from llmproxy.cli.batches import _print_json
    from llmproxy.cli.console import out

    meta = _daemon().json("GET", f"/v1/files/{file_id}")
    if json_out:
        return _print_json(meta)
    for k in ("id", "filename", "mime_type", "size_bytes", "created_at", "downloadable"):
        out.print(f"{k:13} {meta[k]}", markup=False)


@files_app.command("download")
def download(file_id: str,
             output: Annotated[Path | None, typer.Option("--output", "-o", help="where to write (default: the stored filename in the current directory; - for stdout)")] = None,
             force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False) -> None:
    """A file's content."""
    import sys

    from llmproxy.cli.console import CLIError, err
    from llmproxy.store import clean_filename

    d = _daemon()
    if output is None:
        output = Path(clean_filename(d.json("GET", f"/v1/files/{file_id}")["filename"]))  # never a path
    if str(output) != "-" and output.exists() and not force:
        raise CLIError(f"{output} exists; use --force or --output")
    resp = d.open("GET", f"/v1/files/{file_id}/content")
    sink = sys.stdout.buffer if str(output) == "-" else output.open("wb")
    n = 0
    try:
        while chunk := resp.read(256 * 1024):
            sink.write(chunk)
            n += len(chunk)
    finally:
        if sink is not sys.stdout.buffer:
            sink.close()
    if str(output) != "-":
        err.print(f"wrote {n} bytes to {output}", markup=False)


@files_app.command("delete")
def delete(file_id: str) -> None:
    """Remove a file (metadata and content)."""
    from llmproxy.cli.console import out

    _daemon().json("DELETE", f"/v1/files/{file_id}")
    out.print(f"deleted {file_id}", markup=False)
