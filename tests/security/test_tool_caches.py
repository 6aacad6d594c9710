"""The tool-list caches (validation in ``protocol/anthropic.py``, conversion in ``convert/tools.py``) are
bounded by bytes, not only by count: a client sending a new multi-megabyte tool list with every request
leaves at most the bound resident (32 distinct 2 MB lists had stayed, 211 MB after a fuzz run). Measured
through the public functions with tracemalloc: what stays allocated once the requests are gone."""

from __future__ import annotations

import gc
import tracemalloc

import orjson
from hypothesis import given
from hypothesis import strategies as st

from llmproxy.convert.tools import functions
from llmproxy.protocol.anthropic import validate_messages
from llmproxy.protocol.toolcache import ToolListCache

MiB = 1024 * 1024
SLACK = MiB // 2  # interpreter noise while measuring


def tool_list(n: int, nbytes: int) -> list[dict]:
    """A distinct (by ``n``) list of custom tools of about ``nbytes`` of JSON."""
    one = {"name": "tool", "description": "d" * 1000,
           "input_schema": {"type": "object", "properties": {"path": {"type": "string", "format": "uri"}}}}
    size = len(orjson.dumps(one))
    return [{**one, "name": f"tool_{n}_{i}", "description": f"{n} {i} " + "d" * 1000}
            for i in range(max(1, nbytes // size))]


def retained(call, lists: int, nbytes: int) -> int:
    """Bytes still allocated after ``call(tools)`` on ``lists`` distinct tool lists, each dropped after."""
    gc.collect()
    tracemalloc.start()
    try:
        for n in range(lists):
            tools = tool_list(n, nbytes)
            call(tools)
            del tools
        gc.collect()
        return tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()


def validate(tools: list[dict]) -> None:
    validate_messages({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "hi"}],
                       "tools": tools})


def test_validation_keeps_no_oversized_tool_list():
    assert retained(validate, 6, 2 * MiB) < SLACK  # 12 MB stayed


def test_validation_cache_stays_under_its_byte_bound():
    assert retained(validate, 20, 200 * 1024) < 2 * MiB + SLACK  # 4 MB stayed (count-bounded only)


def test_conversion_keeps_no_oversized_tool_list():
    assert retained(lambda tools: functions(tools, True), 6, 2 * MiB) < SLACK


def test_conversion_cache_stays_under_its_byte_bound_and_still_caches():
    assert retained(lambda tools: functions(tools, True), 40, 200 * 1024) < 10 * MiB + SLACK  # 16 MB stayed
    tools = tool_list(99, 57 * 1024)  # Claude Code's size: kept, so the same list is converted once
    assert functions(tools, False) is functions(tools, False)


@given(st.lists(st.tuples(st.integers(0, 40), st.integers(0, 300))))
def test_the_cache_never_holds_more_than_its_bounds(puts):
    """Values are the sizes, so what is kept can be summed; a key already kept keeps its first value."""
    cache: ToolListCache[int] = ToolListCache(max_bytes=1000, max_entry_bytes=250, max_entries=8)
    for key, size in puts:
        before = cache.get(key)
        cache.put(key, size, size)
        if before is not None:
            assert cache.get(key) == before
        elif size <= 250:
            assert cache.get(key) == size  # the newest fitting entry is always kept
        else:
            assert key not in cache
        held = [cache.get(k) for k in range(41) if k in cache]
        assert cache.nbytes == sum(held) <= 1000 and len(held) <= 8
