"""Which timeout bounds what: time to first byte (the provider's, or a catalog model's own) for the
response headers and the first event, even when it is longer than the idle gap; the idle gap between
chunks once the stream has begun."""

from __future__ import annotations

import pytest

from tests.faults.test_breaker_retry import post


@pytest.mark.parametrize("mode", ["hang", "headers_hang"])
async def test_ttfb_longer_than_idle_is_honoured(fault_proxy, fault_upstream, home, mode):
    url, _ = await fault_proxy("anthropic", False, ttfb_timeout=1.0, idle_timeout=0.3)
    fault_upstream.mode = mode
    status, _, body, elapsed = await post(url, stream=True)
    assert status == 504 and b"no response within 1 s" in body
    assert 0.95 <= elapsed < 2.5  # not cut at the 0.3 s idle timeout


async def test_idle_gap_once_the_stream_began(fault_proxy, fault_upstream, home):
    url, _ = await fault_proxy("openai", False, ttfb_timeout=2.0, idle_timeout=0.3)
    fault_upstream.mode = "hang_mid"
    status, _, body, elapsed = await post(url, stream=True)
    assert status == 200 and body.endswith(b"\n\n") and b"event: error" in body
    assert elapsed < 1.5  # the idle gap, not the time to first byte


async def test_a_models_own_ttfb_timeout(fault_proxy, fault_upstream, home):
    url, _ = await fault_proxy("anthropic", False, ttfb_timeout=0.3, idle_timeout=0.3, model={"ttfb_timeout": 1.0})
    fault_upstream.mode = "hang"
    status, _, _, elapsed = await post(url)
    assert status == 504 and 0.95 <= elapsed < 2.5


@pytest.mark.parametrize("kind", ["anthropic", "openai"])
async def test_a_non_streaming_answer_may_take_longer_than_the_first_byte_budget(fault_proxy, fault_upstream, home,
                                                                               kind):
    """A JSON answer has no first byte until it is whole: its budget grows with max_tokens (64 tokens at the
    slowest accepted 20 tokens/s = 3.2 s more), so a 1 s answer is not cut at the 0.3 s first-byte limit."""
    url, _ = await fault_proxy(kind, False, ttfb_timeout=0.3, idle_timeout=0.3)
    fault_upstream.mode = "slow_json"
    status, _, _, elapsed = await post(url, max_tokens=64)
    assert status == 200 and elapsed >= 0.95
