"""``llmproxy files download`` reads the store the configuration names (issue 26): a file uploaded through an
app on a PostgreSQL database (content in the database, nothing under $LLMPROXY_HOME/files) is copied out by
the CLI configured only through config.toml's ``[store] url``, not $LLMPROXY_DATABASE_URL. An unreachable
store is a one-line error naming it without its password."""

from __future__ import annotations

import asyncio
import os

import anthropic
from typer.testing import CliRunner

from llmproxy import paths
from llmproxy.cli.app import app as cli
from llmproxy.settings import DATABASE_URL_ENV
from tests.conftest import free_port


async def test_download_reads_the_database_named_in_config_toml(proxy_factory, pg_url, tmp_path, monkeypatch):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    url, _ = await proxy_factory(f'[store]\nurl = "{pg_url}"\n', simulate=True)  # written to config.toml
    content = os.urandom(700_000)  # several chunks
    async with anthropic.AsyncAnthropic(base_url=url, api_key="client-key", max_retries=0) as c:
        meta = await c.beta.files.upload(file=("notes.bin", content, "application/octet-stream"))
    assert not (paths.home() / "files" / meta.id).exists()  # in the database, not on this disk
    out = tmp_path / "copy.bin"
    r = await asyncio.to_thread(CliRunner().invoke, cli, ["files", "download", meta.id, "--output", str(out)])
    assert r.exit_code == 0, r.output
    assert out.read_bytes() == content and f"wrote {len(content)} bytes" in r.output
    r = await asyncio.to_thread(CliRunner().invoke, cli, ["files", "download", "file_011CNothing", "-o", "-"])
    assert r.exit_code != 0 and "not in the store at postgresql://" in r.output


def test_an_unreachable_store_is_named_without_its_password(home, tmp_path, monkeypatch):
    monkeypatch.delenv(DATABASE_URL_ENV, raising=False)
    password = "pw-never-shown-4711"
    (home / "config.toml").write_text(
        f'[store]\nurl = "postgresql://llmproxy:{password}@127.0.0.1:{free_port()}/nothing"\n')
    r = CliRunner().invoke(cli, ["files", "download", "file_011CAny", "-o", str(tmp_path / "x")])
    assert r.exit_code != 0 and "cannot open the store at postgresql://llmproxy:***@127.0.0.1" in r.output
    assert password not in r.output and "Traceback" not in r.output
