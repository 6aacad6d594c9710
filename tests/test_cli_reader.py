"""obs/reader: `logs -n N` reads from the end, and `logs -f` follows from exactly where it stopped reading —
nothing written in between (even across rotations, even half a line) is lost or shown twice."""

from __future__ import annotations

import json
from pathlib import Path

from llmproxy.obs.log import RotatingWriter
from llmproxy.obs.reader import Filter, follow, read, reverse_lines, tail


def rec(i: int, profile: str = "fast") -> bytes:
    return json.dumps({"request_id": f"req_{i}", "time": "2026-11-26T10:00:00+00:00", "status": 200,
                       "profile": profile}).encode() + b"\n"


def ids(pairs) -> list[str]:
    return [r["request_id"] for r, _ in pairs]


def take(it, n: int) -> list[str]:
    out = []
    for r, _ in it:
        out.append(r["request_id"])
        if len(out) == n:
            break
    return out


def test_reverse_lines_across_blocks(tmp_path):
    p = tmp_path / "f"
    p.write_bytes(b"".join(rec(i) for i in range(50)))
    with p.open("rb") as fh:
        lines = [ln for ln in reverse_lines(fh, p.stat().st_size, block=7) if ln]
    assert [json.loads(ln)["request_id"] for ln in lines] == [f"req_{i}" for i in reversed(range(50))]


def test_tail_reads_backwards_and_only_as_far_as_needed(tmp_path, monkeypatch):
    path = tmp_path / "requests.jsonl"
    w = RotatingWriter(path, max_bytes=10_000_000, keep=5)
    w.write_lines([rec(i) for i in range(0, 10)])
    w.rotate()
    w.write_lines([rec(i) for i in range(10, 20)])
    w.rotate()
    w.write_lines([rec(i, "cheap" if i % 2 else "fast") for i in range(20, 25)])
    w.close()
    opened: list[str] = []
    real_open = Path.open
    monkeypatch.setattr(Path, "open", lambda self, *a, **k: opened.append(self.name) or real_open(self, *a, **k))
    assert ids(read(path, Filter(), last=3)) == ["req_22", "req_23", "req_24"]
    assert opened == ["requests.jsonl"]  # the rotated files were never opened
    opened.clear()
    assert ids(read(path, Filter(), last=12)) == [f"req_{i}" for i in range(13, 25)]
    assert opened == ["requests.jsonl", "requests.jsonl.1"]
    assert ids(read(path, Filter(profile="cheap"), last=2)) == ["req_21", "req_23"]
    assert ids(read(path, Filter(), last=100)) == [f"req_{i}" for i in range(25)]
    assert ids(read(path, Filter())) == [f"req_{i}" for i in range(25)]


def test_follow_continues_exactly_where_tail_stopped_across_rotations(tmp_path):
    path = tmp_path / "requests.jsonl"
    w = RotatingWriter(path, max_bytes=10_000_000, keep=5)
    w.write_lines([rec(0), rec(1)])
    w.write_lines([rec(2)[:20]])  # the writer is half-way through a line
    shown, pos = tail(path, Filter(), 5)
    assert ids(shown) == ["req_0", "req_1"]
    # written between the read and the follow: the rest of the line, more records, two rotations
    w.write_lines([rec(2)[20:], rec(3)])
    w.rotate()
    w.write_lines([rec(4)])
    w.rotate()
    w.write_lines([rec(5), rec(6)])
    try:
        assert take(follow(path, poll=0.01, position=pos), 5) == ["req_2", "req_3", "req_4", "req_5", "req_6"]
    finally:
        w.close()


def test_follow_after_tail_of_a_missing_file_reads_the_new_file_from_its_start(tmp_path):
    path = tmp_path / "requests.jsonl"
    shown, pos = tail(path, Filter(), 5)
    assert shown == []
    path.write_bytes(rec(0) + rec(1))
    assert take(follow(path, poll=0.01, position=pos), 2) == ["req_0", "req_1"]
