"""The fault matrix: every upstream fault × with/without a fallback target × stream/JSON × provider kind,
through the Anthropic surface. Each case asserts what the client sees (status, error shape,
``x-should-retry``, an SSE ``event: error`` at a frame boundary and never a silent truncation, the fallback
serving), that it happened within a bound far below the default timeouts, the request log record, and
``/health`` afterwards. Set ``LLMPROXY_FAULT_TABLE=path`` to collect one JSON line per case (for the docs)."""

from __future__ import annotations

import asyncio
import json
import os
import time
from dataclasses import dataclass

import aiohttp
import pytest

from tests.conftest import read_log
from tests.faults.conftest import BACKUP, FAULTY
from tests.faults.upstream import HUGE_BYTES

FAULTS = ["refuse", "hang", "headers_hang", "hang_mid", "cut_mid_frame", "invalid_json", "malformed_start",
          "malformed_mid", "truncated", "429", "429ms", "500", "503", "529", "401", "400", "huge", "redirect"]

#: failures before anything reached the client: (status, error type, x-should-retry, tries on the target)
BEFORE_FIRST_BYTE = {
    "refuse": (502, "api_error", "true", 2),            # connection refused: retried once, then on
    "hang": (504, "timeout_error", "true", 1),          # a timeout is not retried on the same target
    "headers_hang": (504, "timeout_error", "true", 1),
    "invalid_json": (502, "api_error", "true", 2),
    "malformed_start": (502, "api_error", "true", 2),
    "429": (429, "rate_limit_error", "true", 2),        # retry-after 0.1 s is within the budget
    "429ms": (429, "rate_limit_error", "true", 2),
    "500": (500, "api_error", "true", 2),
    "503": (529, "overloaded_error", "true", 2),
    "529": (529, "overloaded_error", "true", 2),
    "401": (502, "api_error", "false", 1),              # our key is wrong: no retry, the client must not either
    "redirect": (502, "api_error", "true", 1),          # not followed (the key would go along), not retried
}
#: faults that strike once the stream has begun: the client gets one error event, whatever the chain
MID_STREAM = {"hang_mid": "timeout_error", "cut_mid_frame": "api_error", "malformed_mid": "api_error",
              "truncated": "api_error"}
#: a JSON request meets these faults before anything was sent
JSON_FAULT = {"hang_mid": (504, "timeout_error", "true", 1), "cut_mid_frame": (502, "api_error", "true", 2),
              "truncated": (502, "api_error", "true", 2)}
pytestmark = pytest.mark.asyncio(loop_scope="module")
BOUND = 3.0          # seconds; the timeouts are 0.5 s (the defaults would be 60-120 s)
HUGE_BOUND = 8.0
BODY = {"model": "claude-sonnet-4-5", "max_tokens": 4, "messages": [{"role": "user", "content": "hello"}]}


@dataclass
class Expect:
    status: int
    error_type: str | None = None
    should_retry: str | None = None
    served_by: str | None = None        # the target that answered (None: nobody)
    tries: int = 0                      # failed tries on the faulty target (in the record's attempts)
    stream_error: str | None = None     # the error type of the event that ended a begun stream
    counted: bool = False               # whether the faulty target's circuit counted a failure


def expect(fault: str, fallback: bool, stream: bool) -> Expect:
    if fault == "huge" or (fault == "malformed_mid" and not stream):
        return Expect(200, served_by=FAULTY)
    if fault == "400":
        return Expect(400, "invalid_request_error", "false", tries=1)   # the request is wrong: no fallback
    if stream and fault in MID_STREAM:  # a target that breaks mid-stream counts against its circuit too
        return Expect(200, served_by=FAULTY, stream_error=MID_STREAM[fault], counted=True)
    status, etype, retry, tries = (JSON_FAULT.get(fault) if not stream else None) or BEFORE_FIRST_BYTE[fault]
    if fallback:
        return Expect(200, served_by=BACKUP, tries=tries, counted=True)
    return Expect(status, etype, retry, tries=tries, counted=True)


def parse_sse(body: bytes) -> list[tuple[str, dict]]:
    """Every frame, each complete and parseable (a partial frame fails here): no silent truncation."""
    assert body.endswith(b"\n\n"), f"stream does not end at a frame boundary: {body[-200:]!r}"
    frames = []
    for raw in body[:-2].split(b"\n\n"):
        event, data = "", None
        for line in raw.split(b"\n"):
            if line.startswith(b"event: "):
                event = line[7:].decode()
            elif line.startswith(b"data: "):
                data = json.loads(line[6:])
        assert event and isinstance(data, dict), f"incomplete frame {raw[:200]!r}"
        frames.append((event, data))
    return frames


def check_stream(frames: list[tuple[str, dict]], exp: Expect) -> str:
    events = [e for e, _ in frames]
    errors = [d for e, d in frames if e == "error"]
    assert len(errors) <= 1, "more than one error event"
    if errors:
        assert events[-1] == "error", "the error event is not the last frame"
    assert events[0] == "message_start"
    if exp.stream_error:
        assert errors and errors[0]["error"]["type"] == exp.stream_error, errors
        assert "message_stop" not in events
    else:
        assert not errors and events[-1] == "message_stop", "stream not complete"
    return "".join(d["delta"].get("text", "") for e, d in frames if e == "content_block_delta")


async def record(state, request_id: str, timeout: float = 3.0) -> dict:
    """The request log record of one request (the proxies of the matrix are shared between cases)."""
    path = state.log.path
    for _ in range(int(timeout / 0.02)):
        for rec in read_log(path.parent.parent):
            if rec["request_id"] == request_id:
                return rec
        await asyncio.sleep(0.02)
    raise AssertionError(f"no log record for {request_id}")


def _table_row(**row) -> None:
    if path := os.environ.get("LLMPROXY_FAULT_TABLE"):
        with open(path, "a") as f:
            f.write(json.dumps(row) + "\n")


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
@pytest.mark.parametrize("stream", [True, False], ids=["stream", "json"])
@pytest.mark.parametrize("fallback", [True, False], ids=["fallback", "alone"])
@pytest.mark.parametrize("fault", FAULTS)
async def test_fault(matrix, fault, fallback, stream, kind):
    matrix.reset()
    fault_upstream, backup_upstream = matrix.fault, matrix.backup
    url, state = await matrix.proxy(kind, fallback, refuse=fault == "refuse")
    fault_upstream.mode = "ok" if fault == "refuse" else fault
    exp = expect(fault, fallback, stream)
    t0 = time.monotonic()
    async with aiohttp.ClientSession() as s:
        async with s.post(url + "/v1/messages", json={**BODY, "stream": stream}) as r:
            body = await r.read()
            status, headers = r.status, r.headers
    elapsed = time.monotonic() - t0
    assert elapsed < (HUGE_BOUND if fault == "huge" else BOUND), f"took {elapsed:.2f} s"

    # what the client saw
    assert status == exp.status, body[:500]
    text = ""
    if status != 200:
        err = json.loads(body)
        assert err["type"] == "error" and err["error"]["type"] == exp.error_type, err
        assert headers["x-should-retry"] == exp.should_retry
        assert headers["content-type"].startswith("application/json")
        if fault.startswith("429"):
            assert float(headers["retry-after"]) == pytest.approx(0.1)
        if fault == "401":
            assert "FAULT_KEY" in err["error"]["message"]
    elif stream:
        assert headers["content-type"].startswith("text/event-stream")
        text = check_stream(parse_sse(body), exp)
    else:
        msg = json.loads(body)
        assert msg["type"] == "message", msg
        text = "".join(b.get("text", "") for b in msg["content"])
    if status == 200:
        assert exp.served_by in headers["x-llmproxy-route"]
        if fault == "huge":
            assert len(text) == HUGE_BYTES
        elif not exp.stream_error:
            assert text.startswith("Hello from the fault upstream")
        else:
            assert text.startswith("Hello ")  # what arrived before the fault reached the client
    if fault == "400":
        assert backup_upstream.hits == 0
    if exp.served_by == BACKUP:
        assert backup_upstream.hits == 1
    if fault != "refuse":
        assert fault_upstream.hits == max(exp.tries, 1)
    assert fault_upstream.leaked == 0
    if fault == "redirect" and status != 200:
        assert "redirected the request (307 to http://127.0.0.1:" in err["error"]["message"]

    # the request log
    rec = await record(state, headers["request-id"])
    assert rec["status"] == status
    assert rec.get("target") == (exp.served_by if status == 200 else None) or status != 200
    attempts = rec["attempts"]
    assert [a["target"] for a in attempts] == [FAULTY] * exp.tries
    assert [bool(a.get("retried")) for a in attempts] == [True] * (exp.tries - 1) + [False] * min(exp.tries, 1)
    if exp.stream_error:
        assert rec["stream_error"]
    else:
        assert "stream_error" not in rec

    # /health afterwards
    async with aiohttp.ClientSession() as s:
        async with s.get(url + "/health") as r:
            health = await r.json()
    assert health["request_log"]["writing"] is True
    assert health["in_flight"] == 0
    circuit = health["circuits"].get(FAULTY)
    if fault.startswith("429"):  # a rate limit is no health failure: its retry-after cools the target
        assert circuit is not None and circuit["consecutive_failures"] == 0 and circuit["cooled_by"] == 429
    elif exp.counted:
        assert circuit is not None and circuit["consecutive_failures"] == 1
        assert circuit["state"] == "closed"
    else:
        assert circuit is None
    _table_row(fault=fault, kind=kind, fallback=fallback, stream=stream, status=status,
               error=exp.error_type, stream_error=exp.stream_error, served_by=exp.served_by,
               should_retry=headers.get("x-should-retry"), tries=exp.tries, seconds=round(elapsed, 2))
