"""daemon.log is rotated like the request log (``log.rotate_bytes`` × ``log.rotate_keep``): whatever the
daemon prints — banner, -v request lines, aiohttp's complaints about malformed requests — cannot fill the
disk. It goes through a pump process; the pieces of it (the pump, reading what was appended across a
rotation) are tested here on a real pipe and files, the whole through a real daemon."""

from __future__ import annotations

import os
import socket
import threading

import anthropic

from llmproxy.obs.logfile import PUMP_LINE_MAX, RotatingWriter, mark, pump, read_since
from tests.conftest import PROXY_KEY
from tests.security.keyed_daemon import KEYED, daemon

ROTATE = 2048
TINY = KEYED + f"""
[log]
rotate_bytes = {ROTATE}
rotate_keep = 2
"""


def test_a_flood_of_output_stays_within_rotate_bytes_times_keep(home):
    with daemon(home, "-v", config=TINY) as port:
        client = anthropic.Anthropic(base_url=f"http://127.0.0.1:{port}", api_key=PROXY_KEY, max_retries=0)
        for i in range(30):
            client.messages.create(model="claude-haiku-4-5", max_tokens=5,
                                   messages=[{"role": "user", "content": f"hi {i}"}])
        for _ in range(30):  # malformed requests: aiohttp answers 400 and may say so on stderr
            with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
                s.sendall(b"GARBAGE\x01 / HTTP/1.1\r\nAuthorization: Bearer " + PROXY_KEY.encode() + b"\r\n\r\n")
                s.recv(4096)
    logs = home / "logs"
    names = sorted(p.name for p in logs.glob("daemon.log*") if not p.name.endswith(".lock"))
    assert names == ["daemon.log", "daemon.log.1", "daemon.log.2"], names
    for name in names:
        size = (logs / name).stat().st_size
        assert size <= ROTATE + 400, (name, size)  # a file passes the limit by at most one line
    text = "".join((logs / n).read_text() for n in names)
    assert "llmproxy stopped" in text  # the last words made it through the pump


def _pumped(chunks: list[bytes], path, max_bytes: int = 0, keep: int = 3) -> None:
    r, w = os.pipe()
    t = threading.Thread(target=pump, args=(r, RotatingWriter(path, max_bytes, keep)))
    t.start()
    for c in chunks:
        os.write(w, c)
    os.close(w)
    t.join(10)
    os.close(r)


def test_pump_writes_whole_lines(tmp_path):
    log = tmp_path / "logs" / "daemon.log"
    _pumped([b"one\ntw", b"o\nthree without end"], log)
    assert log.read_bytes() == b"one\ntwo\nthree without end\n"
    assert oct(log.stat().st_mode & 0o777) == oct(0o600)


def test_pump_cuts_a_line_that_never_ends(tmp_path):
    log = tmp_path / "daemon.log"
    _pumped([b"x" * (PUMP_LINE_MAX + 10)] + [b"y" * 1000] * 3, log)
    assert log.read_bytes().count(b"x") == PUMP_LINE_MAX + 10


def test_pump_rotates(tmp_path):
    log = tmp_path / "daemon.log"
    _pumped([b"%04d padding padding\n" % i for i in range(200)], log, max_bytes=1000, keep=2)
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.endswith(".lock")) == \
        ["daemon.log", "daemon.log.1", "daemon.log.2"]
    assert all(p.stat().st_size <= 1000 for p in tmp_path.iterdir())


def test_read_since_across_a_rotation(tmp_path):
    log = tmp_path / "daemon.log"
    w = RotatingWriter(log, 0, 3)
    w.write_lines([b"before\n"])
    since = mark(log)
    w.write_lines([b"after 1\n"])
    w.rotate()
    w.write_lines([b"after 2\n"])
    assert read_since(log, since) == b"after 1\nafter 2\n"
    assert read_since(log, mark(log)) == b""
    assert read_since(tmp_path / "nothing.log", mark(tmp_path / "nothing.log")) == b""
    new = tmp_path / "new.log"
    since = mark(new)  # not there yet: everything written later is new
    RotatingWriter(new, 0, 3).write_lines([b"first\n"])
    assert read_since(new, since) == b"first\n"
    w.close()
