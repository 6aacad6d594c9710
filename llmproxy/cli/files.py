"""``llmproxy files list|upload|show|download|delete``: the daemon's Files API from the shell. Uploads are
streamed from disk (multipart, never read whole). ``download`` copies a file out of the configured store
(``[store] url`` or $LLMPROXY_DATABASE_URL, else the local one; the API does not serve uploaded files'
content), streamed to disk."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from llmproxy.cli.batches import Command

files_app = typer.Typer(no_args_is_help=True, help="Files stored by the daemon (referenced by file_id in messages).")

JsonOpt = Annotated[bool, typer.Option("--json", help="machine-readable output")]
FileId = Annotated[str, typer.Argument(metavar="FILE_ID", help="the file's id (file_…)")]


def _daemon():
    from llmproxy.cli.batches import Daemon

    return Daemon()


def _row(f: dict) -> str:
    return f"{f['id']}  {f['size_bytes']:>10}  {f['mime_type']:24}  {f['filename']}"


@files_app.command("list", cls=Command)
def list_cmd(limit: Annotated[int, typer.Option(metavar="N", help="how many, newest first")] = 100, json_out: JsonOpt = False) -> None:
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


@files_app.command("upload", cls=Command)
def upload(path: Annotated[Path, typer.Argument(metavar="PATH", help="the file to store")],
           mime_type: Annotated[str | None, typer.Option("--mime-type", metavar="TYPE", help="default: guessed from the name")] = None,
           json_out: JsonOpt = False) -> None:
    """Store a file; prints its id (use it as source {type: "file", file_id} in a message)."""
    import json
    import mimetypes
    import secrets

    from llmproxy.cli.batches import _print_json
    from llmproxy.cli.console import CLIError, out
    from llmproxy.store import filename_problem

    if not path.is_file():
        raise CLIError(f"{path}: no such file")
    mime = mime_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    boundary = "llmproxy-" + secrets.token_hex(12)
    if problem := filename_problem(path.name):  # the daemon would refuse it: say so before sending anything
        raise CLIError(f"{path}: {problem}; rename the file (the name is kept as it is, never rewritten)")
    name = path.name
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


@files_app.command("show", cls=Command)
def show(file_id: FileId, json_out: JsonOpt = False) -> None:
    """One file's metadata."""
    from llmproxy.cli.batches import _print_json
    from llmproxy.cli.console import out

    meta = _daemon().json("GET", f"/v1/files/{file_id}")
    if json_out:
        return _print_json(meta)
    for k in ("id", "filename", "mime_type", "size_bytes", "created_at", "downloadable"):
        out.print(f"{k:13} {meta[k]}", markup=False)


@files_app.command("download", cls=Command)
def download(file_id: FileId,
             output: Annotated[Path | None, typer.Option("--output", "-o", metavar="FILE", help="where to write (default: the stored filename in the current directory; - for stdout)")] = None,
             force: Annotated[bool, typer.Option(help="overwrite an existing file")] = False) -> None:
    """A stored file's content, read from the store the configuration names ([store] url or
    $LLMPROXY_DATABASE_URL: the fleet's PostgreSQL; else this machine's, under $LLMPROXY_HOME). The API never
    serves an uploaded file's content (it is downloadable: false, as on Anthropic's API); your own copy is
    here."""
    import asyncio
    import sys

    from llmproxy import paths
    from llmproxy.cli.common import load_lenient
    from llmproxy.cli.console import CLIError, err
    from llmproxy.cli.options import ConfigPaths
    from llmproxy.store import StoreUnavailable, open_store

    cfg, _problems = load_lenient(ConfigPaths())

    async def copy() -> int:
        store = open_store(paths.home(), cfg.store)
        try:
            meta = await store.get_file(file_id)
            if meta is None:
                postgres = getattr(store, "kind", "") == "postgres"
                where = f"at {getattr(store, 'name', '')}" if postgres else f"under {paths.home()}"
                raise CLIError(f"file {file_id!r} is not in the store {where}")
            dest = output if output is not None else local_name(meta.filename, meta.id)
            if str(dest) != "-" and dest.exists() and not force:
                raise CLIError(f"{dest} exists; use --force or --output")
            sink = sys.stdout.buffer if str(dest) == "-" else dest.open("wb")
            n = 0
            try:
                async for chunk in store.file_content(meta.id):
                    sink.write(chunk)
                    n += len(chunk)
            finally:
                if sink is not sys.stdout.buffer:
                    sink.close()
            if str(dest) != "-":
                err.print(f"wrote {n} bytes to {dest}", markup=False)
            return n
        finally:
            await store.close()

    try:
        asyncio.run(copy())
    except StoreUnavailable as exc:  # its message names the store, never its password
        raise CLIError(str(exc)) from None


def local_name(filename: str, file_id: str) -> Path:
    """The stored filename as a name in the current directory: never a path (a filename is the client's
    metadata), and the id when the name would not do (empty, ``.``, ``..``, or starting with ``-``)."""
    name = filename.replace("/", "_").replace("\\", "_").replace("\0", "_")
    if name in ("", ".", "..") or name.startswith("-"):
        name = file_id
    return Path(name)


@files_app.command("delete", cls=Command)
def delete(file_id: FileId) -> None:
    """Remove a file (metadata and content)."""
    from llmproxy.cli.console import out

    _daemon().json("DELETE", f"/v1/files/{file_id}")
    out.print(f"deleted {file_id}", markup=False)
