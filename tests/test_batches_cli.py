"""``llmproxy batches …`` and ``llmproxy files …`` against a real daemon (subprocesses)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import free_port
from tests.helpers import cli


@pytest.fixture
def daemon(home):
    (home / "config.toml").write_text("[server]\nsimulator_speed = 0\n")
    port = free_port()
    r = cli("serve", "--daemon", "--simulate", "--port", str(port), home=home)
    assert r.returncode == 0, r.stderr + r.stdout
    yield port
    cli("stop", home=home)


def test_batches_submit_watch_list_show_results(home, daemon, tmp_path):
    jsonl = tmp_path / "reqs.jsonl"
    jsonl.write_text("\n".join(json.dumps({"custom_id": f"c{i}", "params": {
        "model": "claude-sonnet-4-5", "max_tokens": 30, "messages": [{"role": "user", "content": f"hi {i}"}]}})
        for i in range(7)) + "\n\n")
    r = cli("batches", "submit", str(jsonl), "--profile", "fast", "--watch", home=home, timeout=60)
    assert r.returncode == 0, r.stderr
    bid = r.stdout.split()[1]
    assert bid.startswith("msgbatch_") and "ended" in r.stdout and "succeeded 7" in r.stdout
    r = cli("batches", "list", home=home)
    assert r.returncode == 0 and bid in r.stdout and "ended" in r.stdout
    r = cli("batches", "show", bid, "--json", home=home)
    shown = json.loads(r.stdout)
    # asked without a prefix: the URL has none (the batch still ran through the fast profile)
    assert shown["results_url"] == f"http://127.0.0.1:{daemon}/v1/messages/batches/{bid}/results"
    recs = [json.loads(x) for x in (home / "logs" / "requests.jsonl").read_text().splitlines()]
    assert {r["profile"] for r in recs if r.get("batch_id") == bid} == {"fast"}
    r = cli("batches", "results", bid, home=home)
    lines = [json.loads(x) for x in r.stdout.splitlines()]
    assert sorted(x["custom_id"] for x in lines) == [f"c{i}" for i in range(7)]
    assert {x["result"]["type"] for x in lines} == {"succeeded"}
    r = cli("stats", home=home)  # batch work is in the stats and the log like live traffic
    assert r.returncode == 0 and "fast" in r.stdout, r.stderr
    r = cli("logs", "-n", "3", home=home)
    assert r.returncode == 0 and "fast" in r.stdout, r.stderr
    r = cli("batches", "cancel", bid, home=home)
    assert r.returncode == 0 and "ended" in r.stdout
    r = cli("batches", "show", "msgbatch_nope", home=home)
    assert r.returncode == 1 and "msgbatch_nope" in r.stderr and "not found" in r.stderr
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"custom_id": "a", "params": ["not", "an", "object"]}\n')  # refused at create
    r = cli("batches", "submit", str(bad), home=home)
    assert r.returncode == 1 and "requests.0 (custom_id 'a'): params" in r.stderr


def test_files_upload_list_show_download_delete(home, daemon, tmp_path):
    src = tmp_path / "notes.txt"
    src.write_bytes(b"some notes\n" * 1000)
    r = cli("files", "upload", str(src), "--json", home=home)
    assert r.returncode == 0, r.stderr
    meta = json.loads(r.stdout)
    assert (meta["filename"], meta["mime_type"], meta["size_bytes"]) == ("notes.txt", "text/plain", 11000)
    fid = meta["id"]
    r = cli("files", "list", home=home)
    assert fid in r.stdout and "notes.txt" in r.stdout
    r = cli("files", "show", fid, home=home)
    assert "size_bytes    11000" in r.stdout
    out = tmp_path / "copy.txt"
    r = cli("files", "download", fid, "--output", str(out), home=home)
    assert r.returncode == 0 and out.read_bytes() == src.read_bytes()
    r = cli("files", "delete", fid, home=home)
    assert r.returncode == 0 and fid in r.stdout
    r = cli("files", "show", fid, home=home)
    assert r.returncode == 1 and fid in r.stderr
