"""The CLI's conventions at 80 columns, in a pipe and in a terminal: IDs, URLs and paths are never cut or
wrapped, COLUMNS is respected, a closed pipe is not a failure, one ``error:`` style, exit codes, help."""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys

import pytest

from llmproxy.cli.batches import batch_lines
from tests.conftest import free_port
from tests.helpers import REPO, cli

ID = "msgbatch_eKEslRXgRS3XjU8XUq2w9a7b"


def pipe(*args: str, home, columns: int | None = 80) -> subprocess.CompletedProcess:
    """The CLI with stdout and stderr to a pipe (COLUMNS as given; None: not set at all)."""
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update({"LLMPROXY_HOME": str(home), **({"COLUMNS": str(columns)} if columns else {})})
    return subprocess.run([sys.executable, "-m", "llmproxy", *args], capture_output=True, text=True, timeout=60,
                          env=env, cwd=REPO)


def tty(*args: str, home, columns: int = 80) -> str:
    """The CLI in a terminal of ``columns`` columns (a pty): what it printed."""
    import fcntl
    import struct
    import termios

    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    env.update({"LLMPROXY_HOME": str(home), "TERM": "dumb", "NO_COLOR": "1"})
    proc = subprocess.Popen([sys.executable, "-m", "llmproxy", *args], stdin=slave, stdout=slave, stderr=slave,
                            env=env, cwd=REPO)
    os.close(slave)
    chunks = []
    while True:
        try:
            data = os.read(master, 65536)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(master)
    return b"".join(chunks).decode().replace("\r\n", "\n")


@pytest.fixture
def daemon(home):
    (home / "config.toml").write_text("[server]\nsimulator_speed = 0\n")
    port = free_port()
    r = cli("serve", "--daemon", "--simulate", "--port", str(port), home=home)
    assert r.returncode == 0, r.stderr + r.stdout
    yield port
    cli("stop", home=home)


# ------------------------------------------------------------------------------- IDs and URLs, pipes

def test_batch_ids_are_never_cut_the_counts_give_way():
    rows = [(ID, "in_progress", "2026-12-05 10:01:02", "120", "processing 80 succeeded 39 errored 1")]
    for width in (60, 80):
        lines = batch_lines(rows, width)
        assert any(line.startswith(ID + "  in_progress") for line in lines), lines
        assert "    processing 80 succeeded 39 errored 1" in lines
    whole = batch_lines(rows, None)  # a pipe without COLUMNS: one whole line per batch
    assert len(whole) == 2 and whole[1].startswith(ID) and whole[1].endswith("errored 1")


def test_batches_list_and_show_in_a_pipe_and_a_terminal(home, daemon, tmp_path):
    jsonl = tmp_path / "reqs.jsonl"
    jsonl.write_text(json.dumps({"custom_id": "a", "params": {
        "model": "claude-sonnet-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": "hi"}]}}) + "\n")
    r = cli("batches", "submit", str(jsonl), "--watch", home=home, timeout=60)
    bid = r.stdout.split()[1]
    assert bid.startswith("msgbatch_"), r.stdout + r.stderr
    piped = pipe("batches", "list", home=home)
    assert piped.returncode == 0 and any(line.startswith(bid + " ") for line in piped.stdout.splitlines())
    assert max(map(len, piped.stdout.splitlines())) <= 80
    assert any(line.startswith(bid + " ") for line in tty("batches", "list", home=home).splitlines())
    url = f"http://127.0.0.1:{daemon}/v1/messages/batches/{bid}/results"
    shown = pipe("batches", "show", bid, home=home).stdout
    assert f"results_url          {url}\n" in shown  # on one line, whole, though longer than 80 columns


def test_the_daemon_log_path_is_not_split_in_a_pipe(home):
    deep = home / ("a-rather-long-directory-name-" * 3)
    deep.mkdir()
    (deep / "config.toml").write_text("[server]\nsimulator_speed = 0\n")
    r = pipe("serve", "--daemon", "--simulate", "--port", str(free_port()), home=deep)
    try:
        assert r.returncode == 0, r.stderr
        assert str(deep / "logs" / "daemon.log") in r.stdout + r.stderr
    finally:
        pipe("stop", home=deep)


def test_stats_in_a_pipe_respects_columns(home):
    log = home / "logs" / "requests.jsonl"
    log.parent.mkdir(parents=True)
    rec = {"time": "2026-12-05T10:00:00.000+00:00", "request_id": "r1", "endpoint": "messages", "profile": "intelligent",
           "decision": {"scenario": "keyword", "concept": "planning"}, "status": 200, "duration_ms": 1200,
           "target": "openrouter/deepseek/deepseek-r1-0528-with-a-long-suffix", "cost_usd": 0.01,
           "usage": {"input_tokens": 123456, "output_tokens": 65432}}
    log.write_text(json.dumps(rec) + "\n")
    narrow = pipe("stats", home=home, columns=80).stdout.splitlines()
    assert narrow and max(map(len, narrow)) <= 80
    assert "openrouter/deepseek/deepseek-r1-0528-with-a-long-suffix" in narrow  # the key whole, on its own line
    wide = pipe("stats", home=home, columns=None).stdout.splitlines()
    assert max(map(len, wide)) > 80  # no COLUMNS in a pipe: whole lines


def test_route_test_chain_stays_on_its_line_in_a_pipe(home):
    r = pipe("route-test", "-p", "intelligent", "plan the phases of the migration", home=home)
    chain = next(line for line in r.stdout.splitlines() if line.startswith("chain"))
    assert chain.count("→") >= 3 and len(chain) > 80, r.stdout


# ------------------------------------------------------------------------------------ a closed pipe

@pytest.mark.parametrize("args", [("status",), ("--help",), ("route-test", "plan the phases")])
def test_a_reader_that_goes_away_is_not_a_failure(home, args):
    cmd = f"set -o pipefail; {sys.executable} -m llmproxy {' '.join(repr(a) for a in args)} | head -c0"
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60, cwd=REPO,
                       env={**os.environ, "LLMPROXY_HOME": str(home)})
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr


def test_status_piped_to_grep_q_exits_0(home, daemon):
    cmd = f"set -o pipefail; {sys.executable} -m llmproxy status | grep -q running"
    r = subprocess.run(["bash", "-c", cmd], capture_output=True, text=True, timeout=60, cwd=REPO,
                       env={**os.environ, "LLMPROXY_HOME": str(home)})
    assert r.returncode == 0, r.stderr


# ------------------------------------------------------------------------------ route-test --why-not

def test_why_not_reads_once_and_honours_json(home):
    r = pipe("route-test", "--why-not", "planning", "plan the phases", home=home)
    assert r.stdout.strip() == "intelligent: planning fires — matched 'plan' at 0"
    r = pipe("route-test", "--why-not", "planning", "rename the variable", home=home)
    line = r.stdout.strip()
    assert line.startswith("intelligent: planning does not fire (no term) — no term of 'planning' occurs")
    assert "(term " not in line
    r = pipe("route-test", "--why-not", "planning", "rename the variable", "--json", home=home)
    data = json.loads(r.stdout)
    assert data[0]["profile"] == "intelligent" and data[0]["reason"] == "no term" and data[0]["fired"] is False


# -------------------------------------------------------------------------------- help and errors

def test_version_and_short_help(home):
    from llmproxy import __version__

    assert pipe("--version", home=home).stdout == f"llmproxy {__version__}\n"
    for args in (("-h",), ("logs", "-h"), ("batches", "show", "-h")):
        r = pipe(*args, home=home)
        assert r.returncode == 0 and r.stdout.startswith("Usage: llmproxy"), r.stderr


def test_metavars_and_profile_short_option(home):
    text = "".join(pipe(*c, "-h", home=home, columns=200).stdout for c in
                   (("serve",), ("logs",), ("stats",), ("route-test",), ("batches", "submit"), ("batches", "show")))
    assert "<list[Path]>" not in text and "<str>" not in text.split("Arguments:")[0]
    assert "--profile-dir DIR" in text and "--config FILE" in text and "BATCH_ID" in text
    assert "{batch_id}" not in text and "{file}" not in text and "{BATCH_ID}" not in text
    assert "Usage: llmproxy batches show [OPTIONS] BATCH_ID\n" in text
    assert "Usage: llmproxy route-test [OPTIONS] [TEXT]\n" in text
    assert "-p, --profile NAME" in pipe("logs", "-h", home=home, columns=200).stdout


@pytest.mark.parametrize("command, usage", [
    ("show", "FILE_ID"), ("download", "FILE_ID"), ("delete", "FILE_ID"), ("upload", "PATH"), ("list", ""),
])
def test_files_commands_name_their_arguments_plainly(home, command, usage):
    text = pipe("files", command, "-h", home=home, columns=200).stdout
    assert f"Usage: llmproxy files {command} [OPTIONS]{' ' + usage if usage else ''}\n" in text, text
    assert "{file_id}" not in text and "{FILE_ID}" not in text and "<str>" not in text.split("Arguments:")[0]
    assert "Options:" in text and "<" not in text.split("Options:")[1], text  # metavars, never <type>


@pytest.mark.parametrize("args, code", [
    (("nope",), 2),                                           # Click's usage error
    (("logs", "-n", "many"), 2),
    (("route-test", "-p", "ghost", "hello"), 2),               # an unknown profile, like an unknown concept
    (("route-test", "--why-not", "ghost", "hello"), 2),
    (("stats", "--since", "yesterday-ish"), 2),
])
def test_one_error_style_and_usage_errors_exit_2(home, args, code):
    r = pipe(*args, home=home)
    assert r.returncode == code, r.stderr
    assert "Error:" not in r.stderr and r.stderr.count("error: ") == 1, r.stderr
    assert "Traceback" not in r.stderr


# ----------------------------------------------------------------------------- logs, stats: failed rows

SERVED = {"time": "2026-12-05T10:00:00.000+00:00", "request_id": "r1", "endpoint": "messages", "profile": "fast",
          "decision": {"scenario": "default", "concept": None, "target": "anthropic/claude-sonnet-4-5"},
          "target": "anthropic/claude-sonnet-4-5", "status": 200, "duration_ms": 1200, "ttft_ms": 300,
          "usage": {"input_tokens": 10, "output_tokens": 5}, "cost_usd": 0.001}


def refused(i: int, error: str = "messages: List should have at least 1 item") -> dict:
    return {"time": f"2026-12-05T10:00:0{i}.000+00:00", "request_id": f"x{i}", "endpoint": "messages",
            "profile": "fast", "status": 400, "error": error, "duration_ms": 0.2}


def write_log(home, recs) -> None:
    log = home / "logs" / "requests.jsonl"
    log.parent.mkdir(parents=True, exist_ok=True)
    log.write_text("".join(json.dumps(r) + "\n" for r in recs))


def test_logs_header_row_unrouted_label_and_cut_errors(home):
    long_error = "upstream said: " + "x" * 300
    write_log(home, [SERVED, refused(1), refused(2, long_error)])
    lines = pipe("logs", home=home).stdout.splitlines()
    assert lines[0].split()[:4] == ["time", "profile", "scenario", "target"]
    assert lines[0].index("target") == lines[1].index("anthropic/")  # the names sit over their columns
    assert "not routed" in lines[2] and lines[2].endswith("messages: List should have at least 1 item")
    assert lines[3].endswith("…") and long_error[:100] in lines[3] and long_error not in lines[3]


def test_logs_bodies_says_when_bodies_are_not_logged(home):
    write_log(home, [SERVED])
    r = pipe("logs", "--bodies", home=home)
    assert r.returncode == 0 and "bodies = true" in r.stderr and "not logged" in r.stderr
    logged = {**SERVED, "request_body": {"messages": [{"role": "user", "content": "hello there"}]}}
    write_log(home, [logged])
    r = pipe("logs", "--bodies", home=home)
    assert "hello there" in r.stdout and "not logged" not in r.stderr


def test_stats_latency_is_over_served_requests_and_unrouted_has_one_label(home):
    from llmproxy.cli.logs import compute

    data = compute([SERVED, refused(1), refused(2), refused(3)])
    fast = data["by_profile"]["fast"]
    assert fast["requests"] == 4 and fast["errors"] == 3
    assert fast["p50_ms"] == fast["p95_ms"] == 1200 and fast["p50_ttft_ms"] == 300
    assert set(data["by_model"]) == {"anthropic/claude-sonnet-4-5", "not routed"}
    assert fast["scenarios"] == {"not routed": 0.75, "default": 0.25}
    write_log(home, [SERVED, refused(1), refused(2), refused(3)])
    text = pipe("stats", home=home).stdout
    assert "1200ms" in text and "(none)" not in text and " none " not in text


def test_a_wrong_proxy_key_says_what_to_fix(home):
    (home / "config.toml").write_text("[server]\nsimulator_speed = 0\n")
    key = {"LLMPROXY_API_KEYS": "sk-llmproxy-right-key-123456"}
    r = cli("serve", "--daemon", "--simulate", "--port", str(free_port()), home=home, env=key)
    assert r.returncode == 0, r.stderr
    try:
        r = cli("batches", "list", home=home, env={"LLMPROXY_API_KEYS": "sk-llmproxy-wrong-key-654321"})
        assert r.returncode == 1 and "HTTP 401" in r.stderr
        assert "[auth] api_keys" in r.stderr and "LLMPROXY_API_KEYS" in r.stderr
        assert "sk-llmproxy-right" not in r.stderr + r.stdout
        assert cli("batches", "list", home=home, env=key).returncode == 0
    finally:
        cli("stop", home=home, env=key)


@pytest.mark.parametrize("batch, counts", [
    ({"request_counts": {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
      "llmproxy_progress": {"processing": 7, "succeeded": 2, "errored": 1, "canceled": 0, "expired": 0}},
     "processing 7 succeeded 2 errored 1"),  # live progress while the API's counts stay zero
    ({"request_counts": {"processing": 0, "succeeded": 9, "errored": 1, "canceled": 0, "expired": 0}},
     "succeeded 9 errored 1"),  # a daemon without the field: the API's counts
])
def test_batch_counts_read_live_progress_when_the_daemon_sends_it(batch, counts):
    from llmproxy.cli.batches import _counts

    assert _counts(batch) == counts
