"""The dashboard's failed rows in a real browser (Debian's Chromium through Playwright, as test_ui_browser.py):
a refused request shows its status and why in its profile's column, latency percentiles are over served
requests only, and an unrouted request has one label on every surface."""

from __future__ import annotations

import aiohttp
import pytest

from tests.test_ui_browser import browser, expect, send  # noqa: F401 - browser is a fixture

pytestmark = pytest.mark.browser


async def refuse(url: str, profile: str) -> None:
    """A request the proxy refuses before routing it (an empty conversation): 400."""
    async with aiohttp.ClientSession() as s:
        body = {"model": "claude-sonnet-4-5", "max_tokens": 8, "messages": []}
        async with s.post(f"{url}/p/{profile}/v1/messages", json=body) as r:
            assert r.status == 400, await r.text()


async def test_a_refused_request_in_its_column_feed_and_charts(proxy_factory, browser):  # noqa: F811
    url, _ = await proxy_factory("[server]\nsimulator_speed = 20\n", simulate=True)
    page = await browser(url + "/ui")
    await page.wait_for_selector("#conn.live")
    await send(url, "fast", "rename this variable")
    for _ in range(3):
        await refuse(url, "fast")
    fast = page.locator('.col[data-profile="fast"]')
    await expect(fast.locator("li.err")).to_have_count(3)
    item = await fast.locator("li.err").first.inner_text()
    assert "not routed" in item and "400 · messages: List should have at least 1 item" in item, item
    assert "0→0" not in item and "?" not in item and "…" not in item

    # p50 is the served request's duration, not pulled to the refused ones' 0 ms
    served = page.locator("#feed tbody tr", has_text="200")
    duration = await served.locator("td").nth(6).inner_text()
    assert duration not in ("0ms", "–")
    p50 = await fast.locator(".totals div", has_text="p50").locator("b").inner_text()
    assert p50 == duration

    # one label: the feed's scenario column and the scenario and model charts
    refused = page.locator("#feed tbody tr", has_text="400")
    await expect(refused).to_have_count(3)
    assert all("not routed" in r for r in await refused.all_inner_texts())
    await page.click('#chart-window button[data-minutes="15"]')
    await expect(page.locator("#chart-scenario")).to_contain_text("not routed")
    await expect(page.locator("#chart-model")).to_contain_text("not routed")
    for text in await page.locator("#chart-scenario, #chart-model").all_inner_texts():
        assert "(not served)" not in text and "none" not in text.split()
