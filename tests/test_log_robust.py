"""The request log cannot die: records it cannot serialise as they are, huge records and I/O errors are
written truncated (or counted as dropped), reported, and the writer keeps going."""

from __future__ import annotations

import asyncio
import errno
import json
import logging
from pathlib import Path

import orjson
import pytest

from llmproxy.obs import log as logmod
from llmproxy.obs.log import DEPTH_MARKER, RequestLog, RotatingWriter


def lines(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


async def settle(log: RequestLog, path: Path, n: int, timeout: float = 5.0) -> list[dict]:
    """The log's lines once ``n`` are written and counted (the count follows the write)."""
    for _ in range(int(timeout / 0.02)):
        if len(lines(path)) >= n and log.health()["written"] >= n:
            break
        await asyncio.sleep(0.02)
    return lines(path)


def deep(levels: int, leaf: object = "bottom") -> object:
    value = leaf
    for _ in range(levels):
        value = {"type": "object", "properties": {"x": value}}
    return value


def nested_lists(levels: int) -> list:
    value: list = []
    for _ in range(levels):
        value = [value]
    return value


class Hostile:
    def __str__(self) -> str:
        raise RuntimeError("no string for you")


@pytest.fixture
async def rlog(tmp_path):
    path = tmp_path / "logs" / "requests.jsonl"
    log = RequestLog(path, body_max_bytes=4096)
    log.start()
    yield log, path
    await log.close()


async def test_300_deep_record_is_written_truncated_and_later_records_follow(rlog):
    log, path = rlog
    log.record({"request_id": "deep", "request_body": {"tools": [{"input_schema": deep(300)}]}})
    log.record({"request_id": "deeper", "decision": nested_lists(5000)})  # past the recursion limit too
    log.record({"request_id": "after"})
    recs = await settle(log, path, 3)
    assert [r["request_id"] for r in recs] == ["deep", "deeper", "after"]
    for rec in recs[:2]:
        assert "nested deeper than" in rec["log_note"]
        assert DEPTH_MARKER in json.dumps(rec)
    assert "log_note" not in recs[2]
    assert not log._task.done()
    h = log.health()
    assert h["writing"] is True and h["written"] == 3 and h["dropped"] == 0 and h["truncated"] == 2


async def test_values_json_cannot_hold_are_written_as_strings(rlog):
    log, path = rlog
    cyclic: dict = {"a": 1}
    cyclic["self"] = cyclic
    log.record({"request_id": "odd", "obj": Hostile(), "keys": {1: "int key", (2, 3): "tuple key"},
                "big": 2 ** 70, "huge": 10 ** 5000, "surrogate": "x\ud800y", "raw": b"\xff\xfebytes",
                "set": {1, 2}})
    log.record({"request_id": "cycle", "loop": cyclic})
    log.record({"request_id": "after"})
    recs = await settle(log, path, 3)
    odd, cyc, after = recs
    assert odd["obj"] == "<unprintable Hostile>"
    assert odd["keys"] == {"1": "int key", "(2, 3)": "tuple key"}
    assert odd["big"] == str(2 ** 70) and odd["huge"].startswith("<integer of")
    assert odd["surrogate"].startswith("x") and odd["surrogate"].endswith("y")
    assert odd["raw"].endswith("bytes") and sorted(odd["set"]) == [1, 2]
    assert "log_note" in odd and "log_note" in cyc and cyc["loop"]["a"] == 1
    assert after == {"request_id": "after"}
    assert log.health()["writing"] and log.health()["dropped"] == 0


async def test_a_record_that_is_not_a_dict_and_a_broken_listener(rlog):
    log, path = rlog
    seen = []
    log.add_listener(lambda rec: 1 / 0)
    log.add_listener(seen.append)
    log.record(["not", "a", "dict"])  # type: ignore[arg-type]
    log.record({"request_id": "after"})
    recs = await settle(log, path, 2)
    assert recs[0]["record"] == ["not", "a", "dict"] and "log_note" in recs[0]
    assert recs[1]["request_id"] == "after" and len(seen) == 2


async def test_huge_fields_are_cut_to_a_head(rlog):
    log, path = rlog
    log.record({"request_id": "big", "error": "e" * 2_000_000, "request_body": {"text": "b" * 100_000}})
    recs = await settle(log, path, 1)
    rec = recs[0]
    assert rec["request_body"]["_truncated"] is True  # the bodies, as always
    assert rec["error"]["_truncated"] is True and rec["error"]["bytes"] > 2_000_000
    assert "line over" in rec["log_note"]
    assert len(path.read_bytes()) < 300_000


async def test_unwritable_log_file_is_reported_and_recovers(tmp_path, caplog):
    blocker = tmp_path / "logs"
    blocker.write_text("a file where the log directory should be")
    path = blocker / "requests.jsonl"
    caplog.set_level(logging.ERROR, logger="llmproxy")
    log = RequestLog(path)  # must not raise
    log.start()
    try:
        for i in range(3):
            log.record({"request_id": f"lost{i}"})
            await asyncio.sleep(0.1)
        for _ in range(100):
            if log.health()["dropped"] >= 3:
                break
            await asyncio.sleep(0.02)
        h = log.health()
        assert h["writing"] is False and h["dropped"] == 3 and h["written"] == 0
        assert h["last_error"] and str(path) in h["last_error"]
        errors = [r for r in caplog.records if r.name == "llmproxy" and r.levelno >= logging.ERROR]
        assert len(errors) == 1  # reported once, not once per batch
        assert not log._task.done()
        blocker.unlink()  # the problem goes away: the next record is written
        log.record({"request_id": "after"})
        recs = await settle(log, path, 1)
        assert [r["request_id"] for r in recs] == ["after"]
        h = log.health()
        assert h["writing"] is True and h["written"] == 1 and h["dropped"] == 3
    finally:
        await log.close()


@pytest.mark.skipif(not Path("/dev/full").exists(), reason="needs /dev/full")
async def test_disk_full_is_counted_and_the_writer_keeps_going(caplog):
    caplog.set_level(logging.ERROR, logger="llmproxy")
    log = RequestLog(Path("/dev/full"), max_bytes=0)  # every write fails with ENOSPC
    seen = []
    log.add_listener(seen.append)
    log.start()
    try:
        for i in range(5):
            log.record({"request_id": f"r{i}", "payload": "x" * 10_000})
            await asyncio.sleep(0.08)
        for _ in range(100):
            if log.health()["dropped"] >= 5:
                break
            await asyncio.sleep(0.02)
        h = log.health()
        assert h["dropped"] == 5 and h["written"] == 0 and h["writing"] is False
        assert "No space left" in h["last_error"] or "ENOSPC" in h["last_error"] or "28" in h["last_error"]
        assert len(seen) == 5  # the console still sees every record
        assert not log._task.done()
        assert any("dropped" in r.getMessage() for r in caplog.records)
    finally:
        await log.close()


async def test_transient_write_error_then_recovery(tmp_path, monkeypatch, caplog):
    path = tmp_path / "requests.jsonl"
    log = RequestLog(path)
    real = RotatingWriter.write_lines
    fail = {"n": 2}

    def flaky(self, batch):
        if fail["n"]:
            fail["n"] -= 1
            raise OSError(errno.ENOSPC, "No space left on device")
        return real(self, batch)

    monkeypatch.setattr(RotatingWriter, "write_lines", flaky)
    caplog.set_level(logging.WARNING, logger="llmproxy")
    log.start()
    try:
        for i in range(4):
            log.record({"request_id": f"r{i}"})
            await asyncio.sleep(0.1)
        recs = await settle(log, path, 2)
        assert [r["request_id"] for r in recs] == ["r2", "r3"]
        h = log.health()
        assert h == {**h, "writing": True, "written": 2, "dropped": 2}
        assert any("written again" in r.getMessage() for r in caplog.records)
    finally:
        await log.close()


def test_torn_line_is_finished_before_the_next_record(tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_bytes(b'{"request_id":"whole"}\n{"request_id":"half')
    w = RotatingWriter(path, max_bytes=0, keep=2)
    w._discard()  # as after a failed write
    w.write_lines([b'{"request_id":"next"}\n'])
    w.close()
    assert path.read_bytes().splitlines()[-1] == b'{"request_id":"next"}'


async def test_close_flushes_and_a_full_queue_drops_instead_of_growing(tmp_path, monkeypatch):
    monkeypatch.setattr(logmod, "MAX_QUEUE", 10)
    path = tmp_path / "requests.jsonl"
    log = RequestLog(path)  # not started: records only queue
    for i in range(15):
        log.record({"request_id": f"r{i}"})
    assert log.health()["dropped"] == 5 and log.health()["queued"] == 10
    await log.close()
    assert len(lines(path)) == 10


def test_make_safe_is_iterative():
    notes: list[str] = []
    out = logmod.make_safe({"a": nested_lists(100_000)}, notes)
    assert notes and DEPTH_MARKER in json.dumps(out)


def _hammer(path: str, who: int, n: int) -> None:
    from llmproxy.obs.log import RotatingWriter

    w = RotatingWriter(Path(path), max_bytes=4096, keep=50)
    for i in range(n):
        w.write_lines([orjson.dumps({"who": who, "i": i, "pad": "x" * 60}) + b"\n"])
    w.close()


def test_two_processes_share_one_rotating_log(tmp_path):
    """serve --workers N: several processes append to, and rotate, one log; no line is torn, lost or doubled."""
    import multiprocessing

    path = tmp_path / "requests.jsonl"
    ctx = multiprocessing.get_context("fork")
    procs = [ctx.Process(target=_hammer, args=(str(path), who, 400)) for who in (1, 2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    seen = []
    for f in sorted(tmp_path.glob("requests.jsonl*")):
        if f.name.endswith(".lock"):
            continue
        assert f.stat().st_size <= 4096 + 200
        seen += [orjson.loads(line) for line in f.read_bytes().splitlines()]
    assert sorted((r["who"], r["i"]) for r in seen) == [(w, i) for w in (1, 2) for i in range(400)]
