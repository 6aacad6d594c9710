"""Fuzz the real server on loopback: mutated Claude Code and OpenAI bodies (wrong types at every path,
nulls, deep nesting, huge strings) and mutated bytes (invalid UTF-8, duplicate keys, truncation, lone
surrogates, nesting past the parser's limit) at every endpoint that takes a body.

Asserted for every answer: no 5xx, errors in the surface's own shape (Anthropic's ``{"type": "error",
"error": {"type", "message"}}``; OpenAI's ``{"error": {"message", "type", "param", "code"}}``), a 400 for
a single mutated field names that field (or a field of its object), nothing logged as an unhandled error.
Afterwards the daemon still answers and the request log is still writing.

The proxy runs on the test's event loop (fake upstreams, and a second instance where every provider is
the simulator); hypothesis drives blocking HTTP requests from a worker thread. Problems are collected over
all examples and reported together, grouped by endpoint and site.
"""

from __future__ import annotations

import asyncio
import collections
import copy
import http.client
import json
import logging
import os
import urllib.parse

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from tests.test_validate import claude_code_body, dotted, mutation, openai_body

EXAMPLES = int(os.environ.get("LLMPROXY_FUZZ_EXAMPLES", "300"))
CC_BASE = claude_code_body()
OA_BASE = openai_body()
ROUTE_BASE = {"text": "weigh the pros and cons of the plan", "profile": "intelligent"}


def _small_cc() -> dict:
    """A shorter Claude Code-shaped body (a few tools), so mutations land in messages more often."""
    body = copy.deepcopy(CC_BASE)
    body["tools"] = body["tools"][20:]
    return body


BASES = {"cc": [CC_BASE, _small_cc()], "oa": [OA_BASE], "route": [ROUTE_BASE, _small_cc()]}

# (id, which server, path, error surface, bodies)
ENDPOINTS = [
    ("messages", "live", "/v1/messages", "anthropic", "cc"),
    ("messages-to-openai-upstream", "live", "/p/oai/v1/messages", "anthropic", "cc"),
    ("messages-simulator", "sim", "/v1/messages", "anthropic", "cc"),
    ("count_tokens", "live", "/v1/messages/count_tokens", "anthropic", "cc"),
    ("chat", "live", "/v1/chat/completions", "openai", "oa"),
    ("chat-passthrough", "live", "/p/oai/v1/chat/completions", "openai", "oa"),
    ("chat-simulator", "sim", "/v1/chat/completions", "openai", "oa"),
    ("api-route", "live", "/api/route", "anthropic", "route"),
]


# ------------------------------------------------------------------------------------------ bodies

def _inside_string(raw: bytes, at: int) -> int:
    """A byte offset just after an opening quote near ``at`` (or ``at`` itself)."""
    i = raw.find(b'":"', at)
    return i + 3 if i >= 0 else at


def _dumps(body) -> bytes:
    try:
        return orjson.dumps(body)
    except TypeError:  # nested past orjson's 254 levels: the stdlib encoder goes deeper
        return json.dumps(body, separators=(",", ":")).encode()


@st.composite
def request_bytes(draw, kind: str):
    """(raw bytes, what was done, the mutated JSON path or None when the bytes were mutated)."""
    base = draw(st.sampled_from(BASES[kind]))
    body, (what, path) = draw(mutation(base, max_mutations=1))
    if draw(st.integers(0, 3)) == 0:  # sometimes several mutations at once
        body, more = draw(mutation(body, max_mutations=3))
        what, path = f"{what} + {len(more)} more", None
    raw = _dumps(body)
    byte_kind = draw(st.sampled_from(["none"] * 8 + ["invalid_utf8", "duplicate_key_first", "duplicate_key_last",
                                                     "truncate", "deep_bytes", "surrogate", "nan", "bom",
                                                     "not_json", "empty", "nested_duplicate"]))
    if byte_kind == "none":
        return raw, f"{what} at {dotted(path) if path else '?'}", path
    at = draw(st.integers(0, max(len(raw) - 1, 0)))
    key = draw(st.sampled_from(["model", "messages", "max_tokens", "stream", "text", "profile", "tools", "system"]))
    wrong = orjson.dumps(draw(st.sampled_from([None, 5, "x", [None], {"a": 1}, True])))
    if byte_kind == "invalid_utf8":
        i = _inside_string(raw, at)
        raw = raw[:i] + draw(st.sampled_from([b"\xff", b"\xc3\x28", b"\xed\xa0\x80", b"\xf8\x88\x80\x80\x80"])) + raw[i:]
    elif byte_kind == "duplicate_key_first":  # the later (original) value wins
        raw = b'{"' + key.encode() + b'":' + wrong + b"," + raw[1:]
    elif byte_kind == "duplicate_key_last":  # the later (wrong) value wins
        raw = raw[:-1] + b',"' + key.encode() + b'":' + wrong + b"}"
    elif byte_kind == "nested_duplicate":
        raw = raw.replace(b'"role":"user"', b'"role":"user","role":' + wrong, 1)
    elif byte_kind == "truncate":
        raw = raw[:at]
    elif byte_kind == "deep_bytes":
        n = draw(st.sampled_from([65, 255, 300, 1100, 5000]))
        raw = b'{"model":"m","max_tokens":5,"text":"x","messages":[{"role":"user","content":"hi"}],"x":' \
              + b"[" * n + b"]" * n + b"}"
    elif byte_kind == "surrogate":
        i = _inside_string(raw, at)
        raw = raw[:i] + draw(st.sampled_from([b"\\ud800", b"\\udc00", b"\\ud800\\u0041"])) + raw[i:]
    elif byte_kind == "nan":
        raw = raw.replace(b'"max_tokens":32000', b'"max_tokens":NaN').replace(b'"n":1', b'"n":Infinity')
    elif byte_kind == "bom":
        raw = b"\xef\xbb\xbf" + raw
    elif byte_kind == "not_json":
        raw = draw(st.sampled_from([b"null", b"[]", b'"text"', b"5", b"{", b"}{", b"\x00\x01"]))
    elif byte_kind == "empty":
        raw = b""
    return raw, f"{what} at {dotted(path) if path else '?'}; bytes: {byte_kind}", None


# ------------------------------------------------------------------------------------------ client

class Client:
    """A keep-alive HTTP/1.1 client for the worker thread (raw bytes in, status/headers/bytes out)."""

    def __init__(self, base_url: str):
        u = urllib.parse.urlsplit(base_url)
        self.host, self.port = u.hostname, u.port
        self.conn: http.client.HTTPConnection | None = None

    def post(self, path: str, raw: bytes) -> tuple[int, dict, bytes]:
        for attempt in range(2):
            try:
                if self.conn is None:
                    self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
                self.conn.request("POST", path, body=raw, headers={"content-type": "application/json"})
                resp = self.conn.getresponse()
                data = resp.read()
                headers = {k.lower(): v for k, v in resp.getheaders()}
                if headers.get("connection", "").lower() == "close":
                    self.close()
                return resp.status, headers, data
            except (ConnectionError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self.conn is not None:
            self.conn.close()
            self.conn = None


# ------------------------------------------------------------------------------------------ checks

def shape_problem(surface: str, status: int, headers: dict, data: bytes) -> str | None:
    """What is wrong with this answer, or None."""
    ctype = headers.get("content-type", "")
    if status == 200 and ctype.startswith("text/event-stream"):
        if b"internal proxy error" in data:
            return "stream carries an internal proxy error"
        return None
    try:
        body = orjson.loads(data)
    except orjson.JSONDecodeError:
        return f"{status} answer is not JSON: {data[:200]!r}"
    if status == 200:
        return None
    if surface == "anthropic":
        err = body.get("error") if isinstance(body, dict) else None
        if not (isinstance(body, dict) and body.get("type") == "error" and isinstance(err, dict)
                and isinstance(err.get("type"), str) and isinstance(err.get("message"), str) and err["message"]):
            return f"{status} not in Anthropic's error shape: {data[:300]!r}"
    else:
        err = body.get("error") if isinstance(body, dict) else None
        if not (isinstance(err, dict) and isinstance(err.get("message"), str) and err["message"]
                and isinstance(err.get("type"), str) and "param" in err and "code" in err):
            return f"{status} not in OpenAI's error shape: {data[:300]!r}"
    if status >= 500:
        return f"{status}: {err.get('message', '')[:300]}"
    return None


def names_field(message: str, path: tuple) -> bool:
    """The message names the mutated field or its object: validation messages start with the dotted path;
    a few later checks (the converter, profile lookup) spell it ``messages[2].content[3]`` or in words."""
    where = path[:-1] if len(path) > 1 else path
    if message.startswith(dotted(where)):
        return True
    bracketed = str(where[0]) + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where[1:])
    return bracketed in message if len(where) > 1 else str(where[0]) in message[:40]


def _log_bytes(home) -> bytes:
    """Every request log file's bytes (a line being written may be half there: no JSON parsing)."""
    return b"".join(p.read_bytes() for p in (home / "logs").glob("requests.jsonl*"))


class Collector(logging.Handler):
    """Unhandled errors the server logs (with the code site of each)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.sites: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[2] is not None:
            tb = record.exc_info[2]
            while tb.tb_next is not None:
                tb = tb.tb_next
            code = tb.tb_frame.f_code
            self.sites.append(f"{record.getMessage()[:60]} -> {type(record.exc_info[1]).__name__}: "
                              f"{str(record.exc_info[1])[:80]} at {code.co_filename.split('llmproxy/')[-1]}:"
                              f"{tb.tb_lineno} ({code.co_name})")


# ------------------------------------------------------------------------------------------ the test

@pytest.fixture
async def servers(proxy_factory):
    live_url, live = await proxy_factory("[log]\nbodies = true\n")
    sim_url, sim = await proxy_factory(simulate=True)
    return {"live": (live_url, live), "sim": (sim_url, sim)}


@pytest.mark.parametrize("name,server,path,surface,kind", ENDPOINTS, ids=[e[0] for e in ENDPOINTS])
async def test_fuzz_endpoint(servers, home, name, server, path, surface, kind):
    url, state = servers[server]
    collector = Collector()
    logging.getLogger("llmproxy").addHandler(collector)
    problems: dict[str, list[str]] = collections.defaultdict(list)
    counts: collections.Counter = collections.Counter()
    client = Client(url)

    @settings(max_examples=EXAMPLES, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(request_bytes(kind))
    def fuzz(case):
        raw, what, mutated_path = case
        status, headers, data = client.post(path, raw)
        counts[status] += 1
        if (p := shape_problem(surface, status, headers, data)) is not None:
            problems[p[:160]].append(what)
        elif status == 400 and mutated_path is not None:
            msg = orjson.loads(data)["error"]["message"]
            if not names_field(msg, mutated_path):
                problems[f"400 does not name the field: {msg[:120]}"].append(what)

    try:
        await asyncio.get_running_loop().run_in_executor(None, fuzz)
    finally:
        client.close()
        logging.getLogger("llmproxy").removeHandler(collector)

    # the daemon is alive and the request log still writes
    ok_body = OA_BASE if kind == "oa" else ({"text": "hello"} if kind == "route" else
                                             {**CC_BASE, "stream": False})
    async with __import__("aiohttp").ClientSession() as s:
        async with s.get(url + "/health") as r:
            assert r.status == 200
            health = await r.json()
        async with s.post(url + path, json=ok_body) as r:
            assert r.status == 200, await r.text()
            rid = r.headers.get("request-id")
    log = state.log
    if log is not None and hasattr(log, "health"):
        for _ in range(100):
            if log.health()["written"] >= 1 and not log.health()["queued"]:
                break
            await asyncio.sleep(0.05)
        h = log.health()
        assert h["writing"], h
        assert h["dropped"] == 0, h
        assert health.get("request_log", {}).get("writing", True)
    if path != "/api/route" and server == "live" and rid:  # /api/route writes no request record
        for _ in range(200):
            if rid.encode() in _log_bytes(home):
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError(f"request log stopped writing: {rid} never appeared")

    report = [f"{name}: {sum(counts.values())} requests, statuses {dict(sorted(counts.items()))}"]
    for p, examples in sorted(problems.items(), key=lambda kv: -len(kv[1])):
        report.append(f"  {len(examples)}x {p}\n      e.g. {examples[0][:200]}")
    for site, n in collections.Counter(collector.sites).most_common():
        report.append(f"  {n}x logged unhandled error: {site}")
    print("\n".join(report))
    assert not problems and not collector.sites, "\n".join(report)
