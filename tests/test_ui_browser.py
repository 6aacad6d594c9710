"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright (never a downloaded browser).

Skipped when Chromium or Playwright is missing, except under CI=true, where .ci/run installs both and a
missing one fails the run. ``LLMPROXY_DASHBOARD_SHOT=docs/dashboard.png`` also writes the README's screenshot.
"""

from __future__ import annotations

import asyncio
import os
import shutil
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import PROXY_KEY

pytestmark = pytest.mark.browser

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
REPO = Path(__file__).resolve().parents[1]


def chromium_path() -> str:
    path = next((p for p in ("/usr/bin/chromium", shutil.which("chromium") or "", shutil.which("chromium-browser") or "")
                 if p and os.path.exists(p)), None)
    try:
        import playwright.async_api  # noqa: F401
    except ImportError:
        path, why = None, "Playwright is not installed (pip install -e '.[dev]')"
    else:
        why = "Chromium is not installed (apt-get install chromium)"
    if path is None:
        if os.environ.get("CI"):
            pytest.fail(f"{why}; .ci/run must install it")
        pytest.skip(f"SKIPPED: {why}; the browser tests need it")
    return path


@pytest.fixture
async def browser(tmp_path):
    """A fresh Chromium profile, 1440x1000; yields a function that opens a page and records its requests."""
    executable = chromium_path()
    from playwright.async_api import async_playwright, expect

    expect.set_options(timeout=10000)
    async with async_playwright() as p:
        ctx = await p.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"), executable_path=executable, args=CHROMIUM_ARGS, headless=True,
            viewport={"width": 1440, "height": 1000}, color_scheme="dark", service_workers="block")
        errors: list[str] = []

        async def open_page(url: str):
            page = await ctx.new_page()
            page.set_default_timeout(10000)
            page.requests = []  # type: ignore[attr-defined]
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.on("console", lambda m: m.type == "error" and "401 (Unauthorized)" not in m.text and errors.append(m.text))
            page.on("request", lambda r: page.requests.append(r))  # type: ignore[attr-defined]
            await page.goto(url)
            return page

        yield open_page
        await ctx.close()
        assert not errors, errors


def msg(text: str, stream: bool = False) -> dict:
    return {"model": "claude-sonnet-4-5", "max_tokens": 64, "stream": stream,
            "messages": [{"role": "user", "content": text}]}


async def send(url: str, profile: str, text: str, stream: bool = False, key: str | None = None,
               session: str = "5e6f7a8b-9c0d-4e1f-a2b3-c4d5e6f7a8b9") -> None:
    headers = {"x-claude-code-session-id": session, **({"x-api-key": key} if key else {})}
    async with aiohttp.ClientSession() as s:
        async with s.post(f"{url}/p/{profile}/v1/messages", json=msg(text, stream), headers=headers) as r:
            assert r.status == 200, await r.text()
            await r.read()


def expect(target):
    from playwright.async_api import expect as pw_expect

    return pw_expect(target)


async def text_of(page, selector: str) -> str:
    return (await page.locator(selector).inner_text()).strip()


async def test_live_feed_columns_charts_detail_and_playground(proxy_factory, browser):
    url, state = await proxy_factory(simulate=True)
    page = await browser(url + "/ui")
    await page.wait_for_selector("#conn.live")
    # the page's weight: what went over the wire for the page itself and the data it loaded
    await page.wait_for_selector("#version:has-text('v')")  # the last thing the page loads at start
    await page.wait_for_timeout(300)
    weight = 0
    for req in page.requests:
        if req.url.endswith("/api/events"):
            continue  # the feed stays open (its first bytes are a few dozen)
        sizes = await req.sizes()  # what crossed the wire: headers and the (gzipped) body
        weight += sizes["responseBodySize"] + sizes["responseHeadersSize"]
    print(f"\npage weight on load: {weight / 1024:.1f} KB over {len(page.requests)} requests")
    assert weight < 150 * 1024
    assert not any(not r.url.startswith(url) for r in page.requests)  # nothing from anywhere else
    assert await page.locator("#chart-scenario").get_attribute("data-points") == "0"
    # the four profiles side by side; the test profiles (no traffic yet) only named
    assert await page.locator("#columns .col").all_inner_texts() and [
        await c.get_attribute("data-profile") for c in await page.locator("#columns .col").all()] == [
        "fast", "intelligent", "balanced", "cheap"]
    assert "oai, test" in await text_of(page, "#columns-idle")

    await asyncio.gather(send(url, "fast", "think hard about the race condition in the scheduler"),
                         send(url, "fast", "rename this variable", stream=True),
                         send(url, "cheap", "summarize this file"))
    await expect(page.locator("#feed tbody tr:not(.flight)")).to_have_count(3)
    rows = await page.locator("#feed tbody tr").all_inner_texts()
    assert sum("fast" in r for r in rows) == 2 and sum("cheap" in r for r in rows) == 1
    assert any("keyword:hard-problems" in r and "claude-opus-4-8" in r for r in rows), rows
    assert all("sim" in r and "200" in r and "session 5e6f7a8b" in r for r in rows), rows

    # the profile columns: running totals and the last requests
    fast, cheap = page.locator('.col[data-profile="fast"]'), page.locator('.col[data-profile="cheap"]')
    await expect(fast.locator(".totals b").first).to_have_text("2")
    assert (await fast.locator(".totals b").first.inner_text()) == "2"
    assert (await cheap.locator(".totals b").first.inner_text()) == "1"
    assert await fast.locator("li").count() == 2 and await cheap.locator("li").count() == 1
    assert await page.locator('.col[data-profile="balanced"] .totals b').first.inner_text() == "0"

    # the charts took the new requests in (and a narrower window keeps them)
    await page.click('#chart-window button[data-minutes="15"]')
    await expect(page.locator("#chart-scenario")).to_have_attribute("data-points", "3")
    assert int(await page.locator("#chart-model").get_attribute("data-points")) == 3
    assert int(await page.locator("#chart-latency").get_attribute("data-points")) >= 1
    assert await page.locator("#chart-latency svg path.series").count() == 2

    # filters
    await page.select_option("#f-profile", "cheap")
    assert await page.locator("#feed tbody tr").count() == 1
    await page.select_option("#f-profile", "")
    await page.select_option("#f-scenario", "keyword")
    assert await page.locator("#feed tbody tr").count() == 1
    await page.select_option("#f-scenario", "")
    await page.select_option("#f-status", "error")
    assert await page.locator("#feed tbody tr").count() == 0
    await page.select_option("#f-status", "")

    # a row opens the whole decision
    await page.locator("#feed tbody tr", has_text="hard-problems").click()
    drawer = page.locator("#detail")
    await drawer.wait_for(state="visible")
    body = await drawer.inner_text()
    assert "Reasons" in body and "concept 'hard-problems' matched 'race condition'" in body
    assert "Chain" in body and "served" in body and "Matches" in body
    assert "Bodies are not logged" in body
    await page.keyboard.press("Escape")
    await drawer.wait_for(state="hidden")

    # the route playground: every profile's decision, the matched terms highlighted
    await page.click('#tabs a[data-tab="playground"]')
    await page.fill("#play-text", "please think hard about the architecture of this design")
    await page.click("#play-form button")
    await expect(page.locator("#play-results .card")).to_have_count(len(state.runtime.profiles))
    intelligent = page.locator('#play-results .card[data-profile="intelligent"]')
    assert "keyword" in await intelligent.inner_text()
    marks = await intelligent.locator("mark").all_inner_texts()
    assert "architecture" in marks and await intelligent.locator("mark.win").count() == 1

    # providers and knowledge graphs
    await page.click('#tabs a[data-tab="providers"]')
    await page.wait_for_selector('#providers tr[data-provider="anthropic"]')
    assert "--simulate was given" in await text_of(page, '#providers tr[data-provider="anthropic"]')
    await page.click('#tabs a[data-tab="kg"]')
    await page.click('#kg-profiles button:has-text("fast")')
    assert "race condition" in await text_of(page, '#kg-body tr[data-concept="hard-problems"]')


async def test_bodies_in_the_detail_when_logged(proxy_factory, browser):
    url, _ = await proxy_factory(simulate=True, verbose=2)
    page = await browser(url + "/ui")
    await page.wait_for_selector("#conn.live")
    await send(url, "balanced", "write a haiku about routers")
    await page.wait_for_selector("#feed tbody tr:not(.flight)")
    await page.locator("#feed tbody tr").first.click()
    await page.wait_for_selector("#detail details summary:has-text('request body')")
    assert "write a haiku about routers" in await text_of(page, "#detail")


async def test_the_page_asks_for_the_key_when_proxy_keys_are_set(proxy_factory, browser):
    url, _ = await proxy_factory(f'[auth]\napi_keys = ["{PROXY_KEY}"]\n', simulate=True)
    page = await browser(url + "/ui")
    await page.wait_for_selector("#auth", state="visible")
    assert await page.locator("#conn.auth").count() == 1
    await page.fill("#auth-key", "not-the-key-000000")
    await page.click("#auth-form button")
    await page.wait_for_selector("#auth-error:has-text('not accepted')")
    await page.fill("#auth-key", PROXY_KEY)
    await page.click("#auth-form button")
    await page.wait_for_selector("#conn.live")
    assert await page.locator("#auth").is_hidden()
    await send(url, "fast", "hello", key=PROXY_KEY)
    await page.wait_for_selector("#feed tbody tr:not(.flight)")
    # kept for this tab only, and never put in a URL
    assert await page.evaluate("sessionStorage.getItem('llmproxy.key')") == PROXY_KEY
    assert await page.evaluate("localStorage.length") == 0
    assert not any(PROXY_KEY in r.url for r in page.requests)
    # a reload of the tab keeps working without asking again
    await page.reload()
    await page.wait_for_selector("#conn.live")
    assert await page.locator("#auth").is_hidden()


@pytest.mark.skipif(not os.environ.get("LLMPROXY_DASHBOARD_SHOT"), reason="set LLMPROXY_DASHBOARD_SHOT=docs/dashboard.png")
async def test_screenshot_for_the_readme(proxy_factory, browser):
    """A realistic minute of traffic through the four profiles, paced by the simulator, then a screenshot."""
    from llmproxy.server.process.runtime import reload

    url, state = await proxy_factory('[server]\nsimulator_speed = 2\ndefault_profile = "balanced"\n', simulate=True)
    for name in ("test", "oai"):  # the bundled four only, as a user has them
        (Path(os.environ["LLMPROXY_HOME"]) / "profiles" / f"{name}.toml").unlink()
    assert await reload(state) == []
    page = await browser(url + "/ui")
    await page.set_viewport_size({"width": 1440, "height": 1240})
    await page.wait_for_selector("#conn.live")
    await page.click('#chart-window button[data-minutes="5"]')
    prompts = {
        "fast": ["fix the typo in the README", "think hard about the race condition in the scheduler",
                 "rename parse_args to parse_options", "why does this test deadlock?"],
        "intelligent": ["design the architecture for a plugin system", "help me plan out the migration",
                        "debug this stack trace: KeyError 'user'", "explain this function"],
        "balanced": ["write a unit test for parse()", "refactor the config loader", "review this diff",
                     "what is the root cause of this crash?"],
        "cheap": ["summarize this file", "add docstrings", "explain this regex", "format the JSON"],
    }
    for rnd in range(8):  # a round every ~5 s: one point per bucket of the 5-minute window
        await asyncio.gather(*(send(url, prof, texts[rnd % 4], stream=(rnd % 2 == 0), session=f"{prof[:2]}{rnd}a7e1-demo")
                               for prof, texts in prompts.items()))
        await asyncio.sleep(4.5)
    # and two in flight while the picture is taken
    pending = [asyncio.create_task(send(url, p, "think hard: prove this invariant holds", stream=True))
               for p in ("fast", "intelligent")]
    await asyncio.sleep(0.25)
    await page.wait_for_timeout(500)
    out = REPO / os.environ["LLMPROXY_DASHBOARD_SHOT"]
    await page.screenshot(path=str(out), full_page=False)
    await asyncio.gather(*pending)
