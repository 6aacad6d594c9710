"""Connection hygiene (issue 20, findings 6 and 8): a request head has a deadline, connections sending a head
are capped, and what the HTTP parser refuses is answered in the API's shape and logged without its bytes.

The daemon's own runner (``server/process/run.py`` ``make_runner``) serves the real app on loopback; clients are raw
sockets, since no HTTP client can send half a head."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging

import pytest
from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, BadHttpMethod, BadStatusLine, InvalidHeader, LineTooLong

from llmproxy.server.process.app import create_app, load_runtime
from llmproxy.server.process.connection import reason
from llmproxy.server.process.run import make_runner
from llmproxy.server.state import Options, State
from tests.conftest import write_config

SECRET = "sk-ant-api03-SECRETSECRET123456"


@pytest.fixture
async def served(home):
    """``start(server_options) -> (port, runner, state)``: the app behind the daemon's runner, simulated."""
    runners = []

    async def start(**server):
        opts = "\n".join(f"{k} = {v}" for k, v in server.items())
        write_config(home, f"[server]\nsimulator_speed = 0\n{opts}\n")
        options = Options(simulate=True)
        state = State(runtime=load_runtime(options), options=options)
        runner = make_runner(create_app(state))
        await runner.setup()
        runners.append(runner)
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        return site.port, runner, state

    yield start
    for r in runners:
        await r.cleanup()


def metric(state: State, name: str, label: str) -> float:
    for line in state.metrics.render().decode().splitlines():
        if line.startswith(f"{name}{{") and f'"{label}"' in line:
            return float(line.rsplit(" ", 1)[1])
    return 0.0


async def read_all(reader: asyncio.StreamReader, timeout: float = 10.0) -> bytes:
    """Everything until the server closes the connection (a hang fails the test after ``timeout``)."""
    return await asyncio.wait_for(reader.read(), timeout)


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float = 0.1) -> None:
    """Send ``data`` one byte at a time, as a slow-loris client does; stop when the server hangs up."""
    with contextlib.suppress(ConnectionError, RuntimeError):
        for i in range(len(data)):
            writer.write(data[i:i + 1])
            await writer.drain()
            await asyncio.sleep(every)


def split_response(raw: bytes) -> tuple[int, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {k.strip().lower(): v.strip() for k, _, v in (ln.partition(":") for ln in lines[1:])}
    return int(lines[0].split()[1]), headers, body


async def get_health(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
    status = split_response(await read_all(reader))[0]
    writer.close()
    return status


SLOW_HEAD = b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: " + b"x" * 200 + b"\r\n\r\n"


async def test_heads_sent_slowly_are_closed_after_the_deadline(served):
    port, _, state = await served(header_timeout=0.5)
    conns = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    senders = [asyncio.create_task(trickle(w, SLOW_HEAD)) for _, w in conns]  # ~25 s if nobody stops it
    answers = await asyncio.gather(*(read_all(r) for r, _ in conns))
    for t in senders:
        t.cancel()
    for raw in answers:
        status, headers, body = split_response(raw)
        assert status == 408 and headers["content-type"] == "application/json"
        err = json.loads(body)
        assert err["type"] == "error" and "server.header_timeout" in err["error"]["message"]
    assert metric(state, "llmproxy_closed_connections_total", "header_timeout") == 3
    assert await get_health(port) == 200  # a client that sends its head at once is served


async def test_a_keep_alive_connection_gets_the_deadline_for_its_next_head(served):
    port, _, _ = await served(header_timeout=0.5)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    length = int(split_response(head)[1]["content-length"])
    await reader.readexactly(length)  # served, and the connection stays open for the next request
    sender = asyncio.create_task(trickle(writer, SLOW_HEAD))
    status = split_response(await read_all(reader))[0]
    sender.cancel()
    assert status == 408


async def test_connections_beyond_the_cap_on_pending_heads_are_closed(served):
    port, runner, state = await served(header_timeout=60, max_pending_heads=3)
    hygiene = runner.server.hygiene
    silent = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    for _ in range(250):  # until the server has seen all three
        if hygiene.pending == 3:
            break
        await asyncio.sleep(0.02)
    assert hygiene.pending == 3
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await read_all(reader, 5) == b""  # closed at once, long before the 60 s deadline
    assert metric(state, "llmproxy_closed_connections_total", "pending_heads") == 1
    for _, w in silent:
        w.close()
    for _ in range(250):
        if hygiene.pending == 0:
            break
        await asyncio.sleep(0.02)
    assert await get_health(port) == 200  # the places were given back


async def test_a_parser_error_is_answered_in_the_api_shape_and_logged_without_the_credential(served, caplog):
    port, _, state = await served()
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + SECRET.encode()
                 + b"\x01\r\n\r\n")
    status, headers, body = split_response(await read_all(reader))
    assert status == 400 and headers["content-type"] == "application/json"
    err = json.loads(body)
    assert err["type"] == "error" and err["error"]["type"] == "invalid_request_error"
    assert "malformed HTTP request" in err["error"]["message"] and SECRET not in body.decode()
    assert SECRET[10:] not in caplog.text  # neither the raw bytes nor a traceback quoting them
    lines = [r for r in caplog.records if "malformed HTTP request" in r.getMessage()]
    assert len(lines) == 1 and len(lines[0].getMessage()) < 200
    assert metric(state, "llmproxy_bad_requests_total", "BadHttpMessage") == 1


async def test_a_header_line_over_the_parsers_limit_gets_the_api_shape(served, caplog):
    port, _, state = await served()
    caplog.set_level(logging.DEBUG)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /v1/models HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer " + SECRET.encode()
                 + b"a" * 70_000 + b"\r\n\r\n")
    status, headers, body = split_response(await read_all(reader))
    assert status == 431 and headers["content-type"] == "application/json"
    assert json.loads(body)["type"] == "error" and SECRET not in body.decode()
    assert SECRET[10:] not in caplog.text
    assert metric(state, "llmproxy_bad_requests_total", "LineTooLong") == 1


@pytest.mark.parametrize("exc,expected", [
    (BadHttpMessage(f"Invalid header value char:\n\n  b'Authorization: Bearer {SECRET}\\x01'\n  ^"),
     "Invalid header value char"),
    (LineTooLong(f"Bearer {SECRET}".encode(), 8190), "Got more than 8190 bytes when reading"),
    (LineTooLong(bytearray(f"/v1/{SECRET}".encode()), 8190), "Got more than 8190 bytes when reading"),
    (InvalidHeader(f"x-api-key: {SECRET}".encode()), "Invalid HTTP header"),
    (InvalidHeader(f"x-api-key: {SECRET}"), "Invalid HTTP header"),
    (BadStatusLine(f"GET /{SECRET} HTTP/1.1"), "Bad status line"),
    (BadHttpMethod(f"{SECRET} / HTTP/1.1"), "Bad HTTP method in status line"),
    (BadHttpMessage("Duplicate 'Host' header found."), "Duplicate"),
    (BadHttpMessage(""), "BadHttpMessage"),
])
def test_the_logged_reason_never_quotes_the_request(exc, expected):
    assert reason(exc) == expected
